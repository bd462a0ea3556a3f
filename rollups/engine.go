package rollups

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tributary/tributary/schemas"
)

// Config configures an Engine.
type Config struct {
	// Tiers are the window widths, whole seconds (default 1m and 1h).
	Tiers []time.Duration
	// Lateness is how far behind its partition's newest event time a point may be and still land
	// in an open window. A window closes once its end is Lateness behind the newest event time.
	Lateness time.Duration
	// IdleTimeout: a partition without points for this long (wall clock) closes windows by the wall
	// clock instead, so quiet series still get final rows.
	IdleTimeout time.Duration
	// MaxWindows bounds the windows held in memory; past it the oldest written windows are shed
	// (their rows are in the store and are loaded again if a late point touches them).
	MaxWindows int
	// DedupeIDs is how many of the latest points' record ids (Point.ID) the engine remembers: a
	// point whose id it remembers is a re-sent record and is not counted again. 0 turns it off.
	DedupeIDs int
	// MaxNewSeries is the label-cardinality guard: how many new series a tenant may start per
	// minute of event time. A point of a new series past it is counted under its metric's overflow
	// series (Series.Overflow) and in Stats.Overflow. 0 turns the guard off.
	MaxNewSeries int
	// KnownSeries bounds the series ids the guard remembers as not new (at least MaxNewSeries); a
	// series forgotten is new again when it returns. Used only with MaxNewSeries.
	KnownSeries int
	// NewSeriesGrace: for this long (wall clock) after the engine first counts a point of a
	// partition (at start, or when the partition comes back after Forget), new series in it are
	// admitted without the cap, so the series it had before are learnt. 0: capped from the start.
	NewSeriesGrace time.Duration
}

// DefaultConfig returns 1-minute and 1-hour tiers, 30 s lateness, 1 min idle timeout, 200,000
// windows, no dedupe and no guard.
func DefaultConfig() Config {
	return Config{Tiers: []time.Duration{time.Minute, time.Hour}, Lateness: 30 * time.Second, IdleTimeout: time.Minute, MaxWindows: 200000}
}

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Tiers) == 0 {
		bad("rollup tiers: none")
	}
	for _, t := range c.Tiers {
		if t < time.Second || t%time.Second != 0 {
			bad("rollup tier %v: must be a whole number of seconds", t)
		}
	}
	if c.Lateness < 0 {
		bad("rollup lateness %v: must not be negative", c.Lateness)
	}
	if c.IdleTimeout <= 0 {
		bad("rollup idle timeout %v: must be positive", c.IdleTimeout)
	}
	if c.MaxWindows < 1 {
		bad("rollup max windows %d: must be at least 1", c.MaxWindows)
	}
	if c.DedupeIDs < 0 {
		bad("rollup dedupe ids %d: must not be negative", c.DedupeIDs)
	}
	if c.MaxNewSeries < 0 {
		bad("rollup max new series per minute %d: must not be negative (0 turns the guard off)", c.MaxNewSeries)
	}
	if c.MaxNewSeries > 0 && c.KnownSeries < c.MaxNewSeries {
		bad("rollup known series %d: must be at least the max new series per minute (%d)", c.KnownSeries, c.MaxNewSeries)
	}
	if c.NewSeriesGrace < 0 {
		bad("rollup new series grace %v: must not be negative", c.NewSeriesGrace)
	}
	return errors.Join(errs...)
}

// Key identifies a window's row: one per series, tier, window and source partition. Rows of one
// window from different partitions merge at query time.
type Key struct {
	Series    uint64
	Tier      int32 // seconds
	Start     int64 // window start, Unix seconds
	Partition int32
}

// Window is the aggregate of one Key.
type Window struct {
	Key
	Series *Series
	Agg    Aggregate

	dirty bool
}

