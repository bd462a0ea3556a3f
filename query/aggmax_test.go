package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// aggMaxFixture serves, with the default limits and no tokens:
//   - huge: a counter with two points of 1e308 in one minute (their sum overflows) and a 5 later;
//   - fine: a gauge, one point a second for 10,000 s from t0, four attributes (a, b, c, d);
//   - coarse: a gauge, one point a minute for 10,000 minutes from t0, the same attributes;
//   - the README's recipe metrics (cache_hits, cache_misses, operation_latency, cpu_percent) and
//     events in the last half hour;
//
// raw rows and rollups of all.
type aggMaxFixture struct {
	url string
	cfg query.Config
	now time.Time
}

func newAggMaxFixture(t *testing.T) *aggMaxFixture {
	t.Helper()
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	var ms []schemas.Metric
	add := func(name string, typ schemas.AggregationType, v float64, ts time.Time, attrs map[string]any) {
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprintf("%s-%d", name, len(ms)), Name: name, Value: v, Unit: "1",
			AggregationType: typ, Timestamp: ts, Attributes: attrs})
	}
	add("huge", schemas.Counter, 1e308, t0.Add(time.Second), nil)
	add("huge", schemas.Counter, 1e308, t0.Add(2*time.Second), nil)
	add("huge", schemas.Counter, 5, t0.Add(70*time.Second), nil)
	groups := func(i int) map[string]any {
		return map[string]any{"a": fmt.Sprint(i % 2), "b": fmt.Sprint(i % 3), "c": fmt.Sprint(i % 5), "d": fmt.Sprint(i % 7)}
	}
	for i := range 10000 {
		add("fine", schemas.Gauge, float64(i%100), t0.Add(time.Duration(i)*time.Second), groups(i))
		add("coarse", schemas.Gauge, float64(i%100), t0.Add(time.Duration(i)*time.Minute), groups(i))
	}
	now := time.Now().UTC()
	var es []schemas.Event
	for i := range 60 {
		ts := now.Add(-30*time.Minute + time.Duration(i)*10*time.Second)
		node := map[string]any{"node_id": fmt.Sprintf("transform_%d", i%2)}
		add("cache_hits", schemas.Counter, 1, ts, node)
		add("cache_misses", schemas.Counter, 1, ts, node)
		add("operation_latency", schemas.Histogram, float64(i)/10, ts, node)
		add("cpu_percent", schemas.Gauge, float64(i), ts, node)
		es = append(es, schemas.Event{EventID: fmt.Sprint("e", i), Type: "node_failed", Name: "n", Timestamp: ts, Attributes: node})
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUpFrom(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute, time.Hour}, 0); err != nil {
		t.Fatal(err)
	}
	ro := cfg
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	f := &aggMaxFixture{cfg: query.DefaultConfig(), now: now}
	f.cfg.ClickHouse = ro
	f.url = testenv.QueryServer(t, f.cfg)
	return f
}

type apiAnswer struct {
	status int
	body   []byte
	err    struct{ Error, Parameter string }
	agg    query.AggregateAnswer
}

