package docscheck

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

// Every SQL block in docs/ (the analysts' guide's recipes) runs on the real ClickHouse and answers
// rows on data it should match.
func TestSQLBlocksRun(t *testing.T) {
	blocks := blocksIn(t, "sql")
	if n := countIn(blocks, "docs/analysts.md"); n < 7 {
		t.Fatalf("found %d SQL blocks in docs/analysts.md", n)
	}
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	now := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	var es []schemas.Event
	var ms []schemas.Metric
	for i := range 200 {
		ts := now.Add(time.Duration(i) * 2 * time.Second)
		node := fmt.Sprintf("transform_%d", (i/2)%2)
		es = append(es, schemas.Event{EventID: fmt.Sprint("e", i), TraceID: "550e8400-e29b-41d4-a716-446655440000",
			Type: []string{"node_failed", "node_finished"}[i%2], Name: "n", Timestamp: ts,
			Attributes: map[string]any{"node_id": node, "error": "boom", "region": []string{"eu-west", "us-east", "us-west"}[i%3]}})
		for _, m := range []schemas.Metric{
			{Name: "node_duration", Value: float64(i%50) / 100, Unit: "seconds", AggregationType: schemas.Histogram},
			{Name: "cpu_percent", Value: float64(i % 90), Unit: "percent", AggregationType: schemas.Gauge},
			{Name: []string{"cache_hits", "cache_misses"}[i%3/2], Value: 1, Unit: "count", AggregationType: schemas.Counter},
		} {
			m.MetricID, m.Timestamp, m.Attributes = fmt.Sprint(m.Name, i), ts, map[string]any{"node_id": node}
			ms = append(ms, m)
		}
		// An OTLP histogram point (the gateway makes one of each export).
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprint("h", i), Name: "http.server.duration", Value: 0.75, Unit: "s",
			AggregationType: schemas.Histogram, Timestamp: ts, Attributes: map[string]any{"node_id": node},
			Histogram: &schemas.Distribution{Count: 3, Min: 0.05, Max: 0.5, Bounds: []float64{0.1, 0.25}, Counts: []uint64{1, 1, 1}}})
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute, time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		sql := strings.TrimSuffix(strings.TrimSpace(strings.ReplaceAll(b.code, "tributary.", cfg.Database+".")), ";")
		for _, stmt := range strings.Split(sql, ";\n") {
			rows, err := conn.Query(ctx, stmt)
			if err != nil {
				t.Errorf("%s fails on ClickHouse: %v\n%s", b, err, stmt)
				continue
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if n == 0 {
				t.Errorf("%s returns no rows on data that should match it:\n%s", b, stmt)
			}
		}
	}
}

func countIn(blocks []block, file string) int {
	n := 0
	for _, b := range blocks {
		if b.file == file {
			n++
		}
	}
	return n
}