// Point is one metric point to roll up, from a source partition and offset.
type Point struct {
	Series    *Series
	Value     float64
	TS        int64 // microseconds since the epoch
	Partition int32
	Offset    int64
	// ID identifies the point's record (RecordID of tenant and metric_id) for Config.DedupeIDs;
	// 0 means none.
	ID uint64
	// Hist is set when the point holds many values (an OTLP histogram data point): Value is their
	// sum, and the window counts them all (Aggregate.AddHistogram).
	Hist *schemas.Distribution
}

type partState struct {
	maxTS    int64 // newest event time seen, microseconds
	lastSeen time.Time
	since    time.Time // wall clock when its first point was counted, for NewSeriesGrace
}

// Stats counts what an Engine did.
type Stats struct {
	Applied  uint64 // point contributions counted (one per point per tier)
	Replayed uint64 // point contributions skipped because the window had counted them already
	Late     uint64 // points whose smallest-tier window had already closed
	Closed   uint64 // windows closed by the watermark
	Shed     uint64 // windows dropped from memory by MaxWindows
	Resent   uint64 // points skipped because their record id was counted already (a re-sent record)
	// The guard (MaxNewSeries): new series admitted against a tenant's minute budget, points counted
	// under an overflow series because their series was new past the cap, and tenant-minutes in
	// which a tenant reached the cap.
	NewSeries, Overflow, Capped uint64
}

// Engine rolls points up into tumbling event-time windows per series and tier. A batch of points
// goes through it in two calls, each of which may be retried on its own when the Store fails:
// Ingest loads the windows the points touch and counts them, Flush writes what changed and closes
// and sheds windows. The Engine's only I/O is through the Store they are given. Not safe for
// concurrent use.
//
// Exactness under replay: each window remembers the highest source offset it counted; a point at
// or below it is skipped. A window's stored row carries that offset, so after a crash the loaded
// row tells exactly which replayed points it already holds.
type Engine struct {
	cfg     Config
	tiers   []int64
	windows map[Key]*Window
	parts   map[int32]*partState
	stats   Stats
	recent  *recent // nil when DedupeIDs is 0
	guard   *guard  // nil when MaxNewSeries is 0
	now     func() time.Time
	stored  map[int32]*anchor

	removed   int // series ids held in every anchor's removed sets
	forgotten int // removed sets folded into floors (maxRemembered)

	own, over []*Window // scratch: a point's windows, one per tier, of its series and its overflow series
}

// New returns an engine; cfg must be valid.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, windows: make(map[Key]*Window), parts: make(map[int32]*partState), now: time.Now,
		stored: make(map[int32]*anchor)}
	for _, t := range cfg.Tiers {
		e.tiers = append(e.tiers, int64(t/time.Second))
	}
	e.own, e.over = make([]*Window, len(e.tiers)), make([]*Window, len(e.tiers))
	if cfg.DedupeIDs > 0 {
		e.recent = newRecent(cfg.DedupeIDs)
	}
	if cfg.MaxNewSeries > 0 {
		e.guard = newGuard(cfg)
	}
	return e, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

