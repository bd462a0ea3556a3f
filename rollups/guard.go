package rollups

import (
	"fmt"
	"time"

	"github.com/tributary/tributary/schemas"
)

// The overflow series of a metric has this one attribute: OverflowKey = OverflowValue.
const (
	OverflowKey   = "tributary.overflow"
	OverflowValue = "true"
)

// overflowAttrJSON is the overflow attributes' canonical JSON (a test holds it to
// schemas.AttributeColumns), so the overflow series id costs one hash and no allocation.
const overflowAttrJSON = `{"tributary.overflow":"true"}`

// budgetMinutes is how many of a tenant's latest event-time minutes have a budget of their own.
const budgetMinutes = 4

// maxCapped bounds the Capped reports held between TakeCapped calls; Stats.Capped counts them all.
const maxCapped = 1000

// Overflow returns the overflow series of s's metric: the same tenant, name, unit and aggregation
// type, with the attributes {"tributary.overflow": "true"}. Its id depends on nothing else, so every
// process and every replay counts a metric's overflow in the same series.
func (s *Series) Overflow() *Series {
	o := &Series{Tenant: s.Tenant, Name: s.Name, Unit: s.Unit, Type: s.Type}
	o.AttrJSON, o.AttrKeys, o.AttrValues = schemas.AttributeColumns(map[string]any{OverflowKey: OverflowValue})
	o.ID = overflowID(s)
	return o
}

func overflowID(s *Series) uint64 {
	return SeriesID(s.Tenant, s.Name, s.Unit, string(s.Type), overflowAttrJSON)
}

// Capped reports a tenant that reached Config.MaxNewSeries in a minute: its further new series of
// that minute are counted under their metrics' overflow series.
type Capped struct {
	Tenant string
	// Minute is the event-time minute; with Late, the wall-clock minute of the budget that points
	// more than budgetMinutes older than the tenant's newest share.
	Minute time.Time
	Late   bool
}

// guard is the label-cardinality guard: it admits at most cap new series per tenant and minute and
// remembers the series it admitted (known).
type guard struct {
	cap     int
	grace   time.Duration
	known   *knownSet
	tenants map[string]*tenantBudget
	pruned  int64 // wall-clock minute of the last prune
	capped  []Capped
}

func newGuard(cfg Config) *guard {
	return &guard{cap: cfg.MaxNewSeries, grace: cfg.NewSeriesGrace, known: newKnownSet(cfg.KnownSeries), tenants: map[string]*tenantBudget{}}
}

// prune forgets, once a wall-clock minute, the budgets of tenants that charged none in the last
// minute, so their memory is bounded by the tenants seen lately.
func (g *guard) prune(wall int64) {
	if wall == g.pruned {
		return
	}
	for t, b := range g.tenants {
		if b.seen < wall-1 {
			delete(g.tenants, t)
		}
	}
	g.pruned = wall
}

// budget returns the budget a new series of tenant at event-time minute m is charged to.
func (g *guard) budget(tenant string, m, wall int64) *minuteBudget {
	t := g.tenants[tenant]
	if t == nil {
		t = &tenantBudget{newest: m}
		g.tenants[tenant] = t
	}
	t.seen = wall
	return t.slot(m, wall)
}

// tenantBudget holds one tenant's budgets: one for each of its latest budgetMinutes event-time
// minutes, and one shared by older points per wall-clock minute (so neither old timestamps nor a
// far-future one lift the cap: time only moves the budgets forward).
type tenantBudget struct {
	newest  int64 // newest event-time minute charged
	minutes [budgetMinutes]minuteBudget
	late    minuteBudget
	seen    int64 // wall-clock minute last charged
}

type minuteBudget struct {
	minute   int64 // Unix minutes: event time, or wall clock for late
	used     bool
	late     bool
	admitted int
	capped   bool
}

func (t *tenantBudget) slot(m, wall int64) *minuteBudget {
	t.newest = max(t.newest, m)
	if m <= t.newest-budgetMinutes {
		if !t.late.used || t.late.minute != wall {
			t.late = minuteBudget{minute: wall, used: true, late: true}
		}
		return &t.late
	}
	b := &t.minutes[m-floorDiv(m, budgetMinutes)*budgetMinutes]
	if !b.used || b.minute != m {
		*b = minuteBudget{minute: m, used: true}
	}
	return b
}

// knownSet remembers up to capacity series ids in two generations: an id looked up in the older
// one moves to the newer, and when the newer holds capacity/2 the older is dropped. A series seen
// at least once while capacity/2 others are admitted stays known.
type knownSet struct {
	cur, old map[uint64]struct{}
	half     int
}

