package rollups

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/tributary/tributary/schemas"
)

func TestBucketValueOf(t *testing.T) {
	f := func(lo, hi, min, max, want, wantErr float64) {
		t.Helper()
		if got := BucketValueOf(lo, hi, min, max); math.Abs(got-want) > 1e-12 {
			t.Errorf("BucketValueOf(%v, %v, %v, %v) = %v, want %v", lo, hi, min, max, got, want)
		}
		if got := BucketError(lo, hi, min, max); math.Abs(got-wantErr) > 1e-12 && got != wantErr {
			t.Errorf("BucketError(%v, %v, %v, %v) = %v, want %v", lo, hi, min, max, got, wantErr)
		}
	}
	inf := math.Inf(1)
	f(5, 10, 0, 100, 20.0/3, 1.0/3)        // harmonic mean of 5 and 10, 1/3 from either edge
	f(-10, -5, -100, 0, -20.0/3, 1.0/3)    // the same for negatives
	f(0, 5, 0, 100, 2.5, inf)              // touches zero: the midpoint
	f(-2, 4, -100, 100, 1, inf)            // contains zero
	f(10, inf, 0, 40, 16, 0.6)             // the open last bucket narrowed to max 40
	f(math.Inf(-1), 0, -3, 100, -1.5, inf) // the open first bucket narrowed to min -3
	f(5, 10, 7, 7, 7, 0)                   // min = max: exact
	f(25, 250, 0.05, 250, 2/(1.0/25+1.0/250), 225.0/275)
	f(0, 5, 7, 9, 5, 0) // edges that disagree with min: the nearer edge
}

// expIndex is the OTLP exponential bucket of v > 0 at scale: (base^i, base^(i+1)] holds v.
func expIndex(v float64, scale int) int64 {
	return int64(math.Ceil(math.Log2(v)*math.Ldexp(1, scale))) - 1
}

// Percentiles of values recorded as OTLP histograms (explicit buckets, exponential buckets at
// several scales) are within the error BucketValueOf states of the exact ones, and count, sum,
// min and max are exact.
func TestHistogramQuantilesWithinTheStatedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func() float64{
		"latency":   func() float64 { return 0.5 + rng.ExpFloat64()*40 },
		"lognormal": func() float64 { return math.Exp(rng.NormFloat64()*2) + 1e-6 },
		"uniform":   func() float64 { return 1 + rng.Float64()*9000 },
	}
	bounds := []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000} // the OTel SDKs' default
	type layout struct {
		name  string
		build func(vals []float64) *schemas.Distribution
		eps   func(h *schemas.Distribution) float64 // the largest ε of a non-empty bucket
	}
	explicit := layout{"explicit", func(vals []float64) *schemas.Distribution {
		h := &schemas.Distribution{Bounds: bounds, Counts: make([]uint64, len(bounds)+1), Min: math.Inf(1), Max: math.Inf(-1)}
		for _, v := range vals {
			h.Counts[sort.SearchFloat64s(bounds, v)]++
			h.Count++
			h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
		}
		return h
	}, nil}
	layouts := []layout{explicit}
	for _, scale := range []int{0, 3, 6} {
		layouts = append(layouts, layout{name: "exponential", build: func(vals []float64) *schemas.Distribution {
			e := &schemas.ExponentialBuckets{Scale: int32(scale)}
			h := &schemas.Distribution{Exponential: e, Min: math.Inf(1), Max: math.Inf(-1)}
			lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
			for _, v := range vals {
				lo, hi = min(lo, expIndex(v, scale)), max(hi, expIndex(v, scale))
			}
			e.PositiveOffset, e.PositiveCounts = int32(lo), make([]uint64, hi-lo+1)
			for _, v := range vals {
				e.PositiveCounts[expIndex(v, scale)-lo]++
				h.Count++
				h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
			}
			return h
		}})
	}
	for name, gen := range gens {
		for _, l := range layouts {
			vals := make([]float64, 5000)
			var sum float64
			for i := range vals {
				vals[i] = gen()
				sum += vals[i]
			}
			// Three points (as three exports would send them) into one window.
			a := NewAggregate(schemas.Histogram)
			var eps float64
			for i, part := range [][]float64{vals[:1000], vals[1000:1001], vals[1001:]} {
				h := l.build(part)
				if err := (&schemas.Metric{MetricID: "m", Name: "x", AggregationType: schemas.Histogram, Histogram: h}).Histogram.Validate(); err != nil {
					t.Fatal(err)
				}
				h.Buckets(func(lo, hi float64, _ uint64) bool {
					eps = math.Max(eps, BucketError(lo, hi, h.Min, h.Max))
					return true
				})
				var s float64
				for _, v := range part {
					s += v
				}
				a.AddHistogram(h, s, int64(i))
			}
			sorted := append([]float64(nil), vals...)
			sort.Float64s(sorted)
			if a.Count != uint64(len(vals)) || math.Abs(a.Sum-sum) > 1e-9*sum || a.Min != sorted[0] || a.Max != sorted[len(sorted)-1] {
				t.Errorf("%s/%s: count %d sum %v min %v max %v; want %d %v %v %v", name, l.name, a.Count, a.Sum, a.Min, a.Max,
					len(vals), sum, sorted[0], sorted[len(sorted)-1])
			}
			if a.Sketch.Count() != a.Count {
				t.Errorf("%s/%s: the sketch holds %d values of %d", name, l.name, a.Sketch.Count(), a.Count)
			}
			bound := eps + RelativeAccuracy + eps*RelativeAccuracy
			if math.IsInf(eps, 1) {
				continue // a bucket touching zero: no relative bound (checked in TestBucketValueOf)
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1} {
				got, want := a.Quantile(q), exactQuantile(sorted, q)
				if math.Abs(got-want) > bound*math.Abs(want)+1e-12 {
					t.Errorf("%s/%s (ε %.4f): q=%v got %v, exact %v: off by %.4f, bound %.4f", name, l.name, eps, q, got, want,
						math.Abs(got-want)/math.Abs(want), bound)
				}
			}
		}
	}
}