func (f *aggMaxFixture) getRaw(t *testing.T, path string) apiAnswer {
	t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	a.status = resp.StatusCode
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("%s: HTTP %d, body is not JSON: %v", path, a.status, err)
	}
	a.body = raw
	_ = json.Unmarshal(raw, &a.err)
	if a.status == 200 && strings.HasPrefix(path, "/v1/aggregate") {
		if err := json.Unmarshal(raw, &a.agg); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func (f *aggMaxFixture) want400(t *testing.T, path, param string) {
	t.Helper()
	if a := f.getRaw(t, path); a.status != 400 || a.err.Parameter != param {
		t.Errorf("%s: HTTP %d %.300s, want 400 naming %s", path, a.status, a.body, param)
	}
}

func points(a query.AggregateAnswer) int {
	n := 0
	for _, s := range a.Series {
		n += len(s.Points)
	}
	return n
}

// A sum that overflows float64 answers 422 naming aggregates (JSON has no infinity), from raw rows
// and from rollups; the aggregates that do not overflow still answer.
func TestAggregateOverflowIs422(t *testing.T) {
	f := newAggMaxFixture(t)
	rng := "&start=2025-01-15T10:00:00Z&end=2025-01-15T10:05:00Z"
	for _, src := range []string{"raw", "rollups"} {
		for _, aggs := range []string{"sum", "avg", "rate", "count,sum,max"} {
			path := "/v1/aggregate?name=huge&bucket=1m&aggregates=" + aggs + "&source=" + src + rng
			a := f.getRaw(t, path)
			if a.status != http.StatusUnprocessableEntity || a.err.Parameter != "aggregates" || !strings.Contains(a.err.Error, "overflows") {
				t.Errorf("%s: HTTP %d %s, want 422 naming aggregates and the overflow", path, a.status, a.body)
			}
		}
		path := "/v1/aggregate?name=huge&bucket=1m&aggregates=count,min,max,last&source=" + src + rng
		a := f.getRaw(t, path)
		if a.status != 200 || a.agg.Source != src || points(a.agg) != 2 || a.agg.Series[0].Points[0].Values["max"] != 1e308 {
			t.Errorf("%s: HTTP %d %s, want two points, max 1e308", path, a.status, a.body)
		}
	}
}

// Every bucket spelling the docs, the UI and the client use is accepted, and every /v1/aggregate
// and /v1/events/counts example in README.md and docs/ answers 200 with data.
func TestDocumentedBucketsAndRecipes(t *testing.T) {
	f := newAggMaxFixture(t)
	for spelling, seconds := range map[string]int64{"30s": 30, "5m": 300, "1h": 3600, "1d": 86400, "7d": 604800, "31d": 2678400,
		"300": 300, "1h30m": 5400, "24h0m0s": 86400, "10s": 10, "15m": 900} {
		for _, ep := range []string{"/v1/aggregate?name=cpu_percent&", "/v1/events/counts?"} {
			path := ep + "bucket=" + spelling
			a := f.getRaw(t, path)
			var got struct {
				BucketSeconds int64 `json:"bucket_seconds"`
			}
			_ = json.Unmarshal(a.body, &got)
			if a.status != 200 || got.BucketSeconds != seconds {
				t.Errorf("%s: HTTP %d %.200s, want bucket_seconds %d", path, a.status, a.body, seconds)
			}
		}
	}
	for _, bad := range []string{"32d", "1.5d", "d", "-1d", "0d", "1w", "500ms"} {
		f.want400(t, "/v1/aggregate?name=cpu_percent&bucket="+url.QueryEscape(bad), "bucket")
	}
	// The UI's bucket picker.
	ui, err := os.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	picker := regexp.MustCompile(`(?s)<select id="metric-bucket">(.*?)</select>`).FindSubmatch(ui)
	opts := regexp.MustCompile(`<option[^>]*>([^<]+)</option>`).FindAllSubmatch(picker[1], -1)
	if len(opts) == 0 {
		t.Fatal("no bucket options in the UI")
	}
	for _, o := range opts {
		if a := f.getRaw(t, "/v1/aggregate?name=cpu_percent&bucket="+string(o[1])); a.status != 200 {
			t.Errorf("UI bucket %s: HTTP %d %s", o[1], a.status, a.body)
		}
	}
	// The docs' examples, placeholders filled with the last two hours.
	example := regexp.MustCompile("(/v1/(?:aggregate|events/counts)\\?[^`' ]*)")
	fill := strings.NewReplacer("<now-1h>", f.now.Add(-time.Hour).Format(time.RFC3339),
		"start=...", "start="+f.now.Add(-2*time.Hour).Format(time.RFC3339), "end=...", "end="+f.now.Add(time.Minute).Format(time.RFC3339))
	n := 0
	for _, doc := range []string{"../README.md", "../docs/analysts.md", "../docs/operations.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range example.FindAllString(string(text), -1) {
			path := fill.Replace(m)
			a := f.getRaw(t, path)
			if a.status != 200 || (strings.HasPrefix(path, "/v1/aggregate") && points(a.agg) == 0) || strings.Contains(string(a.body), `"counts":[]`) {
				t.Errorf("%s example %s: HTTP %d %.300s, want 200 with data", filepath.Base(doc), path, a.status, a.body)
			}
			n++
		}
	}
	if n < 4 {
		t.Fatalf("found only %d examples in the docs", n)
	}
}

