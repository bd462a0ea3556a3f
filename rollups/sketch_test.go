package rollups

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)] // ClickHouse's quantileExact
}

func TestSketchRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		"lognormal":  func() float64 { return math.Exp(rng.NormFloat64() * 2) },
		"uniform":    func() float64 { return rng.Float64() * 1000 },
		"latency":    func() float64 { return 0.001 + rng.ExpFloat64()*0.2 },
		"mixed sign": func() float64 { return rng.NormFloat64() * 100 },
		"with zeros": func() float64 { return float64(rng.IntN(3)) * rng.Float64() },
		"huge range": func() float64 { return math.Pow(10, rng.Float64()*24-12) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var s Sketch
			vals := make([]float64, 20000)
			for i := range vals {
				vals[i] = gen()
				s.Add(vals[i])
			}
			sort.Float64s(vals)
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
				got, want := s.Quantile(q), exactQuantile(vals, q)
				if math.Abs(want) < MinIndexable {
					if got != 0 {
						t.Errorf("q=%v: got %v, want 0", q, got)
					}
					continue
				}
				if rel := math.Abs(got-want) / math.Abs(want); rel > RelativeAccuracy+1e-12 {
					t.Errorf("q=%v: got %v, want %v (relative error %.4f > %.2f)", q, got, want, rel, RelativeAccuracy)
				}
			}
		})
	}
}

func TestSketchMergeEqualsUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Sketch
	for i := range 5000 {
		v := rng.NormFloat64() * 50
		all.Add(v)
		if i%3 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(&b)
	if a.Count() != all.Count() || a.Zero != all.Zero || len(a.Pos) != len(all.Pos) || len(a.Neg) != len(all.Neg) {
		t.Fatalf("merged %d/%d buckets, union %d/%d", len(a.Pos), len(a.Neg), len(all.Pos), len(all.Neg))
	}
	for k, c := range all.Pos {
		if a.Pos[k] != c {
			t.Fatalf("bucket %d: %d vs %d", k, a.Pos[k], c)
		}
	}
	keys, counts := Arrays(all.Neg)
	back := FromArrays(keys, counts)
	for k, c := range all.Neg {
		if back[k] != c {
			t.Fatalf("arrays round trip: bucket %d", k)
		}
	}
	var empty Sketch
	if !math.IsNaN(empty.Quantile(0.5)) {
		t.Fatal("empty sketch must give NaN")
	}
}

func BenchmarkSketchAdd(b *testing.B) {
	var s Sketch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Add(0.001 + float64(i%1000)*0.01)
	}
}

// QuantileOfArrays on a sketch's stored form answers exactly what Quantile answers on the sketch.
func TestQuantileOfArraysEqualsQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 200 {
		var s Sketch
		for range rng.IntN(300) {
			switch rng.IntN(5) {
			case 0:
				s.Add(0)
			case 1:
				s.Add(-math.Exp(rng.NormFloat64() * 3))
			default:
				s.Add(math.Exp(rng.NormFloat64() * 3))
			}
		}
		pk, pc := Arrays(s.Pos)
		nk, nc := Arrays(s.Neg)
		for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.95, 0.99, 1} {
			want, got := s.Quantile(q), QuantileOfArrays(pk, pc, nk, nc, s.Zero, q)
			if want != got && !(math.IsNaN(want) && math.IsNaN(got)) {
				t.Fatalf("trial %d, q %v: QuantileOfArrays %v, Quantile %v", trial, q, got, want)
			}
		}
	}
}
