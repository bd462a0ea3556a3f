package rollups

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tributary/tributary/schemas"
)

// memStore plays the ClickHouse rollups table: the latest row per key (ReplacingMergeTree by
// LastOffset).
type memStore map[Key]Window

func copyWindow(w *Window) *Window {
	c := *w
	if w.Agg.Sketch != nil {
		c.Agg.Sketch = &Sketch{}
		c.Agg.Sketch.Merge(w.Agg.Sketch)
	}
	return &c
}

func (s memStore) WriteWindows(_ context.Context, ws []*Window) error {
	for _, w := range ws {
		if old, ok := s[w.Key]; !ok || w.Agg.LastOffset >= old.Agg.LastOffset {
			s[w.Key] = *copyWindow(w)
		}
	}
	return nil
}

func (s memStore) LoadWindows(_ context.Context, keys []Key) ([]*Window, error) {
	var out []*Window
	for _, k := range keys {
		if w, ok := s[k]; ok {
			out = append(out, copyWindow(&w))
		}
	}
	return out, nil
}

// LatestWindows answers as the consumer's store does.
func (s memStore) LatestWindows(_ context.Context, since map[int32]int64) (map[int32]map[int32]int64, error) {
	out := map[int32]map[int32]int64{}
	for k := range s {
		if t, ok := since[k.Partition]; ok && k.Start >= t {
			if out[k.Partition] == nil {
				out[k.Partition] = map[int32]int64{}
			}
			if l, ok := out[k.Partition][k.Tier]; !ok || k.Start > l {
				out[k.Partition][k.Tier] = k.Start
			}
		}
	}
	return out, nil
}

// counting is a Store that counts the keys looked up.
type counting struct {
	Store
	lookups int
}

func (c *counting) LoadWindows(ctx context.Context, keys []Key) ([]*Window, error) {
	c.lookups += len(keys)
	return c.Store.LoadWindows(ctx, keys)
}

// roll runs points through e as one batch, as the consumer does: Ingest, then Flush.
func roll(t *testing.T, e *Engine, st Store, points []Point, now time.Time) Flushed {
	t.Helper()
	ctx := context.Background()
	if err := e.Ingest(ctx, st, points, nil, now); err != nil {
		t.Fatal(err)
	}
	f, err := e.Flush(ctx, st, now)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// process runs points through e in batches of batch points. It returns how many keys were looked
// up in the store.
func process(t *testing.T, e *Engine, st memStore, points []Point, batch int, now time.Time) (lookups int) {
	t.Helper()
	c := &counting{Store: st}
	for len(points) > 0 {
		n := min(batch, len(points))
		roll(t, e, c, points[:n], now)
		points = points[n:]
	}
	return c.lookups
}

type bruteKey struct {
	series uint64
	tier   int32
	start  int64
}

func brute(points []Point, tiers []int64) map[bruteKey]*Aggregate {
	out := map[bruteKey]*Aggregate{}
	for _, p := range points {
		for _, t := range tiers {
			k := bruteKey{p.Series.ID, int32(t), floorDiv(floorDiv(p.TS, 1e6), t) * t}
			a := out[k]
			if a == nil {
				na := NewAggregate(p.Series.Type)
				a = &na
				out[k] = a
			}
			a.Add(p.Value, p.TS)
		}
	}
	return out
}

// merged is what a query reads: rows of all partitions of a window merged.
func merged(st memStore) map[bruteKey]*Aggregate {
	out := map[bruteKey]*Aggregate{}
	for k, w := range st {
		bk := bruteKey{k.Series, k.Tier, k.Start}
		a := out[bk]
		if a == nil {
			na := NewAggregate(w.Series.Type)
			na.Sketch = nil
			if w.Series.Type == schemas.Histogram {
				na.Sketch = &Sketch{}
			}
			a = &na
			out[bk] = a
		}
		a.Merge(&w.Agg)
	}
	return out
}

func genStream(rng *rand.Rand, n int, lateness time.Duration) []Point {
	var series []*Series
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	for i := range 12 {
		m := schemas.Metric{Name: "m", Unit: "s", AggregationType: types[i%3], Attributes: map[string]any{"i": int64(i)}}
		series = append(series, SeriesOf(&m))
	}
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC).UnixMicro()
	pts := make([]Point, n)
	for i := range pts {
		s := series[rng.IntN(len(series))]
		// time moves forward ~20 ms a point, jittered back by up to the lateness; 2% arrive far later
		ts := base + int64(i)*20_000 - rng.Int64N(lateness.Microseconds()+1)
		if rng.IntN(50) == 0 {
			ts -= int64(5 * time.Minute / time.Microsecond)
		}
		pts[i] = Point{Series: s, Value: math.Round(rng.NormFloat64()*1000) / 8, TS: ts, Partition: int32(s.ID % 3)}
	}
	// offsets in arrival order per partition
	next := map[int32]int64{}
	for i := range pts {
		pts[i].Offset = next[pts[i].Partition]
		next[pts[i].Partition]++
	}
	return pts
}

