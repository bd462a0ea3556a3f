package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer"
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
	if err := consumer.WriteForTest(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumer.RollUpFrom(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute, time.Hour}, 0); err != nil {
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
