package rollups

import (
	"context"
	"time"
)

// Store is where an Engine keeps its windows: the consumer's ClickHouse rollups table
// (consumer.ClickHouseStore), or a map in tests. Each method returns nil only once it is done.
type Store interface {
	// LatestWindows returns, for each partition in since, the newest stored window start of each
	// tier at or after since[p] (Unix seconds; tiers without a row are left out).
	LatestWindows(ctx context.Context, since map[int32]int64) (map[int32]map[int32]int64, error)
	// LoadWindows returns the stored windows of keys, the latest version of each (keys without one
	// are left out).
	LoadWindows(ctx context.Context, keys []Key) ([]*Window, error)
	// WriteWindows stores windows, each replacing its key's older versions.
	WriteWindows(ctx context.Context, ws []*Window) error
}

// Ingest counts points, which must be in offset order within each partition, into their windows.
// First it forgets the partitions in forget (taken away from this engine since the last call, see
// Forget), anchors the points' partitions it has not anchored yet (one LatestWindows call), and
// loads from st the windows the points touch that it does not hold and that may be stored (one
// LoadWindows call). Then it counts the points (a record id counted already is skipped, a new
// series past the guard's cap goes to its overflow series: see Config) and records that their
// partitions received points at now (wall clock), for the idle timeout.
//
// When st fails, Ingest returns its error having counted nothing: call it again with the same
// arguments. Once it succeeds, do not call it again for the same points (forget would drop their
// counts before they are stored): call Flush, until it succeeds, before the next Ingest.
func (e *Engine) Ingest(ctx context.Context, st Store, points []Point, forget []int32, now time.Time) error {
	for _, p := range forget {
		e.Forget(p)
	}
	if since := e.unanchored(points); len(since) > 0 {
		latest, err := st.LatestWindows(ctx, since)
		if err != nil {
			return err
		}
		for p, t := range since {
			e.anchorPartition(p, t, latest[p])
		}
	}
	missing := e.missing(points)
	found, err := st.LoadWindows(ctx, missing)
	if err != nil {
		return err
	}
	e.resolve(missing, found)
	if err := e.apply(points); err != nil {
		return err
	}
	e.touch(partitionsOf(points), now)
	return nil
}

// Flushed is what a Flush did.
type Flushed struct {
	// Written is the number of windows written to the store.
	Written int
	// Closed are the windows the watermark closed, removed from memory: final, to publish.
	Closed []*Window
	// Shed are the oldest windows dropped from memory past MaxWindows: stored, and loaded again if
	// a later point touches them, so not final.
	Shed []*Window
}

// Flush writes the windows changed since the last Flush to st (one WriteWindows call), then closes
// the windows whose end is at or behind their partition's watermark at now (see Watermark) and
// sheds the oldest while more than MaxWindows are held. When st fails, Flush returns its error
// having changed nothing; call it again.
func (e *Engine) Flush(ctx context.Context, st Store, now time.Time) (Flushed, error) {
	dirty := e.dirtyWindows()
	if err := st.WriteWindows(ctx, dirty); err != nil {
		return Flushed{}, err
	}
	e.markClean()
	return Flushed{Written: len(dirty), Closed: e.advance(now), Shed: e.shed()}, nil
}

// partitionsOf returns the partitions of points, each once, in order of first appearance.
func partitionsOf(points []Point) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for i := range points {
		if p := points[i].Partition; !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
