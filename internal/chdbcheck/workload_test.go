package chdbcheck

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/retention"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

var traces = []string{"550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", ""}

func normalized(t *testing.T, a map[string]any) map[string]any {
	t.Helper()
	n, err := schemas.NormalizeAttributes(a)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// events makes events around base (every type of attribute value; tenants "" and acme; three
// traces, one of them none) and three of 45 days before now, which retention drops.
func events(t *testing.T, base, now time.Time) (es []schemas.Event) {
	norm := func(a map[string]any) map[string]any { return normalized(t, a) }
	types := []string{"graph_started", "node_finished", "node_failed", "checkpoint", "node_retry"}
	for i := range 150 {
		attrs := map[string]any{"node_id": fmt.Sprintf("transform_%d", i%3), "rows": int64(i * 10), "ratio": float64(i) / 7, "ok": i%2 == 0}
		if types[i%5] == "node_failed" {
			attrs["error"] = "boom"
		}
		if i%7 == 0 {
			attrs["stage"] = map[string]any{"name": "load", "steps": []any{int64(1), "two", 3.5}}
		}
		e := schemas.Event{EventID: fmt.Sprintf("evt-%03d", i), TraceID: traces[i%3], Type: types[i%5], Name: "step " + strconv.Itoa(i%10),
			Timestamp:  base.Add(time.Duration(i)*4*time.Second + time.Duration(i)*time.Microsecond),
			Attributes: norm(attrs), Source: schemas.Source{Service: "etl", Host: "host-" + strconv.Itoa(i%2)}}
		if e.TraceID != "" {
			e.SpanID = "span-" + strconv.Itoa(i%4)
		}
		if i%4 == 3 {
			e.Tenant = "acme"
		}
		es = append(es, e)
	}
	for i := range 3 {
		es = append(es, schemas.Event{EventID: fmt.Sprintf("old-evt-%d", i), TraceID: traces[0], SpanID: "span-0", Type: "node_finished",
			Name: "old", Timestamp: now.AddDate(0, 0, -45).Add(time.Duration(i) * time.Second), Attributes: norm(map[string]any{"node_id": "transform_0"})})
	}
	return es
}

// metrics makes metric points around base (histograms with negative, zero and positive values;
// the metrics the dashboard and the analysts' guide read), and old ones of 500 days before now,
// which retention drops.
func metrics(t *testing.T, base, now time.Time) (ms, old []schemas.Metric) {
	norm := func(a map[string]any) map[string]any { return normalized(t, a) }
	metric := func(i int, name string, v float64, typ schemas.AggregationType, unit string, attrs map[string]any) {
		m := schemas.Metric{MetricID: fmt.Sprintf("m-%s-%03d", name, i), Name: name, Value: v, Unit: unit, AggregationType: typ,
			Timestamp: base.Add(time.Duration(i)*3*time.Second + time.Duration(i)*time.Microsecond), Attributes: norm(attrs),
			Source: schemas.Source{Service: "etl", Host: "host-1"}}
		if i%4 == 3 {
			m.Tenant = "acme"
		}
		if name == "node_duration" {
			m.TraceID = traces[i%3]
		}
		ms = append(ms, m)
	}
	for i := range 180 {
		node := map[string]any{"node_id": fmt.Sprintf("transform_%d", i%3)}
		metric(i, "node_duration", 0.01+float64(i%50)/100, schemas.Histogram, "seconds", node)
		metric(i, "cpu_percent", float64(i%90)+0.5, schemas.Gauge, "percent", node)
		metric(i, []string{"cache_hits", "cache_misses"}[i%3/2], 1, schemas.Counter, "count", node)
		balance := float64(i) / 10
		switch {
		case i%10 == 0:
			balance = 0
		case i%3 == 0:
			balance = -balance
		}
		metric(i, "balance_change", balance, schemas.Histogram, "dollars", map[string]any{"account": "a" + strconv.Itoa(i%2)})
		if i%6 == 0 {
			metric(i, "node_execution_count", 1, schemas.Counter, "count", node)
			metric(i, "llm_api_cost", 0.002*float64(i), schemas.Counter, "dollars", map[string]any{"model": "m1"})
			metric(i, "llm_input_tokens", float64(100+i), schemas.Counter, "tokens", map[string]any{"model": "m1"})
			metric(i, "tool_execution_count", 1, schemas.Counter, "count", map[string]any{"tool": []string{"search", "fetch"}[i%12/6]})
		}
		if i%12 == 0 {
			metric(i, "node_error_count", 1, schemas.Counter, "count", node)
		}
		if i%30 == 0 {
			metric(i, "graph_execution_count", 1, schemas.Counter, "count", map[string]any{"graph_id": "g1"})
		}
		if i%10 == 0 { // OTLP histogram points: explicit buckets, then exponential ones on both sides of zero
			metric(i, "http.server.duration", 0.75, schemas.Histogram, "s", node)
			h := &schemas.Distribution{Count: 3, Min: 0.05, Max: 0.5, Bounds: []float64{0.1, 0.25}, Counts: []uint64{1, 1, 1}}
			if i%20 == 0 {
				ms[len(ms)-1].Value = -2.5
				h = &schemas.Distribution{Count: 4, Min: -3, Max: 1.5, Exponential: &schemas.ExponentialBuckets{Scale: 1, ZeroCount: 1,
					ZeroThreshold: 1e-9, PositiveOffset: 0, PositiveCounts: []uint64{1}, NegativeOffset: 2, NegativeCounts: []uint64{1, 1}}}
			}
			ms[len(ms)-1].Histogram = h
		}
	}
	for i := range 3 {
		old = append(old, schemas.Metric{MetricID: fmt.Sprintf("old-m-%d", i), Name: "old_gauge", Value: float64(i), Unit: "count",
			AggregationType: schemas.Gauge, Timestamp: now.AddDate(0, 0, -500).Add(time.Duration(i) * time.Second), Attributes: map[string]any{}})
	}
	return ms, old
}

// captureWorkload runs Tributary's code paths on the real 18.16 server through rec's connections.
func captureWorkload(t *testing.T, rec *recorder, root string) string {
	ctx := context.Background()
	addr := testenv.ClickHouseAddr(t)
	db := testenv.Unique("chdbcheck")
	admin := rec.open(t, addr, "default")
	t.Cleanup(func() { _ = admin.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	rec.at("migrate (chdb, schemas/ddl)")
	if _, err := chdb.Migrate(ctx, admin, db); err != nil {
		t.Fatalf("migrate on 18.16: %v", err)
	}
	conn := rec.open(t, addr, db)

	now := time.Now().UTC()
	base := now.Add(-20 * time.Minute).Truncate(time.Minute)
	es := events(t, base, now)
	ms, old := metrics(t, base, now)
	tiers := []time.Duration{time.Minute, time.Hour}
	rec.at("consumer: events and metrics (ClickHouseStore.Write)")
	if err := consumertest.Write(ctx, conn, db, es, append(ms, old...)); err != nil {
		t.Fatal(err)
	}
	// Three roll-ups in turn, as successive batches of a worker: the second finds the windows the
	// first wrote (LoadWindows answers rows) and rewrites them.
	rec.at("consumer: rollups (LoadWindows, WriteWindows)")
	half := len(ms) / 2
	for _, part := range []struct {
		ms    []schemas.Metric
		first int
	}{{ms[:half], 0}, {ms[half:], half}, {old, len(ms)}} {
		if err := consumertest.RollUpFrom(ctx, conn, db, part.ms, tiers, int64(part.first)); err != nil {
			t.Fatal(err)
		}
	}
	rec.at("consumer: LatestWindows")
	store, err := consumer.NewClickHouseStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if latest, err := store.LatestWindows(ctx, map[int32]int64{0: base.Add(-2 * time.Hour).Unix()}); err != nil || len(latest[0]) == 0 {
		t.Fatalf("LatestWindows: %v, %v (want the stored tiers of partition 0)", latest, err)
	}

	queryService(t, rec, conn, db, base)
	analystsGuide(t, rec, conn, db, root)
	dashboard(t, rec, conn, db, root, base)

	rec.at("retention (internal/retention)")
	dropped, err := retention.Enforce(ctx, conn, chdb.Config{Database: db}, retention.Config{EventsDays: 30, MetricsDays: 30, RollupsDays: 400, Interval: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for _, d := range dropped {
		tables[d.Table] = true
	}
	if len(tables) != 5 {
		t.Fatalf("retention dropped partitions of %v; the workload means it to drop old ones of all five tables", tables)
	}
	rec.at("after retention")
	for _, table := range []string{"events", "events_trace_index", "events_attr_index", "metrics", "rollups"} {
		ts := "timestamp"
		if table == "rollups" {
			ts = "window_start"
		}
		queryAll(t, conn, "SELECT count(), uniqExact(toYYYYMMDD("+ts+")) FROM "+db+"."+table+" FINAL")
	}
	return db
}

// queryAll runs a statement the test itself sends and reads its answer.
func queryAll(t *testing.T, conn driver.Conn, sql string, args ...any) {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		return // recorded as 18.16's failure
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Errorf("read the answer of %s: %v", sql, err)
			return
		}
	}
	if err := rows.Err(); err != nil {
		t.Errorf("read the answer of %s: %v", sql, err)
	}
}

// queryService asks the query service every kind of question it answers, open and tenant-scoped.
func queryService(t *testing.T, rec *recorder, conn driver.Conn, db string, base time.Time) {
	cfg := query.DefaultConfig()
	cfg.ClickHouse.Database = db
	rfc := func(d time.Duration) string { return url.QueryEscape(base.Add(d).Format(time.RFC3339Nano)) }
	s, e, mid := rfc(0), rfc(15*time.Minute), rfc(3*time.Minute+500*time.Millisecond)
	hs, he := url.QueryEscape(base.Truncate(time.Hour).Format(time.RFC3339)), url.QueryEscape(base.Truncate(time.Hour).Add(2*time.Hour).Format(time.RFC3339))
	r := strings.NewReplacer("{S}", s, "{E}", e, "{MID}", mid, "{HS}", hs, "{HE}", he, "{T}", traces[0])
	// OTLP histogram points (explicit and exponential buckets): the answer holds their columns.
	const histograms = "/v1/metrics?name=http.server.duration&aggregation_type=histogram&start={S}&end={E}&limit=20"
	open := []string{
		"/v1/events?type=node_failed&limit=10",
		"/v1/events?type=node_failed,node_finished&name=step+2&start={S}&end={E}&order=desc&limit=5&offset=1",
		"/v1/events?start={MID}&end={E}&limit=7",
		"/v1/events?trace_id={T}&limit=50",
		"/v1/events?trace_id={T}&span_id=span-1&order=desc",
		"/v1/events?attr.node_id=transform_1&limit=5",
		"/v1/events?attr.node_id=transform_1&attr.error=boom&type=node_failed&start={S}&end={E}&order=desc&limit=3",
		"/v1/events?attr.ok=true&limit=2&offset=3",
		"/v1/traces/{T}",
		"/v1/metrics?name=cpu_percent&limit=20",
		"/v1/metrics?name=node_duration&aggregation_type=histogram&attr.node_id=transform_0&trace_id={T}&start={S}&end={E}&order=desc&limit=5",
		histograms,
		"/v1/events/counts?bucket=1m&start={S}&end={E}",
		"/v1/events/counts?bucket=5m&type=node_failed&attr.node_id=transform_1",
		"/v1/aggregate?name=cpu_percent&bucket=30s&aggregates=count,sum,min,max,avg,rate,last,p50,p90,p95,p99&group_by=node_id&start={S}&end={E}&source=raw",
		"/v1/aggregate?name=node_duration&bucket=1m&aggregates=count,sum,min,max,avg,last,p50,p90,p95,p99&group_by=node_id&start={S}&end={E}",
		"/v1/aggregate?name=node_duration&bucket=2m&aggregates=count,p50,p99&start={S}&end={E}",
		"/v1/aggregate?name=balance_change&bucket=1m&aggregates=min,p50,p95&start={S}&end={E}&source=rollups",
		"/v1/aggregate?name=cpu_percent&bucket=1m&aggregates=avg,p95&start={S}&end={E}",
		"/v1/aggregate?name=cache_hits&bucket=1h&aggregates=sum,count,rate&group_by=node_id&attr.node_id=transform_1&start={HS}&end={HE}",
		"/v1/aggregate?name=cpu_percent&bucket=1m&aggregates=max,last&source=rollups&group_by=node_id&top=2&start={S}&end={E}",
	}
	scoped := []string{
		"/v1/events?type=node_failed,graph_started&limit=5",
		"/v1/events?attr.node_id=transform_0&limit=5",
		"/v1/traces/{T}",
		"/v1/metrics?name=cpu_percent&limit=5",
		"/v1/events/counts?bucket=1m&start={S}&end={E}",
		"/v1/aggregate?name=node_duration&bucket=1m&aggregates=count,p95&start={S}&end={E}",
		"/v1/aggregate?name=node_duration&bucket=1m&aggregates=count,p95&start={S}&end={E}&source=raw",
	}
	// What some answers must hold, so that their statements read every kind of column.
	answers := map[string][]string{r.Replace(histograms): {
		`"histogram":{"count":3,"min":0.05,"max":0.5,"bounds":[0.1,0.25],"counts":[1,1,1],"exponential":null}`,
		`"exponential":{"scale":1,"zero_count":1,"zero_threshold":1e-9,"positive_offset":0,"positive_counts":[1],"negative_offset":2,"negative_counts":[1,1]}`,
	}}
	ask := func(cfg query.Config, token string, paths []string) {
		srv, err := query.New(cfg, conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		defer hs.Close()
		for _, p := range paths {
			p = r.Replace(p)
			origin := "query service GET " + p
			req, _ := http.NewRequest(http.MethodGet, hs.URL+p, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
				origin += " (tenant acme)"
			}
			rec.at(origin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: HTTP %d on 18.16: %s", origin, resp.StatusCode, body)
			}
			for _, want := range answers[p] {
				if !strings.Contains(string(body), want) {
					t.Errorf("%s: the answer lacks %s (the workload means it to hold every kind of histogram column)", origin, want)
				}
			}
		}
	}
	ask(cfg, "", open)
	cfg.Tokens = map[string]string{"acme-secret-token": "acme"}
	ask(cfg, "acme-secret-token", scoped)
}