// Aggregations at every documented maximum answer (raw and rollups), and one past each is a 400
// naming the parameter.
func TestAggregateAtTheMaximums(t *testing.T) {
	f := newAggMaxFixture(t)
	maxB := f.cfg.MaxBuckets
	iso := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	rawEnd, rollEnd := time.Duration(maxB)*time.Second, time.Duration(maxB)*time.Minute
	for _, c := range []struct {
		path, source string
		points       int
	}{
		// The longest range at the smallest bucket: one point per bucket.
		{"/v1/aggregate?name=fine&bucket=1s&aggregates=count,avg,p99&start=" + iso(0) + "&end=" + iso(rawEnd), "raw", maxB},
		{"/v1/aggregate?name=coarse&bucket=1m&aggregates=count,avg,last&start=" + iso(0) + "&end=" + iso(rollEnd), "rollups", maxB},
		{"/v1/aggregate?name=coarse&bucket=1m&aggregates=count,p50&source=raw&start=" + iso(0) + "&end=" + iso(rollEnd), "raw", maxB},
		// Four group-by keys (2 x 3 x 5 x 7 = 210 groups) with the largest top.
		{"/v1/aggregate?name=fine&bucket=1s&group_by=a,b,c,d&top=1000&aggregates=count,max&start=" + iso(0) + "&end=" + iso(rawEnd), "raw", maxB},
		{"/v1/aggregate?name=coarse&bucket=1m&group_by=a,b,c,d&top=1000&aggregates=count,max&start=" + iso(0) + "&end=" + iso(rollEnd), "rollups", maxB},
		{"/v1/aggregate?name=coarse&bucket=1h&group_by=d,c,b,a&top=3&aggregates=sum&start=" + iso(0) + "&end=" + iso(rollEnd), "rollups", -1},
	} {
		a := f.getRaw(t, c.path)
		if a.status != 200 || a.agg.Source != c.source || (c.points >= 0 && points(a.agg) != c.points) {
			t.Errorf("%s: HTTP %d source %s, %d points; want %s, %d: %.300s", c.path, a.status, a.agg.Source, points(a.agg), c.source, c.points, a.body)
		}
		if strings.Contains(c.path, "group_by") && !strings.Contains(c.path, "top=3") && len(a.agg.Series) != 210 {
			t.Errorf("%s: %d series, want 210", c.path, len(a.agg.Series))
		}
		if strings.Contains(c.path, "top=3") && len(a.agg.Series) != 3 {
			t.Errorf("%s: %d series, want 3", c.path, len(a.agg.Series))
		}
	}
	// Event counts at the most buckets.
	if a := f.getRaw(t, "/v1/events/counts?bucket=1s&start="+iso(0)+"&end="+iso(rawEnd)); a.status != 200 {
		t.Errorf("event counts at %d buckets: HTTP %d %s", maxB, a.status, a.body)
	}
	// One past each maximum.
	f.want400(t, "/v1/aggregate?name=fine&bucket=1s&start="+iso(0)+"&end="+iso(rawEnd+time.Second), "bucket")
	f.want400(t, "/v1/aggregate?name=coarse&bucket=1m&start="+iso(0)+"&end="+iso(rollEnd+time.Minute), "bucket")
	// An unaligned range of MaxBuckets seconds touches MaxBuckets+1 buckets.
	f.want400(t, "/v1/aggregate?name=fine&bucket=1s&start="+url.QueryEscape(t0.Add(500*time.Millisecond).Format(time.RFC3339Nano))+
		"&end="+url.QueryEscape(t0.Add(rawEnd+500*time.Millisecond).Format(time.RFC3339Nano)), "bucket")
	f.want400(t, "/v1/events/counts?bucket=1s&start="+iso(0)+"&end="+iso(rawEnd+time.Second), "bucket")
	f.want400(t, "/v1/aggregate?name=fine&group_by=a,b,c,d,e", "group_by")
	f.want400(t, "/v1/aggregate?name=fine&group_by=a&top=1001", "top")
	f.want400(t, "/v1/aggregate?name=fine&top=0", "top")
	t.Run("series rows", func(t *testing.T) { testMaxSeriesRows(t, f) })
}

