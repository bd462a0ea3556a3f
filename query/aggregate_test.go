package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// aggFixture loads metrics of two tenants (raw rows and their rollups) and events, and serves them
// with tokens for each tenant.
type aggFixture struct {
	metrics []schemas.Metric // tenant acme, node_duration (a histogram)
	gauges  []schemas.Metric // tenant acme, cpu (a gauge)
	events  []schemas.Event  // tenant acme
	acme    *query.Client
	globex  *query.Client
	open    *query.Client // no token
	acmeURL string
}

var t0 = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

func newAggFixture(t *testing.T) *aggFixture {
	t.Helper()
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	f := &aggFixture{}
	var all []schemas.Metric
	for i := range 6000 {
		m := schemas.Metric{
			MetricID: fmt.Sprintf("m%05d", i), Name: "node_duration", Unit: "seconds", AggregationType: schemas.Histogram,
			Value:      math.Round((0.001+float64((i*7919)%1000)/997*(1+float64(i%4)))*1e6) / 1e6,
			Timestamp:  t0.Add(time.Duration(i) * 700 * time.Millisecond),
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%4), "host": fmt.Sprintf("h%d", i%3)},
			Source:     schemas.Source{Tenant: "acme"},
		}
		f.metrics = append(f.metrics, m)
		all = append(all, m)
		other := m
		other.MetricID, other.Tenant, other.Value = "g"+m.MetricID, "globex", m.Value*1000
		all = append(all, other)
	}
	for i := range 600 {
		g := schemas.Metric{MetricID: fmt.Sprintf("c%04d", i), Name: "cpu", Unit: "percent", AggregationType: schemas.Gauge,
			Value: float64((i*37)%100) + 0.5, Timestamp: t0.Add(time.Duration(i) * 7 * time.Second),
			Attributes: map[string]any{"host": fmt.Sprintf("h%d", i%3)}, Source: schemas.Source{Tenant: "acme"}}
		f.gauges = append(f.gauges, g)
		all = append(all, g)
	}
	types := []string{"node_started", "node_finished", "node_failed"}
	for i := range 900 {
		f.events = append(f.events, schemas.Event{EventID: fmt.Sprintf("e%04d", i), TraceID: fmt.Sprintf("tr%d", i%30), Type: types[i%3],
			Name: "n", Timestamp: t0.Add(time.Duration(i) * 3 * time.Second), Source: schemas.Source{Tenant: "acme"}})
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, f.events, all); err != nil {
		t.Fatal(err)
	}
	// Rolled up in two passes, as a worker would across batches: the windows spanning the split are
	// written twice, the second version (higher last_offset) replacing the first. Queries must see
	// only the latest version, merged or not.
	half := len(all) / 2
	if err := consumertest.RollUpFrom(ctx, conn, cfg.Database, all[:half], []time.Duration{time.Minute, time.Hour}, 0); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUpFrom(ctx, conn, cfg.Database, all[half:], []time.Duration{time.Minute, time.Hour}, int64(half)); err != nil {
		t.Fatal(err)
	}
	ro := cfg
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	qcfg := query.Config{ClickHouse: ro, Listen: "x", DefaultLimit: 100, MaxLimit: 10000, MaxOffset: 100000, Timeout: 10 * time.Second,
		MaxBuckets: 5000, MaxSeriesRows: 100000, RollupTiers: []time.Duration{time.Minute, time.Hour}}
	qcfg.Tokens = map[string]string{"acme-token-1": "acme", "globex-token-1": "globex"}
	scoped := testenv.QueryServer(t, qcfg)
	f.acme = query.NewClient(scoped, nil).WithToken("acme-token-1")
	f.globex = query.NewClient(scoped, nil).WithToken("globex-token-1")
	f.open = query.NewClient(scoped, nil)
	f.acmeURL = scoped
	return f
}

type bkey struct {
	bucket int64
	group  string
}