func checkAgainstBrute(t *testing.T, st memStore, points []Point, tiers []int64) {
	t.Helper()
	want, got := brute(points, tiers), merged(st)
	if len(got) != len(want) {
		t.Fatalf("%d windows stored, brute force has %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g == nil {
			t.Fatalf("window %+v missing", k)
		}
		if g.Count != w.Count || g.Min != w.Min || g.Max != w.Max || g.Last != w.Last || g.LastTS != w.LastTS ||
			math.Abs(g.Sum-w.Sum) > 1e-9*math.Max(1, math.Abs(w.Sum)) {
			t.Fatalf("window %+v:\n got %+v\nwant %+v", k, *g, *w)
		}
		if w.Sketch != nil {
			for _, q := range []float64{0.5, 0.9, 0.99} {
				gq, wq := g.Quantile(q), exactOf(points, k, q)
				if math.Abs(gq-wq) > RelativeAccuracy*math.Abs(wq)+1e-12 {
					t.Fatalf("window %+v q%v: %v vs exact %v", k, q, gq, wq)
				}
			}
		}
	}
}

func exactOf(points []Point, k bruteKey, q float64) float64 {
	var vals []float64
	for _, p := range points {
		if p.Series.ID == k.series && floorDiv(floorDiv(p.TS, 1e6), int64(k.tier))*int64(k.tier) == k.start {
			vals = append(vals, p.Value)
		}
	}
	sort.Float64s(vals)
	return exactQuantile(vals, q)
}

func TestEngineMatchesBruteForce(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 99))
		cfg := DefaultConfig()
		cfg.Tiers = []time.Duration{time.Minute, 5 * time.Minute}
		cfg.Lateness = 10 * time.Second
		cfg.MaxWindows = 10 // small: forces shedding and reloading
		points := genStream(rng, 20000, cfg.Lateness)
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		st := memStore{}
		now := time.Unix(0, 0) // wall clock far behind: only event time closes windows
		process(t, e, st, points, 1+rng.IntN(700), now)
		checkAgainstBrute(t, st, points, e.tiers)
		s := e.Stats()
		if s.Late == 0 || s.Closed == 0 || s.Shed == 0 || s.Replayed != 0 || e.forgotten == 0 {
			t.Fatalf("seed %d: stats %+v, %d window starts forgotten: the stream should exercise late points, closing, shedding and forgetting",
				seed, s, e.forgotten)
		}
	}
}

// A crash loses the engine; a new one replays from an earlier offset with different batch sizes
// and, loading what the store holds, counts nothing twice.
func TestReplayAfterCrashDoesNotDoubleCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	cfg := DefaultConfig()
	cfg.Lateness = 10 * time.Second
	points := genStream(rng, 15000, cfg.Lateness)
	st := memStore{}
	e1, _ := New(cfg)
	crashAt := 9000
	process(t, e1, st, points[:crashAt], 333, time.Unix(0, 0))

	// The committed offsets lag the stored rows: replay starts 4000 points back.
	e2, _ := New(cfg)
	process(t, e2, st, points[crashAt-4000:], 517, time.Unix(0, 0))
	checkAgainstBrute(t, st, points, e2.tiers)
	if e2.Stats().Replayed == 0 {
		t.Fatal("the replay skipped nothing; the test did not replay")
	}
}

