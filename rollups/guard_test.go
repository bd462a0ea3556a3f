package rollups

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/schemas"
)

const (
	tenantA = "7c0f6f2e-3d55-4d0b-9f1e-2b8f7a1c4e90"
	tenantB = "0b5d1c7e-8a2f-4e63-9d14-6f0e2a9b3c58"
)

var guardBase = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

func hostSeries(tenant string, host int) *Series {
	m := schemas.Metric{Name: "cpu", Unit: "percent", AggregationType: schemas.Gauge, Source: schemas.Source{Tenant: tenant},
		Attributes: map[string]any{"host": fmt.Sprintf("h%d", host)}}
	return SeriesOf(&m)
}

func guardConfig(maxNew int) Config {
	cfg := DefaultConfig()
	cfg.MaxNewSeries, cfg.KnownSeries = maxNew, 1000
	return cfg
}

// guarded is an engine under test with a wall clock the test moves, and the offsets it has given
// out per partition.
type guarded struct {
	t    *testing.T
	e    *Engine
	st   memStore
	wall time.Time
	off  map[int32]int64
}

func newGuarded(t *testing.T, cfg Config) *guarded {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &guarded{t: t, e: e, st: memStore{}, wall: guardBase, off: map[int32]int64{}}
	e.now = func() time.Time { return g.wall }
	return g
}

// send counts one point of each series at ts, as one batch, and returns the points.
func (g *guarded) send(ts time.Time, series ...*Series) []Point {
	g.t.Helper()
	pts := make([]Point, len(series))
	for i, s := range series {
		part := int32(s.ID % 2)
		pts[i] = Point{Series: s, Value: float64(i%7) + 0.5, TS: ts.UnixMicro() + int64(i), Partition: part, Offset: g.off[part]}
		g.off[part]++
	}
	g.apply(pts)
	return pts
}

func (g *guarded) apply(pts []Point) {
	g.t.Helper()
	roll(g.t, g.e, g.st, pts, g.wall)
}

// counted returns, for the minute window at ts, the count of each series' row by series id.
func (g *guarded) counted(ts time.Time) map[uint64]uint64 {
	out := map[uint64]uint64{}
	start := ts.Unix() / 60 * 60
	for k, w := range g.st {
		if k.Tier == 60 && k.Start == start {
			out[k.Series] += w.Agg.Count
		}
	}
	return out
}

func seriesOfTenant(tenant string, from, to int) []*Series {
	var out []*Series
	for i := from; i < to; i++ {
		out = append(out, hostSeries(tenant, i))
	}
	return out
}

// The cap admits exactly MaxNewSeries new series of a tenant in a minute: the one past it is
// counted under the overflow series, known series keep counting as themselves, another tenant has
// its own budget, and the next minute has a new one.
func TestGuardCapsNewSeriesPerTenantAndMinute(t *testing.T) {
	g := newGuarded(t, guardConfig(3))
	a := seriesOfTenant(tenantA, 0, 5)
	over := a[0].Overflow()
	m0 := guardBase.Add(10 * time.Second)

	g.send(m0, a[:3]...) // exactly the cap
	if got := g.counted(m0); len(got) != 3 || got[over.ID] != 0 || g.e.Stats().Overflow != 0 {
		t.Fatalf("at the cap: rows %v, stats %+v; want the three series as themselves", got, g.e.Stats())
	}
	g.send(m0.Add(time.Second), a[3]) // one past it
	got := g.counted(m0)
	if got[a[3].ID] != 0 || got[over.ID] != 1 {
		t.Fatalf("one past the cap: rows %v; want the fourth series under the overflow series", got)
	}
	g.send(m0.Add(2*time.Second), a[0], a[3], a[4]) // known, refused again, refused
	got = g.counted(m0)
	if got[a[0].ID] != 2 || got[over.ID] != 3 {
		t.Fatalf("rows %v: want a known series counted as itself and the new ones under overflow", got)
	}

	b := seriesOfTenant(tenantB, 0, 3)
	g.send(m0.Add(3*time.Second), b...)
	if got := g.counted(m0); got[b[0].ID] != 1 || got[b[1].ID] != 1 || got[b[2].ID] != 1 || got[b[0].Overflow().ID] != 0 {
		t.Fatalf("tenant B: rows %v; its budget is its own", got)
	}

	m1 := guardBase.Add(time.Minute + 5*time.Second)
	g.send(m1, a...)
	got = g.counted(m1)
	for i, s := range a {
		if got[s.ID] != 1 {
			t.Fatalf("next minute: series %d has %d points as itself; want 1 (three known, two new within the new budget): %v", i, got[s.ID], got)
		}
	}
	s := g.e.Stats()
	if s.NewSeries != 3+3+2 || s.Overflow != 3 || s.Capped != 1 {
		t.Fatalf("stats %+v: want 8 new series, 3 overflow points, 1 capped tenant-minute", s)
	}
	capped := g.e.TakeCapped()
	if len(capped) != 1 || capped[0].Tenant != tenantA || !capped[0].Minute.Equal(guardBase) || capped[0].Late {
		t.Fatalf("capped %+v: want tenant A in the minute at %v once", capped, guardBase)
	}
	if again := g.e.TakeCapped(); len(again) != 0 {
		t.Fatalf("TakeCapped returned %v a second time", again)
	}
	// The hour window adds up: 3 + 1 + 3 + 5 points of tenant A across its series and the overflow.
	var hourA uint64
	for k, w := range g.st {
		if k.Tier == 3600 && w.Series.Tenant == tenantA {
			hourA += w.Agg.Count
		}
	}
	if hourA != 12 {
		t.Fatalf("tenant A's hour windows count %d points, want 12", hourA)
	}
}

