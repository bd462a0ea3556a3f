package rollups

import (
	"testing"
	"time"

	"github.com/tributary/tributary/schemas"
)

// A re-sent record (same tenant and id, a later offset) counts once while the engine remembers its
// id; once DedupeIDs newer ids have pushed it out, a re-send counts again (beyond the horizon).
func TestResentRecordsCountOnceWithinTheHorizon(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tiers, cfg.DedupeIDs = []time.Duration{time.Minute}, 3
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := schemas.Metric{Name: "m", AggregationType: schemas.Counter, Source: schemas.Source{Tenant: "7c0f6f2e-3d55-4d0b-9f1e-2b8f7a1c4e90"}}
	series := SeriesOf(&m)
	ts := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC).UnixMicro()
	var off int64
	apply := func(id string) {
		t.Helper()
		off++
		p := []Point{{Series: series, Value: 1, TS: ts + off, Partition: 0, Offset: off, ID: RecordID(m.Tenant, id)}}
		e.resolve(e.missing(p), nil)
		if err := e.apply(p); err != nil {
			t.Fatal(err)
		}
	}
	count := func() uint64 {
		var n uint64
		for _, w := range e.dirtyWindows() {
			n += w.Agg.Count
		}
		return n
	}
	apply("0190a5f2-0000-7000-8000-000000000001")
	apply("0190a5f2-0000-7000-8000-000000000001") // a retry after a timeout
	apply("0190a5f2-0000-7000-8000-000000000002")
	if got := count(); got != 2 || e.Stats().Resent != 1 {
		t.Fatalf("count %d, resent %d: want 2 and 1", got, e.Stats().Resent)
	}
	if h := e.DedupeHorizon(time.Now()); h < 0 || h > time.Minute {
		t.Fatalf("horizon %v", h)
	}
	// The same id in another tenant is another record.
	off++
	p := []Point{{Series: series, Value: 1, TS: ts + off, Offset: off, ID: RecordID("other-tenant", "0190a5f2-0000-7000-8000-000000000001")}}
	e.resolve(e.missing(p), nil)
	_ = e.apply(p)
	// DedupeIDs (3) ids remembered, the oldest being id 1: a re-send of it is still skipped.
	apply("0190a5f2-0000-7000-8000-000000000001")
	if got := count(); got != 3 || e.Stats().Resent != 2 {
		t.Fatalf("count %d, resent %d: want 3 and 2 (id 1 is the oldest of the 3 remembered)", got, e.Stats().Resent)
	}
	apply("0190a5f2-0000-7000-8000-000000000003") // the fourth id: pushes id 1 out
	apply("0190a5f2-0000-7000-8000-000000000001")
	if got := count(); got != 5 || e.Stats().Resent != 2 {
		t.Fatalf("count %d, resent %d: want 5 and 2 (id 1 was beyond the horizon)", got, e.Stats().Resent)
	}
}