// brute computes the aggregates of ms per bucket and group (quantiles by quantileExact's rank).
func brute(ms []schemas.Metric, bucket int64, groupBy string, start, end time.Time) map[bkey]map[string]float64 {
	vals := map[bkey][]float64{}
	last := map[bkey][2]float64{}
	for _, m := range ms {
		if m.Timestamp.Before(start) || !m.Timestamp.Before(end) {
			continue
		}
		g := ""
		if groupBy != "" {
			var parts []string
			for _, k := range strings.Split(groupBy, ",") {
				parts = append(parts, fmt.Sprint(m.Attributes[k]))
			}
			g = strings.Join(parts, "|")
		}
		k := bkey{m.Timestamp.Unix() / bucket * bucket, g}
		vals[k] = append(vals[k], m.Value)
		if l, ok := last[k]; !ok || float64(m.Timestamp.UnixMicro()) > l[0] {
			last[k] = [2]float64{float64(m.Timestamp.UnixMicro()), m.Value}
		}
	}
	out := map[bkey]map[string]float64{}
	for k, v := range vals {
		sort.Float64s(v)
		sum := 0.0
		for _, x := range v {
			sum += x
		}
		q := func(p float64) float64 { return v[min(int(p*float64(len(v))), len(v)-1)] }
		out[k] = map[string]float64{"count": float64(len(v)), "sum": sum, "min": v[0], "max": v[len(v)-1], "avg": sum / float64(len(v)),
			"rate": sum / float64(bucket), "last": last[k][1], "p50": q(0.5), "p90": q(0.9), "p95": q(0.95), "p99": q(0.99)}
	}
	return out
}

func compare(t *testing.T, a query.AggregateAnswer, want map[bkey]map[string]float64, groupBy string, quantileTol float64) {
	t.Helper()
	n := 0
	for _, s := range a.Series {
		for _, p := range s.Points {
			n++
			var parts []string
			if groupBy != "" {
				for _, k := range strings.Split(groupBy, ",") {
					parts = append(parts, s.Group[k])
				}
			}
			w := want[bkey{p.Time.Unix(), strings.Join(parts, "|")}]
			if w == nil {
				t.Fatalf("unexpected bucket %v group %v", p.Time, s.Group)
			}
			for agg, got := range p.Values {
				exp := w[agg]
				tol := 1e-9 * math.Max(1, math.Abs(exp))
				if agg[0] == 'p' {
					tol = quantileTol*math.Abs(exp) + 1e-12
				}
				if math.Abs(got-exp) > tol {
					t.Fatalf("%s source, bucket %v group %v: %s = %v, want %v", a.Source, p.Time, s.Group, agg, got, exp)
				}
			}
		}
	}
	if n != len(want) {
		t.Fatalf("%s source: %d points, brute force has %d", a.Source, n, len(want))
	}
}