// An anchored engine looks up only windows that may be stored: a stream of new series in new
// windows costs no lookup, and windows it shed or closed are looked up again when touched. With
// a remembered-ids budget far below what it drops it forgets the oldest and stays exact.
func TestAnchoredEngineLooksUpOnlyWhatMayBeStored(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lateness = 10 * time.Second
	cfg.MaxWindows = 200 // remembers 2,000 ids: all the first pass drops
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC).UnixMicro()
	var series []*Series
	for i := range 1000 {
		m := schemas.Metric{Name: "m", AggregationType: schemas.Counter, Attributes: map[string]any{"host": int64(i)}}
		series = append(series, SeriesOf(&m))
	}
	// pass 1: each series once; pass 2: each series again, one second later (its windows shed)
	var pts []Point
	for pass := range 2 {
		for i, s := range series {
			pts = append(pts, Point{Series: s, Value: float64(i), TS: base + int64(pass)*1e6 + int64(i), Offset: int64(len(pts))})
		}
	}
	st := memStore{}
	e, _ := New(cfg)
	if got := process(t, e, st, pts[:1000], 100, time.Unix(0, 0)); got != 0 {
		t.Fatalf("new series in new windows: %d lookups, want 0", got)
	}
	if got := process(t, e, st, pts[1000:], 100, time.Unix(0, 0)); got < 1800 || got > 2000 {
		t.Fatalf("second pass over shed windows: %d lookups, want every shed window (about 2,000)", got)
	}
	checkAgainstBrute(t, st, pts, e.tiers)

	// A new engine on the same store (a restart) anchors at what the store holds: the third pass
	// in the same windows looks every key up, and a fourth in a new hour needs nothing.
	e2, _ := New(cfg)
	var third, fourth []Point
	for i, s := range series {
		third = append(third, Point{Series: s, Value: 1, TS: base + 2e6 + int64(i), Offset: int64(len(pts) + i)})
		fourth = append(fourth, Point{Series: s, Value: 2, TS: base + 3600e6 + int64(i), Offset: int64(len(pts) + len(series) + i)})
	}
	if got := process(t, e2, st, third, 100, time.Unix(0, 0)); got != 2000 {
		t.Fatalf("after a restart: %d lookups, want 2,000", got)
	}
	if got := process(t, e2, st, fourth, 100, time.Unix(0, 0)); got != 0 {
		t.Fatalf("new hour after a restart: %d lookups, want 0", got)
	}
	pts = append(append(pts, third...), fourth...)
	checkAgainstBrute(t, st, pts, e2.tiers)
	if e2.removed > e2.maxRemembered() {
		t.Fatalf("%d ids remembered, bound %d", e2.removed, e2.maxRemembered())
	}
}

func TestIdlePartitionClosesByWallClock(t *testing.T) {
	cfg := DefaultConfig()
	e, _ := New(cfg)
	m := schemas.Metric{Name: "q", AggregationType: schemas.Gauge}
	s := SeriesOf(&m)
	ts := time.Date(2025, 1, 15, 10, 0, 5, 0, time.UTC)
	pts := []Point{{Series: s, Value: 1, TS: ts.UnixMicro()}}
	e.resolve(e.missing(pts), nil)
	_ = e.apply(pts)
	e.touch([]int32{0}, ts)
	e.markClean()
	if closed := e.advance(ts.Add(30 * time.Second)); len(closed) != 0 {
		t.Fatalf("closed %d windows before the idle timeout", len(closed))
	}
	if closed := e.advance(ts.Add(2 * time.Hour)); len(closed) != 2 {
		t.Fatalf("idle partition: %d windows closed, want the minute and the hour", len(closed))
	}
}

func BenchmarkEngineApply(b *testing.B) {
	for _, bc := range []struct {
		typ     schemas.AggregationType
		guarded bool
	}{{schemas.Counter, false}, {schemas.Gauge, false}, {schemas.Histogram, false}, {schemas.Counter, true}} {
		typ, name := bc.typ, string(bc.typ)
		if bc.guarded {
			name += "-guarded" // with the label-cardinality guard: every point also looks at its overflow series
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			if bc.guarded {
				cfg.MaxNewSeries, cfg.KnownSeries = 10000, 1000000
			}
			e, _ := New(cfg)
			var series []*Series
			for i := range 100 {
				m := schemas.Metric{Name: "m", AggregationType: typ, Attributes: map[string]any{"i": int64(i)}}
				series = append(series, SeriesOf(&m))
			}
			base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC).UnixMicro()
			pts := make([]Point, 1000)
			b.ReportAllocs()
			var off int64
			for i := 0; b.Loop(); i++ {
				for j := range pts {
					pts[j] = Point{Series: series[j%100], Value: float64(j) * 0.37, TS: base + off*1000, Offset: off}
					off++
				}
				e.resolve(e.missing(pts), nil)
				if err := e.apply(pts); err != nil {
					b.Fatal(err)
				}
				e.markClean()
			}
			b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "points/s")
		})
	}
}

func TestIDSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s idSet
	want := map[uint64]bool{}
	for range 100000 {
		id := rng.Uint64N(60000) // about half the additions repeat an id
		if got := s.add(id); got == want[id] {
			t.Fatalf("add(%d) = %v with the id already there: %v", id, got, want[id])
		}
		want[id] = true
	}
	if s.len() != len(want) {
		t.Fatalf("len %d, want %d", s.len(), len(want))
	}
	for id := range uint64(60000) {
		if s.has(id) != want[id] {
			t.Fatalf("has(%d) = %v, want %v", id, s.has(id), want[id])
		}
	}
	if len(s.sorted) == 0 || !slices.IsSorted(s.sorted) {
		t.Fatal("the additions were never merged into a sorted slice")
	}
}