// The overflow series keeps the metric's identity and replaces the attributes with one marker;
// its id is the same wherever it is computed.
func TestOverflowSeriesIdentity(t *testing.T) {
	s := hostSeries(tenantA, 1)
	o := s.Overflow()
	json, keys, values := schemas.AttributeColumns(map[string]any{OverflowKey: OverflowValue})
	if o.AttrJSON != overflowAttrJSON || json != overflowAttrJSON || strings.Join(keys, ",") != OverflowKey || strings.Join(values, ",") != OverflowValue {
		t.Fatalf("overflow attributes %q %v %v; the constant is %q", json, keys, values, overflowAttrJSON)
	}
	if o.Tenant != s.Tenant || o.Name != s.Name || o.Unit != s.Unit || o.Type != s.Type {
		t.Fatalf("overflow series %+v lost the metric's identity", o)
	}
	m := schemas.Metric{Name: s.Name, Unit: s.Unit, AggregationType: s.Type, Source: schemas.Source{Tenant: s.Tenant},
		Attributes: map[string]any{OverflowKey: OverflowValue}}
	if o.ID != SeriesOf(&m).ID || o.ID != hostSeries(tenantA, 2).Overflow().ID || o.ID == hostSeries(tenantB, 1).Overflow().ID {
		t.Fatal("the overflow id must be the series id of its identity, shared by the metric's series, per tenant")
	}
}

// A replay of a batch after a crash, by a new engine that remembers nothing, routes every point
// where it was counted: the stored rows do not change. Without reading the routing back from the
// windows, the new engine would see the tenant's old series as new, overflow them, and count them
// twice.
func TestGuardReplayRoutesPointsWhereTheyWereCounted(t *testing.T) {
	cfg := guardConfig(3)
	g1 := newGuarded(t, cfg)
	m0, m1 := guardBase.Add(5*time.Second), guardBase.Add(65*time.Second)
	g1.send(m0, seriesOfTenant(tenantA, 0, 3)...)
	batch := g1.send(m1, seriesOfTenant(tenantA, 0, 8)...)
	if g1.e.Stats().Overflow != 2 {
		t.Fatalf("stats %+v: the batch should overflow two series", g1.e.Stats())
	}
	before := snapshot(g1.st)

	// A crash before the commit: a new engine replays the batch from the committed offsets.
	g2 := newGuarded(t, cfg)
	g2.st = g1.st
	g2.apply(batch)
	if after := snapshot(g2.st); after != before {
		t.Fatalf("the replay changed the rows:\nbefore %s\nafter  %s", before, after)
	}
	if s := g2.e.Stats(); s.Applied != 0 || s.Overflow != 0 || s.NewSeries != 0 {
		t.Fatalf("replay stats %+v: every point was counted already", s)
	}
}

func snapshot(st memStore) string {
	var b strings.Builder
	for _, k := range sortedKeys(st) {
		w := st[k]
		fmt.Fprintf(&b, "%x/%d/%d/%d:%d,%v,%d;", k.Series, k.Tier, k.Start, k.Partition, w.Agg.Count, w.Agg.Sum, w.Agg.LastOffset)
	}
	return b.String()
}

func sortedKeys(st memStore) []Key {
	var ws []*Window
	for k := range st {
		ws = append(ws, &Window{Key: k})
	}
	sortWindows(ws)
	out := make([]Key, len(ws))
	for i, w := range ws {
		out[i] = w.Key
	}
	return out
}

// metricKey is a series without its attributes: where a series and its overflow series add up.
type metricKey struct {
	tenant, name string
	tier         int32
	start        int64
}