func newKnownSet(capacity int) *knownSet {
	return &knownSet{cur: map[uint64]struct{}{}, old: map[uint64]struct{}{}, half: max(1, capacity/2)}
}

func (k *knownSet) has(id uint64) bool {
	if _, ok := k.cur[id]; ok {
		return true
	}
	if _, ok := k.old[id]; ok {
		k.add(id)
		return true
	}
	return false
}

func (k *knownSet) add(id uint64) {
	k.cur[id] = struct{}{}
	if len(k.cur) >= k.half {
		k.old, k.cur = k.cur, map[uint64]struct{}{}
	}
}

func (k *knownSet) len() int { return len(k.cur) + len(k.old) }

// route returns the series p is counted under, its own or its metric's overflow series, and that
// series' windows (one per tier, in the engine's scratch space).
//
// A replayed point goes where it was counted before, whatever the guard remembers, read from the
// windows' offsets: if every window of the overflow series holds p's offset, p goes there (and is
// skipped: it was counted there, or in its own series, and either way is not counted again). If p
// was counted in its own series, that series has windows with points, so the next rule sends it
// back there. A series the guard knows, one with a window holding points (stored, or in memory:
// it was admitted before, which the store remembers when memory forgot), or one in a partition
// taken less than NewSeriesGrace ago counts as itself. A new one is charged to its tenant's
// minute budget and, past MaxNewSeries, counted under the overflow series.
func (e *Engine) route(p *Point, ps *partState, now time.Time) (*Series, []*Window, error) {
	s, g := p.Series, e.guard
	own, err := e.lookup(e.own, s.ID, p)
	if err != nil || g == nil {
		return s, own, err
	}
	oid := overflowID(s)
	if oid == s.ID { // the point's own attributes are the marker
		return s, own, nil
	}
	over, err := e.lookup(e.over, oid, p)
	if err != nil {
		return nil, nil, err
	}
	if holds(over, p.Offset) {
		return over[0].Series, over, nil
	}
	if g.known.has(s.ID) {
		return s, own, nil
	}
	if stored(own) || (g.grace > 0 && now.Sub(ps.since) < g.grace) {
		g.known.add(s.ID)
		return s, own, nil
	}
	wall := floorDiv(now.Unix(), 60)
	b := g.budget(s.Tenant, floorDiv(floorDiv(p.TS, 1_000_000), 60), wall)
	if b.admitted < g.cap {
		b.admitted++
		g.known.add(s.ID)
		e.stats.NewSeries++
		return s, own, nil
	}
	if !b.capped {
		b.capped = true
		e.stats.Capped++
		if len(g.capped) < maxCapped {
			g.capped = append(g.capped, Capped{Tenant: s.Tenant, Minute: time.Unix(b.minute*60, 0).UTC(), Late: b.late})
		}
	}
	e.stats.Overflow++
	for _, w := range over {
		if w.Series != nil {
			return w.Series, over, nil
		}
	}
	return s.Overflow(), over, nil
}

// lookup fills dst with the windows of series id that p touches, one per tier.
func (e *Engine) lookup(dst []*Window, id uint64, p *Point) ([]*Window, error) {
	for j, t := range e.tiers {
		w, ok := e.windows[e.key(id, p, t)]
		if !ok {
			return nil, fmt.Errorf("%w: series %x tier %ds", ErrUnresolved, id, t)
		}
		dst[j] = w
	}
	return dst, nil
}

// holds reports whether every window counted offset already.
func holds(ws []*Window, offset int64) bool {
	for _, w := range ws {
		if w.Series == nil || offset > w.Agg.LastOffset {
			return false
		}
	}
	return true
}

// stored reports whether any of a series' windows counted a point: it was admitted before.
func stored(ws []*Window) bool {
	for _, w := range ws {
		if w.Series != nil {
			return true
		}
	}
	return false
}

// TakeCapped returns the tenants that reached MaxNewSeries in a minute since the last call, each
// tenant and minute once (at most 1,000; Stats.Capped counts every one).
func (e *Engine) TakeCapped() []Capped {
	if e.guard == nil {
		return nil
	}
	out := e.guard.capped
	e.guard.capped = nil
	return out
}

// KnownSeries is how many series ids the guard remembers (0 when MaxNewSeries is 0).
func (e *Engine) KnownSeries() int {
	if e.guard == nil {
		return 0
	}
	return e.guard.known.len()
}