func TestAggregatesMatchBruteForce(t *testing.T) {
	f := newAggFixture(t)
	ctx := context.Background()
	all := []string{"count", "sum", "min", "max", "avg", "rate", "last", "p50", "p90", "p95", "p99"}
	start, end := t0, t0.Add(70*time.Minute)
	for _, c := range []struct {
		bucket     time.Duration
		groupBy    string
		source     string
		wantSource string
		tol        float64
	}{
		{time.Minute, "node_id", "", "rollups", rollups.RelativeAccuracy},
		{time.Minute, "node_id", "raw", "raw", 0},
		{5 * time.Minute, "host", "", "rollups", rollups.RelativeAccuracy},
		{30 * time.Second, "", "", "raw", 0},
		{time.Hour, "", "", "rollups", rollups.RelativeAccuracy},
		{time.Minute, "node_id,host", "", "rollups", rollups.RelativeAccuracy}, // one window row a cell: stored percentiles
		{time.Hour, "host,node_id", "rollups", "rollups", rollups.RelativeAccuracy},
	} {
		q := query.AggregateQuery{Name: "node_duration", Bucket: c.bucket, Aggregates: all, Start: start, End: end, Source: c.source}
		if c.groupBy != "" {
			q.GroupBy = strings.Split(c.groupBy, ",")
		}
		a, err := f.acme.Aggregate(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if a.Source != c.wantSource {
			t.Fatalf("bucket %v: answered from %s, want %s", c.bucket, a.Source, c.wantSource)
		}
		compare(t, a, brute(f.metrics, int64(c.bucket/time.Second), c.groupBy, start, end), c.groupBy, c.tol)
	}
	// Both ways of finding rollup percentiles were taken: stored with a single window row, merged
	// sketches otherwise.
	for _, path := range []string{"stored", "merged"} {
		if n := counterValue(t, f.acmeURL, `tributary_query_rollup_cells_total{path="`+path+`"}`); n == 0 {
			t.Errorf("no rollup cells answered by the %s path", path)
		}
	}
	// Rollups keep percentiles for histograms only: a gauge's percentiles come from raw rows when the
	// source is auto, and asking rollups for them is a 400 naming source.
	q := query.AggregateQuery{Name: "cpu", Bucket: 5 * time.Minute, Aggregates: []string{"avg", "p95"}, GroupBy: []string{"host"}, Start: start, End: end}
	a, err := f.acme.Aggregate(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if a.Source != "raw" {
		t.Fatalf("gauge percentiles answered from %s, want raw", a.Source)
	}
	compare(t, a, brute(f.gauges, 300, "host", start, end), "host", 0)
	q.Aggregates = []string{"avg"}
	if a, err = f.acme.Aggregate(ctx, q); err != nil || a.Source != "rollups" {
		t.Fatalf("gauge average: source %s, %v; want rollups", a.Source, err)
	}
	compare(t, a, brute(f.gauges, 300, "host", start, end), "host", 0)
	q.Aggregates, q.Source = []string{"p95"}, "rollups"
	_, err = f.acme.Aggregate(ctx, q)
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Parameter != "source" {
		t.Fatalf("gauge p95 from rollups: %v, want 400 naming source", err)
	}
	// An unaligned range goes to raw rows; top keeps the groups with the most points.
	off := start.Add(90 * time.Second)
	a, err = f.acme.Aggregate(ctx, query.AggregateQuery{Name: "node_duration", Bucket: time.Minute, Aggregates: []string{"count", "max"},
		GroupBy: []string{"node_id"}, Start: off, End: end, Top: 2, Attributes: map[string]string{"host": "h1"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Source != "raw" || len(a.Series) != 2 {
		t.Fatalf("unaligned, top 2: source %s, %d series", a.Source, len(a.Series))
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	f := newAggFixture(t)
	ctx := context.Background()
	q := query.AggregateQuery{Name: "node_duration", Bucket: time.Hour, Aggregates: []string{"count", "max"}, Start: t0, End: t0.Add(2 * time.Hour)}
	for _, src := range []string{"rollups", "raw"} {
		q.Source = src
		a, err := f.acme.Aggregate(ctx, q)
		g, err2 := f.globex.Aggregate(ctx, q)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		total := func(ans query.AggregateAnswer, agg string, fold func(a, b float64) float64) float64 {
			v := 0.0
			for _, p := range ans.Series[0].Points {
				v = fold(v, p.Values[agg])
			}
			return v
		}
		sum := func(a, b float64) float64 { return a + b }
		ac, gc := total(a, "count", sum), total(g, "count", sum)
		am, gm := total(a, "max", math.Max), total(g, "max", math.Max)
		if len(a.Series) != 1 || ac != 6000 || gc != 6000 || math.Abs(gm-am*1000) > 1e-6*gm {
			t.Fatalf("%s: acme %v points / max %v, globex %v / %v: each tenant must see only its own rows", src, ac, am, gc, gm)
		}
	}
	es, _, err := f.globex.QueryEvents(ctx, query.Filter{Limit: 1000, Attributes: map[string]string{}})
	if err != nil || len(es) != 0 {
		t.Fatalf("globex sees %d of acme's events (%v)", len(es), err)
	}
	_, _, err = f.open.QueryEvents(ctx, query.Filter{Limit: 10})
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("no token: %v, want 401", err)
	}
	_, _, err = f.acme.WithToken("nobody-token").QueryEvents(ctx, query.Filter{Limit: 10})
	if !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Fatalf("unknown token: %v, want 403", err)
	}
}

func TestTraceViewAndEventCounts(t *testing.T) {
	f := newAggFixture(t)
	ctx := context.Background()
	tr, err := f.acme.Trace(ctx, "tr7")
	if err != nil || len(tr) != 30 {
		t.Fatalf("trace: %d events, %v", len(tr), err)
	}
	for i := 1; i < len(tr); i++ {
		if tr[i].Timestamp.Before(tr[i-1].Timestamp) {
			t.Fatal("trace events out of order")
		}
	}
	_, err = f.acme.Trace(ctx, "no-such-trace")
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("unknown trace: %v, want 404", err)
	}
	if _, err := f.globex.Trace(ctx, "tr7"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("another tenant's trace: %v, want 404", err)
	}

	// Event counts per 5-minute bucket and type equal a brute-force count.
	want := map[string]uint64{}
	for _, e := range f.events {
		want[fmt.Sprintf("%d/%s", e.Timestamp.Unix()/300*300, e.Type)]++
	}
	var body struct {
		Counts []query.EventCount `json:"counts"`
	}
	getJSON(t, f.acmeURL+"/v1/events/counts?bucket=5m&start=2025-01-15T10:00:00Z&end=2025-01-15T11:00:00Z", "acme-token-1", &body)
	if len(body.Counts) != len(want) {
		t.Fatalf("%d counts, want %d", len(body.Counts), len(want))
	}
	for _, c := range body.Counts {
		if k := fmt.Sprintf("%d/%s", c.Time.Unix(), c.Type); want[k] != c.Count {
			t.Fatalf("%s: %d, want %d", k, c.Count, want[k])
		}
	}
}

func getJSON(t *testing.T, url, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: HTTP %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// The OpenAPI document parses and describes every route the service serves.
func TestOpenAPIDocument(t *testing.T) {
	f := newAggFixture(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	getJSON(t, f.acmeURL+"/openapi.json", "", &doc)
	for _, p := range []string{"/v1/events", "/v1/events/counts", "/v1/traces/{trace_id}", "/v1/metrics", "/v1/aggregate", "/healthz", "/readyz", "/metrics"} {
		if _, ok := doc.Paths[p]["get"]; !ok || doc.OpenAPI == "" {
			t.Errorf("openapi.json lacks GET %s", p)
		}
	}
	// A trace is paged as /v1/events is: the document says so.
	var traces struct {
		Parameters []struct{ Name, In string } `json:"parameters"`
	}
	raw, _ := json.Marshal(doc.Paths["/v1/traces/{trace_id}"]["get"])
	_ = json.Unmarshal(raw, &traces)
	if fmt.Sprint(traces.Parameters) != "[{trace_id path} {limit query} {offset query}]" {
		t.Errorf("openapi.json: /v1/traces parameters %v, want trace_id, limit, offset", traces.Parameters)
	}
}

func TestAggregateBadParameters(t *testing.T) {
	f := newAggFixture(t)
	ctx := context.Background()
	for _, c := range []struct {
		q     query.AggregateQuery
		param string
	}{
		{query.AggregateQuery{}, "name"},
		{query.AggregateQuery{Name: "m", Aggregates: []string{"p42"}}, "aggregates"},
		{query.AggregateQuery{Name: "m", GroupBy: []string{"bad key'"}}, "group_by"},
		{query.AggregateQuery{Name: "m", GroupBy: []string{"a", "b", "c", "d", "e"}}, "group_by"},
		{query.AggregateQuery{Name: "m", Bucket: time.Second, Start: t0, End: t0.Add(48 * time.Hour)}, "bucket"},
		{query.AggregateQuery{Name: "m", Bucket: 1500 * time.Millisecond}, "bucket"},
		{query.AggregateQuery{Name: "m", Bucket: time.Minute, Start: t0.Add(time.Second), End: t0.Add(time.Hour), Source: "rollups"}, "source"},
	} {
		_, err := f.acme.Aggregate(ctx, c.q)
		var apiErr *query.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Parameter != c.param {
			t.Errorf("%+v: %v, want 400 naming %s", c.q, err, c.param)
		}
	}
}

// Injection attempts in the aggregation's parameters are refused (400) or bound harmlessly, and
// the tables are intact afterwards.
func TestAggregateInjection(t *testing.T) {
	f := newAggFixture(t)
	ctx := context.Background()
	evil := "x') OR 1=1 --"
	for _, q := range []query.AggregateQuery{
		{Name: evil},
		{Name: "node_duration", Attributes: map[string]string{evil: evil}},
		{Name: "node_duration", Attributes: map[string]string{"node_id": evil}},
	} {
		q.Start, q.End = t0, t0.Add(2*time.Hour)
		a, err := f.acme.Aggregate(ctx, q)
		if err != nil || len(a.Series) != 0 {
			t.Fatalf("%+v: %d series, %v; want no rows", q, len(a.Series), err)
		}
	}
	_, err := f.acme.Aggregate(ctx, query.AggregateQuery{Name: "node_duration", GroupBy: []string{evil}})
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Parameter != "group_by" {
		t.Fatalf("an injected group_by key: %v, want 400", err)
	}
	a, err := f.acme.Aggregate(ctx, query.AggregateQuery{Name: "node_duration", Bucket: time.Hour, Aggregates: []string{"count"}, Start: t0, End: t0.Add(2 * time.Hour)})
	if err != nil || a.Series[0].Points[0].Values["count"]+a.Series[0].Points[1].Values["count"] != 6000 {
		t.Fatalf("after the attempts: %v %v", a, err)
	}
}

// counterValue reads one sample of the service's /metrics.
func counterValue(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}