// Over a random stream of many tenants' series, most of them new, with windows shed to a small
// bound and a crash replayed from an earlier offset in other batch sizes: every window of every
// metric (its series and its overflow series together) holds exactly what the raw points hold.
func TestGuardedRollupsStayExactAgainstRaw(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 42))
		cfg := guardConfig(50) // more than each tenant's 40 stable hosts
		cfg.Tiers, cfg.Lateness, cfg.MaxWindows = []time.Duration{time.Minute, 5 * time.Minute}, 10*time.Second, 50
		tenants := []string{tenantA, tenantB}
		points := make([]Point, 12000)
		next := map[int32]int64{}
		for i := range points {
			tenant := tenants[rng.IntN(2)]
			host := rng.IntN(40) // a stable fleet...
			if tenant == tenantA && rng.IntN(3) == 0 {
				host = 1000 + i // ...and one tenant whose label explodes
			}
			s := hostSeries(tenant, host)
			ts := guardBase.UnixMicro() + int64(i)*20_000 - rng.Int64N(cfg.Lateness.Microseconds())
			part := int32(s.ID % 3)
			points[i] = Point{Series: s, Value: math.Round(rng.NormFloat64()*1000) / 8, TS: ts, Partition: part, Offset: next[part]}
			next[part]++
		}
		st := memStore{}
		e1, _ := New(cfg)
		process(t, e1, st, points[:8000], 1+rng.IntN(500), time.Unix(0, 0))
		e2, _ := New(cfg)
		process(t, e2, st, points[3000:], 1+rng.IntN(500), time.Unix(0, 0))

		want := map[metricKey]*Aggregate{}
		for _, p := range points {
			for _, tier := range e1.tiers {
				k := metricKey{p.Series.Tenant, p.Series.Name, int32(tier), floorDiv(floorDiv(p.TS, 1e6), tier) * tier}
				if want[k] == nil {
					a := NewAggregate(p.Series.Type)
					want[k] = &a
				}
				want[k].Add(p.Value, p.TS)
			}
		}
		got := map[metricKey]*Aggregate{}
		overflowed := uint64(0)
		for k, w := range st {
			mk := metricKey{w.Series.Tenant, w.Series.Name, k.Tier, k.Start}
			if got[mk] == nil {
				a := NewAggregate(w.Series.Type)
				got[mk] = &a
			}
			got[mk].Merge(&w.Agg)
			if w.Series.AttrJSON == overflowAttrJSON {
				if w.Series.Tenant != tenantA {
					t.Fatalf("seed %d: tenant B, whose fleet is stable, has an overflow row", seed)
				}
				if k.Tier == 60 {
					overflowed += w.Agg.Count
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d metric windows stored, raw has %d", seed, len(got), len(want))
		}
		for k, w := range want {
			g := got[k]
			if g == nil || g.Count != w.Count || g.Min != w.Min || g.Max != w.Max || math.Abs(g.Sum-w.Sum) > 1e-9*math.Max(1, math.Abs(w.Sum)) {
				t.Fatalf("seed %d: metric window %+v: got %+v, raw %+v", seed, k, g, w)
			}
		}
		if overflowed == 0 || e1.Stats().Shed == 0 || e2.Stats().Replayed == 0 {
			t.Fatalf("seed %d: overflowed %d, stats %+v / %+v: the stream should overflow, shed and replay", seed, overflowed, e1.Stats(), e2.Stats())
		}
	}
}

// Known series survive shedding: a series admitted earlier is not new when its windows come back
// from the store, even after the guard's own memory of it is gone.
func TestGuardKnowsShedAndStoredSeries(t *testing.T) {
	cfg := guardConfig(2)
	cfg.MaxWindows = 1
	g := newGuarded(t, cfg)
	a := seriesOfTenant(tenantA, 0, 2)
	m0 := guardBase.Add(time.Second)
	g.send(m0, a...)                  // MaxWindows 1: the flush sheds all but one window
	g.send(m0.Add(time.Second), a...) // known in memory; the budget is spent
	// A new engine (a restart, nothing in memory) finds the series' windows in the store.
	g2 := newGuarded(t, cfg)
	g2.st, g2.off = g.st, g.off
	g2.send(m0.Add(2*time.Second), a...)
	g2.send(m0.Add(3*time.Second), seriesOfTenant(tenantA, 2, 5)...) // three new series: two fit
	got := g2.counted(m0)
	if got[a[0].ID] != 3 || got[a[1].ID] != 3 || got[a[0].Overflow().ID] != 1 {
		t.Fatalf("rows %v: the stored series are known, the two new ones fit the budget, one overflows", got)
	}
	if s := g.e.Stats(); s.Overflow != 0 || s.Shed == 0 {
		t.Fatalf("stats %+v: shed windows' series must stay known", s)
	}
}