// A histogram point in the engine counts every value it holds, once: a replay (same offset) and a
// re-sent record (same id) are skipped, as for points of one value.
func TestEngineCountsHistogramPointsOnce(t *testing.T) {
	e, err := New(Config{Tiers: []time.Duration{time.Minute}, Lateness: time.Minute, IdleTimeout: time.Minute, MaxWindows: 100, DedupeIDs: 100})
	if err != nil {
		t.Fatal(err)
	}
	s := SeriesOf(&schemas.Metric{Name: "latency", AggregationType: schemas.Histogram, Source: schemas.Source{Tenant: "t"}})
	h := &schemas.Distribution{Count: 6, Min: 0.3, Max: 12, Bounds: []float64{1, 10}, Counts: []uint64{2, 3, 1}}
	ts := time.Date(2025, 1, 15, 10, 0, 5, 0, time.UTC).UnixMicro()
	pts := []Point{
		{Series: s, Value: 30, TS: ts, Offset: 1, ID: 11, Hist: h},
		{Series: s, Value: 2.5, TS: ts + 1, Offset: 2, ID: 12}, // one value, in the same series
	}
	apply := func(ps []Point) {
		t.Helper()
		e.resolve(e.missing(ps), nil)
		if err := e.apply(ps); err != nil {
			t.Fatal(err)
		}
	}
	apply(pts)
	replay := pts[0]
	replay.ID = 0 // no id, so that the offset alone must catch the replay
	apply([]Point{replay})
	apply([]Point{{Series: s, Value: 30, TS: ts, Offset: 3, ID: 11, Hist: h}}) // re-sent: same id, new offset
	ws := e.dirtyWindows()
	if len(ws) != 1 {
		t.Fatalf("%d windows", len(ws))
	}
	a := ws[0].Agg
	if a.Count != 7 || a.Sum != 32.5 || a.Min != 0.3 || a.Max != 12 || a.Sketch.Count() != 7 || a.Last != 2.5 {
		t.Fatalf("window count %d sum %v min %v max %v sketch %d last %v; want 7, 32.5, 0.3, 12, 7, 2.5",
			a.Count, a.Sum, a.Min, a.Max, a.Sketch.Count(), a.Last)
	}
	if st := e.Stats(); st.Replayed != 1 || st.Resent != 1 {
		t.Fatalf("stats %+v: want one replayed and one re-sent", st)
	}
	// The median is the 4th of 7 values: in (1, 10], counted at 2/(1/1+1/10) = 1.82, within 1%.
	if q := a.Quantile(0.5); math.Abs(q-20.0/11) > 0.01*20/11 {
		t.Fatalf("median %v, want 1.82 within 1%%", q)
	}
}
