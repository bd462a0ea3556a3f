package cluster_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/retention"
	"github.com/tributary/tributary/schemas"
)

// Retention on the cluster drops the old daily partitions of every table from the local tables of
// both shards and both replicas of each, and leaves every row of the recent days on each of them;
// a second run drops nothing.
func TestRetentionOnCluster(t *testing.T) {
	ctx := context.Background()
	cfg := clusterConfig(t, clusterCH[0])
	conn := open(t, cfg, false)
	if _, err := chdb.MigrateConfig(ctx, conn, cfg); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)
	ages := []int{0, 1, 7, 8, 40} // days before now
	var es []schemas.Event
	var ms []schemas.Metric
	for _, age := range ages {
		ts := now.AddDate(0, 0, -age)
		for k := range 16 { // 16 traces and metric ids a day: rows of every day on both shards
			es = append(es, schemas.Event{EventID: fmt.Sprintf("e%d_%d", age, k), TraceID: fmt.Sprint("tr", k), Type: "t", Name: "n",
				Timestamp: ts, Attributes: map[string]any{"k": "v"}})
			ms = append(ms, schemas.Metric{MetricID: fmt.Sprintf("m%d_%d", age, k), Name: "m", AggregationType: schemas.Counter,
				Value: 1, Timestamp: ts, Attributes: map[string]any{"host": fmt.Sprint("h", k)}})
		}
	}
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute}); err != nil {
		t.Fatal(err)
	}
	syncReplicas(t, cfg)
	day := func(age int) uint32 {
		d := now.AddDate(0, 0, -age)
		return uint32(d.Year()*10000 + int(d.Month())*100 + d.Day())
	}
	before := localRowsByDay(t, cfg)
	for server, tables := range before {
		for table, days := range tables {
			for _, age := range ages {
				if days[day(age)] == 0 {
					t.Fatalf("before retention, %s on %s holds no row of %d: %v (the test wants every day on every shard)", table, server, day(age), days)
				}
			}
		}
	}

	// Events (and their indexes) keep 7 days, metrics 1, rollups 30.
	rc := retention.Config{EventsDays: 7, MetricsDays: 1, RollupsDays: 30, Interval: time.Hour}
	dropped, err := retention.Enforce(ctx, conn, cfg, rc, now)
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string][]int{"events_local": {8, 40}, "events_trace_index_local": {8, 40}, "events_attr_index_local": {8, 40},
		"metrics_local": {7, 8, 40}, "rollups_local": {40}}
	var want []retention.Dropped
	for _, table := range []string{"events_attr_index_local", "events_local", "events_trace_index_local", "metrics_local", "rollups_local"} {
		for _, age := range []int{40, 8, 7} {
			for _, g := range gone[table] {
				if g == age {
					want = append(want, retention.Dropped{Table: table, Partition: fmt.Sprint(day(age))})
				}
			}
		}
	}
	if !reflect.DeepEqual(dropped, want) {
		t.Fatalf("retention dropped %v, want %v", dropped, want)
	}

	// On every server (both replicas of both shards): the old days are gone, the recent ones hold
	// every row they held.
	syncReplicas(t, cfg)
	after := localRowsByDay(t, cfg)
	for server, tables := range before {
		for table, days := range tables {
			kept := maps.Clone(days)
			for _, age := range gone[table] {
				delete(kept, day(age))
			}
			if got := after[server][table]; !reflect.DeepEqual(got, kept) {
				t.Errorf("after retention, %s on %s holds rows by day %v, want %v (before: %v)", table, server, got, kept, days)
			}
		}
	}
	again, err := retention.Enforce(ctx, conn, cfg, rc, now)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run dropped %v, %v; want nothing", again, err)
	}
}

// localRowsByDay reads, on every server of the cluster, how many rows each local table of cfg's
// database holds per day (its partitions: YYYYMMDD), from the server's own parts.
func localRowsByDay(t *testing.T, cfg chdb.Config) map[string]map[string]map[uint32]uint64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]map[string]map[uint32]uint64{}
	for _, addr := range clusterCH {
		c := cfg
		c.Addr = []string{addr}
		rows, err := open(t, c, false).Query(ctx, "SELECT table, toUInt32(partition), sum(rows) FROM system.parts WHERE database = ? AND active"+
			" AND table IN ('events_local', 'events_trace_index_local', 'events_attr_index_local', 'metrics_local', 'rollups_local') GROUP BY table, partition", cfg.Database)
		if err != nil {
			t.Fatalf("parts on %s: %v", addr, err)
		}
		out[addr] = map[string]map[uint32]uint64{}
		for rows.Next() {
			var table string
			var day uint32
			var n uint64
			if err := rows.Scan(&table, &day, &n); err != nil {
				t.Fatal(err)
			}
			if out[addr][table] == nil {
				out[addr][table] = map[uint32]uint64{}
			}
			out[addr][table][day] = n
		}
		rows.Close()
		if len(out[addr]) != 5 {
			t.Fatalf("server %s has parts of %d local tables, want 5: %v", addr, len(out[addr]), out[addr])
		}
	}
	return out
}
