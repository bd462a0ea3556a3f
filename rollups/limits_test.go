package rollups

import (
	"fmt"
	"testing"
	"time"

	"github.com/tributary/tributary/schemas"
)

// Between batches the engine holds at most MaxWindows windows: at the value nothing is shed, one
// window more sheds exactly the oldest (by window start), which a later point loads back from the
// store.
func TestMaxWindowsAtTheValueAndOnePast(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tiers, cfg.MaxWindows = []time.Duration{time.Minute}, 5
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	var off int64
	point := func(i int) Point {
		m := schemas.Metric{Name: fmt.Sprint("m", i), AggregationType: schemas.Counter}
		off++
		return Point{Series: SeriesOf(&m), Value: 1, TS: ts.Add(time.Duration(i) * time.Minute).UnixMicro(), Offset: off}
	}
	add := func(p Point, stored []*Window) {
		t.Helper()
		e.resolve(e.missing([]Point{p}), stored)
		if err := e.apply([]Point{p}); err != nil {
			t.Fatal(err)
		}
		e.markClean()
	}
	for i := range 5 {
		add(point(i), nil)
	}
	if shed := e.shed(); len(shed) != 0 || e.Len() != 5 {
		t.Fatalf("at MaxWindows: shed %d, holding %d; want 0 and 5", len(shed), e.Len())
	}
	add(point(5), nil)
	shed := e.shed()
	if len(shed) != 1 || e.Len() != 5 || shed[0].Series.Name != "m0" || e.Stats().Shed != 1 {
		t.Fatalf("one past MaxWindows: shed %d (%v), holding %d; want the oldest (m0) shed and 5 held", len(shed), shed, e.Len())
	}
	// m0's next point loads the shed window (as the store holds it) and counts on from it.
	p := point(0)
	if missing := e.missing([]Point{p}); len(missing) != 1 || missing[0] != shed[0].Key {
		t.Fatalf("the shed window is not asked of the store: %v", missing)
	}
	add(p, shed)
	for _, w := range e.dirtyWindows() {
		t.Fatalf("a window is dirty after MarkClean: %v", w.Key)
	}
	// Over again: the oldest window by start is m0's again, now counting both its points.
	if shed := e.shed(); len(shed) != 1 || shed[0].Series.Name != "m0" || shed[0].Agg.Count != 2 || e.Len() != 5 {
		t.Fatalf("after reloading m0: shed %v, holding %d; want m0 with a count of 2", shed, e.Len())
	}
}
