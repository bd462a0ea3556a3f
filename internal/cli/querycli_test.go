package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

func TestQuerySubcommands(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	t0 := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	var ms []schemas.Metric
	for i := range 120 {
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprint(i), Name: "cpu_percent", Value: float64(i % 10), Unit: "percent",
			AggregationType: schemas.Gauge, Timestamp: t0.Add(time.Duration(i) * 5 * time.Second), Attributes: map[string]any{"host": fmt.Sprintf("h%d", i%2)}})
	}
	es := []schemas.Event{{EventID: "e1", TraceID: "t1", Type: "node_failed", Name: "load_1 Failed", Timestamp: t0, Attributes: map[string]any{"error": "boom"}}}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute, time.Hour}); err != nil {
		t.Fatal(err)
	}
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse = cfg
	url := testenv.QueryServer(t, qcfg)

	code, out, errs := run("aggregate", "-url", url, "-name", "cpu_percent", "-bucket", "5m", "-aggregates", "count,avg,max",
		"-group-by", "host", "-start", "2025-01-15T10:00:00Z", "-end", "2025-01-15T10:10:00Z")
	if code != 0 || !strings.Contains(out, "from rollups") || !strings.Contains(out, "host=h0") || !strings.Contains(out, "2025-01-15T10:05:00Z") {
		t.Fatalf("aggregate: %d\n%s%s", code, out, errs)
	}
	code, out, _ = run("aggregate", "-url", url, "-name", "cpu_percent", "-bucket", "10m", "-aggregates", "count",
		"-start", "2025-01-15T10:00:00Z", "-end", "2025-01-15T10:10:00Z", "-json")
	var a query.AggregateAnswer
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil || a.Series[0].Points[0].Values["count"] != 120 {
		t.Fatalf("aggregate -json: %d %s", code, out)
	}
	// Whole days, as the query service takes them (the README's bucket=1d recipe).
	code, out, _ = run("aggregate", "-url", url, "-name", "cpu_percent", "-bucket", "1d", "-aggregates", "count",
		"-start", "2025-01-15T00:00:00Z", "-end", "2025-01-16T00:00:00Z", "-json")
	var day query.AggregateAnswer
	if code != 0 || json.Unmarshal([]byte(out), &day) != nil || day.BucketSeconds != 86400 || len(day.Series[0].Points) != 1 {
		t.Fatalf("aggregate -bucket 1d: %d %s", code, out)
	}
	if code, _, errs := run("aggregate", "-url", url, "-name", "cpu_percent", "-bucket", "xd"); code == 0 || !strings.Contains(errs, "whole days") {
		t.Fatalf("-bucket xd: %d %s", code, errs)
	}
	code, out, _ = run("events", "-url", url, "-type", "node_failed", "-start", "2025-01-15T00:00:00Z")
	if code != 0 || !strings.Contains(out, "load_1 Failed") || !strings.Contains(out, `"error":"boom"`) {
		t.Fatalf("events: %d %s", code, out)
	}
	code, out, _ = run("metrics", "-url", url, "-name", "cpu_percent", "-attr", "host=h1", "-limit", "3", "-json")
	var got []schemas.Metric
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 3 || got[0].Attributes["host"] != "h1" {
		t.Fatalf("metrics: %d %s", code, out)
	}
	if code, _, errs := run("aggregate", "-url", url, "-name", "cpu_percent", "-aggregates", "p42"); code != 1 || !strings.Contains(errs, "aggregates") {
		t.Fatalf("a 400 must exit 1 naming the parameter: %d %s", code, errs)
	}
	if code, _, _ := run("aggregate", "-url", url); code != 2 {
		t.Fatalf("a missing -name must exit 2, got %d", code)
	}
}

func TestMigrateReportsEachStep(t *testing.T) {
	addr := testenv.ClickHouse(t).Addr[0] // a server that answers; migrate into a fresh database
	db := testenv.Unique("migrate")
	t.Setenv("TRIBUTARY_CLICKHOUSE_ADDR", addr)
	t.Setenv("TRIBUTARY_CLICKHOUSE_DATABASE", db)
	t.Setenv("TRIBUTARY_MIGRATE_KAFKA", "false")
	t.Cleanup(func() {
		conn := testenv.OpenClickHouse(t, testenv.ClickHouse(t))
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
	})
	code, out, errs := run("migrate")
	if code != 0 || !strings.Contains(out, "applied 0001_raw_tables") || !strings.Contains(out, "applied 0002_rollups") {
		t.Fatalf("first migrate: %d\n%s%s", code, out, errs)
	}
	if code, out, _ = run("migrate"); code != 0 || !strings.Contains(out, "0 migration(s) applied") {
		t.Fatalf("second migrate: %d %s", code, out)
	}
}