// Len is the number of windows in memory.
func (e *Engine) Len() int { return len(e.windows) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// key is the key of series' window of tier that p falls in.
func (e *Engine) key(series uint64, p *Point, tier int64) Key {
	sec := floorDiv(p.TS, 1_000_000)
	return Key{Series: series, Tier: int32(tier), Start: floorDiv(sec, tier) * tier, Partition: p.Partition}
}

// missing returns the keys that points touch, that the engine does not hold and that may have a
// stored row, each once: the caller looks them up in the store and passes what it found to
// resolve. With the guard on, a point also touches its metric's overflow series. A key of an
// anchored partition (see anchorPartition) that cannot have a stored row (a window newer than
// anything stored when the partition was anchored, and not written and dropped by this engine
// since) is not returned: missing installs it empty, so a batch of new series costs no lookup.
func (e *Engine) missing(points []Point) []Key {
	seen := map[Key]bool{}
	var out []Key
	add := func(series uint64, p *Point) {
		for _, t := range e.tiers {
			k := e.key(series, p, t)
			if _, ok := e.windows[k]; ok || seen[k] {
				continue
			}
			seen[k] = true
			if a := e.stored[k.Partition]; a != nil && !a.mayHold(k) {
				e.windows[k] = &Window{Key: k}
				continue
			}
			out = append(out, k)
		}
	}
	for i := range points {
		p := &points[i]
		add(p.Series.ID, p)
		if e.guard != nil {
			add(overflowID(p.Series), p)
		}
	}
	return out
}

// unanchored returns the partitions of points that the engine has not anchored (see
// anchorPartition), with the window start to anchor each from: the start of the largest tier's
// window before the one holding the partition's newest point in points, so that the store reads
// about two of those windows' rows.
func (e *Engine) unanchored(points []Point) map[int32]int64 {
	var out map[int32]int64
	top := e.tiers[0]
	for _, t := range e.tiers {
		top = max(top, t)
	}
	for i := range points {
		p := &points[i]
		if e.stored[p.Partition] != nil {
			continue
		}
		if out == nil {
			out = map[int32]int64{}
		}
		since := floorDiv(floorDiv(p.TS, 1_000_000), top)*top - top
		if s, ok := out[p.Partition]; !ok || since > s {
			out[p.Partition] = since
		}
	}
	return out
}

// anchorPartition records what the store holds of partition p's windows from since on: latest is
// the newest stored window start of each tier at or after since (tiers without such a row are
// absent).
// From then on missing looks up only the keys of p that may have a row: windows starting before
// since or at or before latest, and windows this engine wrote and then closed or shed. Call it
// before the engine writes any window of p (after New or Forget), with the store's answer.
func (e *Engine) anchorPartition(p int32, since int64, latest map[int32]int64) {
	a := &anchor{floor: map[int32]int64{}, removed: map[tierStart]*idSet{}}
	for _, t := range e.tiers {
		a.floor[int32(t)] = since - 1
		if l, ok := latest[int32(t)]; ok {
			a.floor[int32(t)] = max(l, since-1)
		}
	}
	e.drop(p)
	e.stored[p] = a
}

// maxRemembered bounds the series ids the anchors remember of windows the engine dropped from
// memory after storing them (closed or shed): past it the oldest window starts are forgotten, and
// every key at or before them is looked up again. About 10 bytes per id (idSet).
func (e *Engine) maxRemembered() int { return 10 * e.cfg.MaxWindows }

// dropped records that w, stored, left memory: a later point in its window must load it.
func (e *Engine) dropped(w *Window) {
	a := e.stored[w.Partition]
	if a == nil || w.Series == nil || w.Start <= a.floor[w.Tier] {
		return
	}
	ts := tierStart{w.Tier, w.Start}
	set := a.removed[ts]
	if set == nil {
		set = &idSet{}
		a.removed[ts] = set
	}
	if set.add(w.Series.ID) {
		e.removed++
	}
	for e.removed > e.maxRemembered() {
		e.forgetOldest()
	}
}

// forgetOldest folds the oldest remembered window start of any partition into its floor.
func (e *Engine) forgetOldest() {
	var (
		op   int32
		ots  tierStart
		have bool
	)
	for p, a := range e.stored {
		for ts := range a.removed {
			if !have || ts.start < ots.start || (ts.start == ots.start && ts.tier < ots.tier) {
				op, ots, have = p, ts, true
			}
		}
	}
	if !have {
		e.removed = 0
		return
	}
	a := e.stored[op]
	e.removed -= a.removed[ots].len()
	delete(a.removed, ots)
	e.forgotten++
	a.floor[ots.tier] = max(a.floor[ots.tier], ots.start)
}

// drop forgets partition p's anchor.
func (e *Engine) drop(p int32) {
	if a := e.stored[p]; a != nil {
		for _, set := range a.removed {
			e.removed -= set.len()
		}
		delete(e.stored, p)
	}
}

// anchor is what the engine knows of one partition's stored windows.
type anchor struct {
	// floor, per tier: a window starting at or before it may have a stored row.
	floor map[int32]int64
	// removed: the series of windows after floor that were stored and then left memory.
	removed map[tierStart]*idSet
}

type tierStart struct {
	tier  int32
	start int64
}

func (a *anchor) mayHold(k Key) bool {
	if k.Start <= a.floor[k.Tier] {
		return true
	}
	set := a.removed[tierStart{k.Tier, k.Start}]
	return set != nil && set.has(k.Series)
}

// resolve installs the stored windows found for keys; keys without one start empty.
func (e *Engine) resolve(keys []Key, found []*Window) {
	for _, w := range found {
		w.dirty = false
		e.windows[w.Key] = w
	}
	for _, k := range keys {
		if _, ok := e.windows[k]; !ok {
			e.windows[k] = &Window{Key: k}
		}
	}
}

// ErrUnresolved reports a point whose window was neither held nor loaded when it was counted: a
// bug in the engine, which Ingest returns rather than count the point somewhere else.
var ErrUnresolved = errors.New("rollups: window not loaded before its point was counted")

// apply counts points, which must be in offset order within each partition, into their windows.
// Every window they touch must be held (see missing and resolve). A point whose ID the engine
// remembers (Config.DedupeIDs) is a re-sent record: it is skipped and counted in Stats.Resent. With
// the guard on (Config.MaxNewSeries), a point of a new series past its tenant's cap is counted
// under its metric's overflow series instead (see route).
func (e *Engine) apply(points []Point) error {
	now := e.now()
	if e.guard != nil {
		e.guard.prune(floorDiv(now.Unix(), 60))
	}
	for i := range points {
		p := &points[i]
		if e.recent != nil && p.ID != 0 {
			if e.recent.has(p.ID) {
				e.stats.Resent++
				continue
			}
			e.recent.add(p.ID, now.Unix())
		}
		ps := e.parts[p.Partition]
		if ps == nil {
			ps = &partState{maxTS: p.TS, since: now}
			e.parts[p.Partition] = ps
		}
		series, windows, err := e.route(p, ps, now)
		if err != nil {
			return err
		}
		for j, t := range e.tiers {
			w := windows[j]
			if w.Series == nil {
				w.Series, w.Agg = series, NewAggregate(series.Type)
			}
			if p.Offset <= w.Agg.LastOffset {
				e.stats.Replayed++
				continue
			}
			if j == 0 && (w.Start+t)*1_000_000 <= ps.maxTS-e.cfg.Lateness.Microseconds() {
				e.stats.Late++
			}
			w.Agg.add(p)
			w.Agg.LastOffset = p.Offset
			w.dirty = true
			e.stats.Applied++
		}
		ps.maxTS = max(ps.maxTS, p.TS)
	}
	return nil
}

// DedupeHorizon is how long ago the oldest record id the engine remembers was counted: a record
// re-sent within it is counted once (zero when nothing is remembered or DedupeIDs is 0).
func (e *Engine) DedupeHorizon(now time.Time) time.Duration {
	if e.recent == nil {
		return 0
	}
	oldest := e.recent.oldest()
	if oldest == 0 {
		return 0
	}
	return now.Sub(time.Unix(oldest, 0))
}

// touch records that partitions received points at now (wall clock), for the idle timeout.
func (e *Engine) touch(partitions []int32, now time.Time) {
	for _, p := range partitions {
		if ps := e.parts[p]; ps != nil {
			ps.lastSeen = now
		}
	}
}

// dirtyWindows returns the windows changed since markClean, in key order.
func (e *Engine) dirtyWindows() []*Window {
	var out []*Window
	for _, w := range e.windows {
		if w.dirty {
			out = append(out, w)
		}
	}
	sortWindows(out)
	return out
}

// markClean records that every dirty window is stored.
func (e *Engine) markClean() {
	for _, w := range e.windows {
		w.dirty = false
	}
}

func sortWindows(ws []*Window) {
	sort.Slice(ws, func(i, j int) bool {
		a, b := ws[i].Key, ws[j].Key
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.Tier != b.Tier {
			return a.Tier < b.Tier
		}
		if a.Series != b.Series {
			return a.Series < b.Series
		}
		return a.Partition < b.Partition
	})
}

// Watermark returns partition p's watermark at now: its newest event time less Lateness, or, once
// the partition has been idle for IdleTimeout, now less Lateness if that is later.
func (e *Engine) Watermark(p int32, now time.Time) time.Time {
	ps := e.parts[p]
	if ps == nil {
		return time.Time{}
	}
	wm := ps.maxTS
	if !ps.lastSeen.IsZero() && now.Sub(ps.lastSeen) >= e.cfg.IdleTimeout {
		wm = max(wm, now.UnixMicro())
	}
	return time.UnixMicro(wm - e.cfg.Lateness.Microseconds()).UTC()
}

// advance closes the windows whose end is at or behind their partition's watermark, removes them
// and returns them (for publishing). Call it only when nothing is dirty.
func (e *Engine) advance(now time.Time) []*Window {
	wms := make(map[int32]int64, len(e.parts))
	for p := range e.parts {
		wms[p] = e.Watermark(p, now).UnixMicro()
	}
	var out []*Window
	for k, w := range e.windows {
		wm, ok := wms[k.Partition]
		if ok && (k.Start+int64(k.Tier))*1_000_000 <= wm && !w.dirty {
			delete(e.windows, k)
			e.dropped(w)
			if w.Series != nil { // an empty placeholder has nothing to publish
				out = append(out, w)
			}
		}
	}
	e.stats.Closed += uint64(len(out))
	sortWindows(out)
	return out
}

// shed drops the oldest clean windows while more than MaxWindows are held and returns them. They
// are stored, so a later point loads them again.
func (e *Engine) shed() []*Window {
	over := len(e.windows) - e.cfg.MaxWindows
	if over <= 0 {
		return nil
	}
	var clean []*Window
	for _, w := range e.windows {
		if !w.dirty {
			clean = append(clean, w)
		}
	}
	sortWindows(clean)
	if over > len(clean) {
		over = len(clean)
	}
	var out []*Window
	for _, w := range clean[:over] {
		delete(e.windows, w.Key)
		e.dropped(w)
		if w.Series != nil {
			out = append(out, w)
		}
	}
	e.stats.Shed += uint64(over)
	return out
}

// Forget drops every window and the watermark of partition p, for when p moves to another worker:
// if it comes back, its windows are loaded from the store again.
func (e *Engine) Forget(p int32) {
	for k := range e.windows {
		if k.Partition == p {
			delete(e.windows, k)
		}
	}
	delete(e.parts, p)
	e.drop(p)
}

// idSet is a compact set of series ids: a sorted slice plus a map of the latest additions, merged
// into the slice once it holds an eighth as many (at least idSetTail). About 10 bytes an id, where
// a map alone takes over 20.
type idSet struct {
	sorted []uint64
	tail   map[uint64]struct{}
}

const idSetTail = 4096

func (s *idSet) has(id uint64) bool {
	if _, ok := s.tail[id]; ok {
		return true
	}
	_, ok := slices.BinarySearch(s.sorted, id)
	return ok
}

// add adds id and reports whether it was not there yet.
func (s *idSet) add(id uint64) bool {
	if s.has(id) {
		return false
	}
	if s.tail == nil {
		s.tail = map[uint64]struct{}{}
	}
	s.tail[id] = struct{}{}
	if len(s.tail) >= max(idSetTail, len(s.sorted)/8) {
		add := make([]uint64, 0, len(s.tail))
		for id := range s.tail {
			add = append(add, id)
		}
		slices.Sort(add)
		merged := make([]uint64, 0, len(s.sorted)+len(add))
		i, j := 0, 0
		for i < len(s.sorted) && j < len(add) {
			if s.sorted[i] < add[j] {
				merged, i = append(merged, s.sorted[i]), i+1
			} else {
				merged, j = append(merged, add[j]), j+1
			}
		}
		s.sorted, s.tail = append(append(merged, s.sorted[i:]...), add[j:]...), nil
	}
	return true
}

func (s *idSet) len() int { return len(s.sorted) + len(s.tail) }
