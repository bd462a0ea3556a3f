package pipelinetest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/pipeline"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// checkSelfMetrics fails unless the worker's own metrics count what was written and dead-lettered.
func checkSelfMetrics(t testing.TB, stack *pipeline.Stack, poison int) {
	t.Helper()
	families, err := stack.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[f.GetName()] += c.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"tributary_consumer_records_written_total": 2 * N,
		"tributary_consumer_dead_letters_total":    float64(poison),
	} {
		if got[name] != want {
			t.Errorf("metric %s = %v, want %v", name, got[name], want)
		}
	}
	if got["tributary_kafka_read_bytes_total"] == 0 || got["tributary_rollup_windows_written_total"] == 0 {
		t.Errorf("kafka client or rollup metrics missing: %v", got)
	}
}

// checkDeadLetters fails unless the poison records are on the dead-letter topic, byte for byte.
func checkDeadLetters(ctx context.Context, t testing.TB, brokers []string, topic string, poison []*kgo.Record) {
	t.Helper()
	dlq, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	var dead []string
	for len(dead) < len(poison) && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead = append(dead, string(r.Value)) })
	}
	sort.Strings(dead)
	var want []string
	for _, p := range poison {
		want = append(want, string(p.Value))
	}
	sort.Strings(want)
	if !reflect.DeepEqual(dead, want) {
		t.Fatalf("dead-letter topic holds %q, want %q", dead, want)
	}
}

// Traces and ByAttr filters the scenario asks the query service for.
var (
	traceIDs    = []string{"trace-000", "trace-007", "trace-042", "trace-099"}
	attrFilters = []query.Filter{
		{Attributes: map[string]string{"node_id": "node_3"}},
		{Attributes: map[string]string{"node_id": "node_5"}, Types: []string{"alert"}},
	}
)

// queries asks the query service for some traces, events by attribute and aggregates (raw and
// rollups, percentiles, by host and overall), failing on answers whose size is not what the
// records sent give.
func queries(ctx context.Context, t testing.TB, qc *query.Client) (map[string][]schemas.Event, map[string][]schemas.Event, map[string]query.AggregateAnswer) {
	t.Helper()
	traces := map[string][]schemas.Event{}
	for _, id := range traceIDs {
		es, err := qc.Trace(ctx, id)
		if err != nil {
			t.Fatalf("trace %s: %v", id, err)
		}
		if want := expected(func(e schemas.Event) bool { return e.TraceID == id }); len(es) != want {
			t.Fatalf("trace %s: %d events, want %d", id, len(es), want)
		}
		traces[id] = utc(es)
	}
	byAttr := map[string][]schemas.Event{}
	for _, f := range attrFilters {
		f.Limit = 1000
		es, err := query.All(ctx, f, qc.QueryEvents)
		if err != nil {
			t.Fatalf("events %v: %v", f.Values(), err)
		}
		want := expected(func(e schemas.Event) bool {
			return e.Attributes["node_id"] == f.Attributes["node_id"] && (f.Types == nil || e.Type == f.Types[0])
		})
		if len(es) != want || want == 0 {
			t.Fatalf("events %v: %d, want %d", f.Values(), len(es), want)
		}
		byAttr[f.Values().Encode()] = utc(es)
	}
	aggs := map[string]query.AggregateAnswer{}
	for _, q := range aggregateQueries() {
		a, err := qc.Aggregate(ctx, q)
		if err != nil {
			t.Fatalf("aggregate %v: %v", q.Values(), err)
		}
		if a.Source != q.Source || len(a.Series) == 0 || (len(q.GroupBy) > 0 && len(a.Series) != 16) {
			t.Fatalf("aggregate %v: answered from %s with %d series, want %s with 16 (by host) or 1", q.Values(), a.Source, len(a.Series), q.Source)
		}
		aggs[q.Values().Encode()] = a
	}
	return traces, byAttr, aggs
}