// QUERY_MAX_SERIES_ROWS bounds the bucket x group cells of one answer: at the value it answers,
// one cell more is a 400 naming group_by (aggregations, raw and rollups) or bucket (event counts).
func testMaxSeriesRows(t *testing.T, f *aggMaxFixture) {
	iso := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	rfc := func(tm time.Time) string { return url.QueryEscape(tm.Format(time.RFC3339)) }
	maxB := time.Duration(f.cfg.MaxBuckets)
	for _, c := range []struct {
		path  string
		cells int
		param string
	}{
		{"/v1/aggregate?name=fine&bucket=1s&group_by=a&aggregates=count&start=" + iso(0) + "&end=" + iso(maxB*time.Second), f.cfg.MaxBuckets, "group_by"},
		{"/v1/aggregate?name=coarse&bucket=1m&group_by=a&aggregates=count&start=" + iso(0) + "&end=" + iso(maxB*time.Minute), f.cfg.MaxBuckets, "group_by"},
		{"/v1/events/counts?bucket=1s&start=" + rfc(f.now.Add(-31*time.Minute)) + "&end=" + rfc(f.now), 60, "bucket"},
	} {
		for _, over := range []int{0, 1} {
			cfg := f.cfg
			cfg.MaxSeriesRows = c.cells - over
			at := &aggMaxFixture{url: testenv.QueryServer(t, cfg), cfg: cfg, now: f.now}
			if over == 0 {
				if a := at.getRaw(t, c.path); a.status != 200 {
					t.Errorf("%s with QUERY_MAX_SERIES_ROWS=%d (its cells): HTTP %d %.300s", c.path, cfg.MaxSeriesRows, a.status, a.body)
				}
				continue
			}
			at.want400(t, c.path, c.param)
		}
	}
}

// offset at QUERY_MAX_OFFSET answers (an empty last page), one past it is a 400 naming offset.
func TestOffsetAtTheMaximum(t *testing.T) {
	f := newAggMaxFixture(t)
	max := f.cfg.MaxOffset
	for _, path := range []string{"/v1/events?", "/v1/events?attr.node_id=transform_1&", "/v1/events?type=node_failed&order=desc&",
		"/v1/metrics?", "/v1/metrics?name=cpu_percent&attr.node_id=transform_0&"} {
		a := f.getRaw(t, fmt.Sprintf("%soffset=%d&limit=%d", path, max, f.cfg.MaxLimit))
		var p struct {
			Count      int  `json:"count"`
			Offset     int  `json:"offset"`
			NextOffset *int `json:"next_offset"`
		}
		_ = json.Unmarshal(a.body, &p)
		if a.status != 200 || p.Count != 0 || p.Offset != max || p.NextOffset != nil {
			t.Errorf("%soffset=%d: HTTP %d %s, want an empty last page", path, max, a.status, a.body)
		}
		f.want400(t, fmt.Sprintf("%soffset=%d", path, max+1), "offset")
	}
}
