package retention_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/retention"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

func TestOldPartitionsGoRecentOnesStay(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	now := time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)
	var es []schemas.Event
	var ms []schemas.Metric
	for _, age := range []int{0, 1, 7, 8, 40} { // days before now
		ts := now.AddDate(0, 0, -age)
		es = append(es, schemas.Event{EventID: fmt.Sprint("e", age), TraceID: "tr", Type: "t", Name: "n", Timestamp: ts, Attributes: map[string]any{"k": "v"}})
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprint("m", age), Name: "m", AggregationType: schemas.Counter, Value: 1, Timestamp: ts})
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute}); err != nil {
		t.Fatal(err)
	}
	dropped, err := retention.Enforce(ctx, conn, cfg, retention.Config{EventsDays: 7, MetricsDays: 1, RollupsDays: 0, Interval: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	count := func(table string) (n uint64) {
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+cfg.Database+"."+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// events keep 7 days: ages 0, 1, 7 stay; metrics keep 1 day: 0, 1 stay; rollups keep all.
	if e, tr, a, m, r := count("events"), count("events_trace_index"), count("events_attr_index"), count("metrics"), count("rollups"); e != 3 || tr != 3 || a != 3 || m != 2 || r != 5 {
		t.Fatalf("after retention: %d events, %d in the trace index, %d in the attribute index, %d metrics, %d rollup rows; dropped %v", e, tr, a, m, r, dropped)
	}
	if len(dropped) != 9 {
		t.Fatalf("dropped %v, want 2 events, 2 trace index, 2 attribute index and 3 metrics partitions", dropped)
	}
	again, err := retention.Enforce(ctx, conn, cfg, retention.Config{EventsDays: 7, MetricsDays: 1, Interval: time.Hour}, now)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run dropped %v, %v", again, err)
	}
}

func TestBadNamesAreRefused(t *testing.T) {
	for _, cfg := range []chdb.Config{{Database: "bad-db"}, {Database: "tributary", Cluster: "bad cluster"}} {
		_, err := retention.Enforce(context.Background(), nil, cfg, retention.Config{Interval: time.Hour}, time.Now())
		if err == nil || !strings.Contains(err.Error(), "retention: ") || !strings.Contains(err.Error(), "\"bad") {
			t.Errorf("Enforce with %+v: %v, want an error naming the bad name", cfg, err)
		}
	}
}