// aggregateQueries are a counter and a histogram (percentiles too) from raw rows (1 s and 1 min
// buckets) and from rollups (1 min and 1 h), by host and overall.
func aggregateQueries() []query.AggregateQuery {
	var out []query.AggregateQuery
	for name, aggregates := range map[string][]string{
		"metric_0": {"count", "sum", "min", "max", "avg"},
		"metric_2": {"count", "sum", "min", "max", "avg", "p50", "p90", "p99"},
	} {
		for _, sb := range []struct {
			source string
			bucket time.Duration
		}{{"raw", time.Second}, {"raw", time.Minute}, {"rollups", time.Minute}, {"rollups", time.Hour}} {
			for _, groupBy := range [][]string{{"host"}, nil} {
				out = append(out, query.AggregateQuery{Name: name, Bucket: sb.bucket, Source: sb.source, GroupBy: groupBy,
					Aggregates: aggregates,
					Start:      Base.Truncate(time.Hour), End: Base.Truncate(time.Hour).Add(time.Hour)})
			}
		}
	}
	return out
}

// expected counts the scenario's events for which keep is true.
func expected(keep func(schemas.Event) bool) int {
	n := 0
	for i := range N {
		if e, _ := record(i); keep(e) {
			n++
		}
	}
	return n
}

func utc(es []schemas.Event) []schemas.Event {
	for i := range es {
		es[i].Timestamp = es[i].Timestamp.UTC()
	}
	return es
}

// sqlChecks are counts and sums over the stored rows, each as text (exact: the sums are of values
// that float64 holds exactly, and of hashes modulo 2^64).
var sqlChecks = []string{
	"SELECT toString(count()) FROM events FINAL",
	"SELECT toString(count()) FROM metrics FINAL",
	"SELECT toString(count()) FROM events_trace_index FINAL",
	"SELECT toString(count()) FROM events_attr_index FINAL",
	"SELECT toString(sum(cityHash64(tenant, event_id, trace_id, span_id, type, name, timestamp_us, attributes, service, host))) FROM events FINAL",
	"SELECT toString(sum(cityHash64(tenant, metric_id, trace_id, name, value, unit, toString(aggregation_type), timestamp_us, attributes))) FROM metrics FINAL",
	"SELECT toString(sum(value)) FROM metrics FINAL",
	"SELECT toString(count()) FROM (SELECT DISTINCT series_id, tier, window_start FROM rollups)",
	"SELECT toString(sum(n)) || ' ' || toString(sum(total)) || ' ' || toString(sum(zero)) FROM (" + rollupMerge + ")",
}

var rollupMerge = strings.ReplaceAll(testenv.RollupMergeSQL, "%s.", "")

func sqlAnswers(t testing.TB, conn driver.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, q := range sqlChecks {
		var s string
		if err := conn.QueryRow(context.Background(), q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out[q] = s
	}
	if out[sqlChecks[0]] != fmt.Sprint(N) || out[sqlChecks[1]] != fmt.Sprint(N) {
		t.Fatalf("stored %s events and %s metrics (FINAL), want %d each", out[sqlChecks[0]], out[sqlChecks[1]], N)
	}
	return out
}

// Same fails the test where two runs' answers (an's a, bn's b) differ, naming the answer and both
// values.
func Same(t testing.TB, an, bn string, a, b Answers) {
	t.Helper()
	same := func(what string, x, y any) {
		t.Helper()
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s: %s and %s differ:\n%s: %v\n%s: %v", what, an, bn, an, x, bn, y)
		}
	}
	if len(a.Events) != len(b.Events) || len(a.Metrics) != len(b.Metrics) {
		t.Errorf("%s has %d events and %d metrics, %s %d and %d", an, len(a.Events), len(a.Metrics), bn, len(b.Events), len(b.Metrics))
	} else {
		for i := range a.Events {
			same(fmt.Sprintf("event %d", i), a.Events[i], b.Events[i])
		}
		for i := range a.Metrics {
			same(fmt.Sprintf("metric %d", i), a.Metrics[i], b.Metrics[i])
		}
	}
	for _, id := range traceIDs {
		same("trace "+id, a.Traces[id], b.Traces[id])
	}
	same("events by attribute", a.ByAttr, b.ByAttr)
	for _, q := range aggregateQueries() {
		k := q.Values().Encode()
		same("aggregate "+k, a.Aggregates[k], b.Aggregates[k])
	}
	for _, q := range sqlChecks {
		same(q, a.SQL[q], b.SQL[q])
	}
	same("rollup windows matching the raw metrics", a.Windows, b.Windows)
}