// For NewSeriesGrace after the engine takes a partition, new series are learnt without the cap;
// after it they are capped; a partition taken again (Forget, then points) has its grace again.
func TestGuardGraceAfterTakingAPartition(t *testing.T) {
	cfg := guardConfig(1)
	cfg.NewSeriesGrace = time.Minute
	g := newGuarded(t, cfg)
	m0 := guardBase.Add(time.Second)
	g.send(m0, seriesOfTenant(tenantA, 0, 10)...)
	if s := g.e.Stats(); s.Overflow != 0 || g.e.KnownSeries() != 10 {
		t.Fatalf("stats %+v, known %d: within the grace all ten are learnt", s, g.e.KnownSeries())
	}
	g.wall = g.wall.Add(time.Minute)
	g.send(m0.Add(time.Second), seriesOfTenant(tenantA, 0, 13)...)
	if s := g.e.Stats(); s.NewSeries != 1 || s.Overflow != 2 {
		t.Fatalf("stats %+v: after the grace, one new series fits and two overflow", s)
	}
	g.e.Forget(0)
	g.e.Forget(1)
	g.send(m0.Add(2*time.Second), seriesOfTenant(tenantA, 13, 16)...)
	if s := g.e.Stats(); s.Overflow != 2 {
		t.Fatalf("stats %+v: partitions taken again have their grace again", s)
	}
}

// Points more than budgetMinutes older than the tenant's newest share one budget per wall-clock
// minute, so old or scattered timestamps cannot lift the cap, and a far-future one cannot stop a
// tenant for good.
func TestGuardOldTimestampsShareALateBudget(t *testing.T) {
	g := newGuarded(t, guardConfig(2))
	now := guardBase.Add(2 * time.Hour)
	g.send(now, hostSeries(tenantA, 0))
	var old []*Series
	for i := range 10 {
		old = append(old, hostSeries(tenantA, 100+i))
		g.send(now.Add(-time.Duration(10+i)*time.Minute), old[i]) // ten distinct old minutes
	}
	if s := g.e.Stats(); s.NewSeries != 1+2 || s.Overflow != 8 {
		t.Fatalf("stats %+v: old minutes share one budget of 2", s)
	}
	if c := g.e.TakeCapped(); len(c) != 1 || !c[0].Late || !c[0].Minute.Equal(guardBase) {
		t.Fatalf("capped %+v: want one late budget, in the wall-clock minute", c)
	}
	g.wall = g.wall.Add(time.Minute)
	g.send(now.Add(-30*time.Minute), hostSeries(tenantA, 200))
	if s := g.e.Stats(); s.NewSeries != 4 {
		t.Fatalf("stats %+v: the late budget is renewed each wall-clock minute", s)
	}
	// A far-future point moves the tenant's newest minute away; present points then share the late
	// budget, still two new series a wall-clock minute.
	g.send(now.Add(1000*time.Hour), hostSeries(tenantA, 300))
	g.wall = g.wall.Add(time.Minute)
	g.send(now.Add(time.Minute), seriesOfTenant(tenantA, 400, 403)...)
	if s := g.e.Stats(); s.NewSeries != 4+1+2 || s.Overflow != 8+1 {
		t.Fatalf("stats %+v: after a far-future point, two new series a minute still fit", s)
	}
}

func TestKnownSetIsBounded(t *testing.T) {
	k := newKnownSet(4)
	for id := range uint64(100) {
		k.add(id)
		k.has(0) // looked up all along: stays known
		if k.len() > 4 {
			t.Fatalf("%d ids held, capacity 4", k.len())
		}
	}
	if !k.has(0) || !k.has(99) || k.has(50) {
		t.Fatal("the known set must keep recent and recently looked-up ids and forget the rest")
	}
}

func TestGuardConfigValidate(t *testing.T) {
	f := func(maxNew, known int, grace time.Duration, want string) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.MaxNewSeries, cfg.KnownSeries, cfg.NewSeriesGrace = maxNew, known, grace
		err := cfg.Validate()
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Fatalf("max new %d, known %d, grace %v: error %v, want %q", maxNew, known, grace, err, want)
		}
	}
	f(0, 0, 0, "")
	f(10000, 1000000, time.Minute, "")
	f(-1, 0, 0, "max new series per minute -1")
	f(10, 9, 0, "known series 9: must be at least the max new series per minute (10)")
	f(10, 10, -time.Second, "new series grace -1s")
}

// BenchmarkKnownSeriesMemory measures the guard's live heap per known series id, with the set
// full (both generations): run with -benchtime 1x.
func BenchmarkKnownSeriesMemory(b *testing.B) {
	const capacity = 1_000_000
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var perID float64
	for b.Loop() {
		before := heap()
		k := newKnownSet(capacity)
		for id := range uint64(capacity*3/2 - 1) {
			k.add(id * 0x9e3779b97f4a7c15)
		}
		perID = float64(heap()-before) / float64(k.len())
		if k.len() < capacity-1 {
			b.Fatalf("%d ids held, capacity %d", k.len(), capacity)
		}
		runtime.KeepAlive(k)
	}
	b.ReportMetric(perID, "B/id")
}
