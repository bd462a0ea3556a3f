package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// fixture loads events and metrics straight through the consumer's store (consumertest) and serves them.
type fixture struct {
	events  []schemas.Event
	metrics []schemas.Metric
	url     string
	client  *query.Client
	chcfg   chdb.Config
}

var base = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	f := &fixture{chcfg: cfg}
	types := []string{"node_started", "node_finished", "node_failed", "checkpoint"}
	for i := range 500 {
		f.events = append(f.events, schemas.Event{
			EventID: fmt.Sprintf("e%04d", i), TraceID: fmt.Sprintf("t%02d", i%20), SpanID: fmt.Sprintf("s%d", i%3),
			Type: types[i%4], Name: fmt.Sprintf("n%d", i%5),
			Timestamp:  base.Add(time.Duration(i) * 7 * time.Second).Add(time.Duration(i) * time.Microsecond),
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%6), "n": int64(i)},
		})
		f.metrics = append(f.metrics, schemas.Metric{
			MetricID: fmt.Sprintf("m%04d", i), TraceID: fmt.Sprintf("t%02d", i%20), Name: fmt.Sprintf("metric_%d", i%3),
			Value: float64(i) / 2, Unit: "s", AggregationType: []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}[i%3],
			Timestamp:  base.Add(time.Duration(i) * 11 * time.Second),
			Attributes: map[string]any{"host": fmt.Sprintf("h%d", i%4)},
		})
	}
	return f.serve(t, conn)
}

// serve stores f's events and metrics and starts a query service over them.
func (f *fixture) serve(t *testing.T, conn driver.Conn) *fixture {
	t.Helper()
	cfg := f.chcfg
	if err := consumertest.Write(context.Background(), conn, cfg.Database, f.events, f.metrics); err != nil {
		t.Fatal(err)
	}
	ro := cfg
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse, qcfg.DefaultLimit, qcfg.MaxLimit, qcfg.MaxOffset = ro, 50, 1000, 10000
	f.url = testenv.QueryServer(t, qcfg)
	f.client = query.NewClient(f.url, nil)
	return f
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func TestEventFiltersMatchBruteForce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	check := func(name string, flt query.Filter, keep func(schemas.Event) bool) {
		t.Helper()
		var want []schemas.Event
		for _, e := range f.events {
			if keep(e) {
				want = append(want, e)
			}
		}
		sort.Slice(want, func(i, j int) bool { return want[i].Timestamp.Before(want[j].Timestamp) })
		if flt.Descending {
			sort.Slice(want, func(i, j int) bool { return want[i].Timestamp.After(want[j].Timestamp) })
		}
		if flt.Limit == 0 {
			flt.Limit = 1000
		}
		lo := min(flt.Offset, len(want))
		want = want[lo:min(lo+flt.Limit, len(want))]
		got, _, err := f.client.QueryEvents(ctx, flt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g, w := ids(got, func(e schemas.Event) string { return e.EventID }), ids(want, func(e schemas.Event) string { return e.EventID })
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: got %d events %v, want %d %v", name, len(g), head(g), len(w), head(w))
		}
	}
	all := func(schemas.Event) bool { return true }
	check("all", query.Filter{}, all)
	check("type", query.Filter{Types: []string{"node_failed"}}, func(e schemas.Event) bool { return e.Type == "node_failed" })
	check("two types", query.Filter{Types: []string{"node_failed", "checkpoint"}}, func(e schemas.Event) bool { return e.Type == "node_failed" || e.Type == "checkpoint" })
	check("name", query.Filter{Name: "n3"}, func(e schemas.Event) bool { return e.Name == "n3" })
	check("trace", query.Filter{TraceID: "t07"}, func(e schemas.Event) bool { return e.TraceID == "t07" })
	check("span", query.Filter{SpanID: "s2", TraceID: "t05"}, func(e schemas.Event) bool { return e.SpanID == "s2" && e.TraceID == "t05" })
	start, end := base.Add(1000*time.Second+500*time.Microsecond), base.Add(2000*time.Second)
	check("time range", query.Filter{Start: start, End: end}, func(e schemas.Event) bool { return !e.Timestamp.Before(start) && e.Timestamp.Before(end) })
	check("attribute", query.Filter{Attributes: map[string]string{"node_id": "node_4"}}, func(e schemas.Event) bool { return e.Attributes["node_id"] == "node_4" })
	check("int attribute", query.Filter{Attributes: map[string]string{"n": "42"}}, func(e schemas.Event) bool { return e.Attributes["n"] == int64(42) })
	check("desc, page 2", query.Filter{Limit: 30, Offset: 30, Descending: true}, all)
	// Attribute filters read the attribute index a time window at a time (query/attrindex.go):
	// small pages of a frequent value, rare combinations that need wider windows, both orders.
	node4 := func(e schemas.Event) bool { return e.Attributes["node_id"] == "node_4" }
	check("attribute, small page", query.Filter{Attributes: map[string]string{"node_id": "node_4"}, Limit: 3}, node4)
	check("attribute, small page desc", query.Filter{Attributes: map[string]string{"node_id": "node_4"}, Limit: 3, Offset: 4, Descending: true}, node4)
	check("attribute + rare name", query.Filter{Attributes: map[string]string{"node_id": "node_4"}, Name: "n3", Limit: 2, Offset: 3},
		func(e schemas.Event) bool { return node4(e) && e.Name == "n3" })
	check("attribute + rare name desc", query.Filter{Attributes: map[string]string{"node_id": "node_4"}, Name: "n3", Limit: 2, Descending: true},
		func(e schemas.Event) bool { return node4(e) && e.Name == "n3" })
	check("two attributes", query.Filter{Attributes: map[string]string{"node_id": "node_4", "n": "28"}},
		func(e schemas.Event) bool { return node4(e) && e.Attributes["n"] == int64(28) })
	check("attribute + range + span", query.Filter{Attributes: map[string]string{"node_id": "node_4"}, SpanID: "s1", Start: start, End: end, Limit: 2},
		func(e schemas.Event) bool {
			return node4(e) && e.SpanID == "s1" && !e.Timestamp.Before(start) && e.Timestamp.Before(end)
		})
	check("attribute, no match", query.Filter{Attributes: map[string]string{"node_id": "node_9"}}, func(schemas.Event) bool { return false })
	check("type + time + attribute", query.Filter{Types: []string{"node_started"}, Start: start, Attributes: map[string]string{"node_id": "node_0"}},
		func(e schemas.Event) bool {
			return e.Type == "node_started" && !e.Timestamp.Before(start) && e.Attributes["node_id"] == "node_0"
		})
}

// The attribute index orders the events of one microsecond by their id's hash; a page is in
// (timestamp, event_id) order all the same, as the scan of events gives it, at every offset, in both
// orders, also when a page starts or ends inside such a group and when one group spans a page.
func TestAttributePagesOrderEventsOfOneMicrosecondByID(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	f := &fixture{chcfg: cfg}
	rng := rand.NewChaCha8([32]byte{3, 4})
	for i := range 240 {
		// Groups of 1 to 12 events share a microsecond.
		at := base.Add(time.Duration(i/12)*time.Second + time.Duration(i%12/(1+i/12%4))*time.Microsecond)
		id := uuid.Must(uuid.NewRandomFromReader(rng)).String()
		f.events = append(f.events, schemas.Event{EventID: id, Type: []string{"a", "b"}[i%2], Name: "n", Timestamp: at,
			Attributes: map[string]any{"zone": fmt.Sprintf("z%d", i%3), "all": "yes"}})
	}
	f.serve(t, conn)
	ctx := context.Background()
	byTimeThenID := func(desc bool, keep func(schemas.Event) bool) []string {
		var es []schemas.Event
		for _, e := range f.events {
			if keep(e) {
				es = append(es, e)
			}
		}
		sort.Slice(es, func(i, j int) bool {
			a, b := es[i], es[j]
			if desc {
				a, b = b, a
			}
			if !a.Timestamp.Equal(b.Timestamp) {
				return a.Timestamp.Before(b.Timestamp)
			}
			return a.EventID < b.EventID
		})
		return ids(es, func(e schemas.Event) string { return e.EventID })
	}
	for _, c := range []struct {
		name string
		flt  query.Filter
		keep func(schemas.Event) bool
	}{
		{"every event", query.Filter{Attributes: map[string]string{"all": "yes"}}, func(schemas.Event) bool { return true }},
		{"a zone", query.Filter{Attributes: map[string]string{"zone": "z1"}}, func(e schemas.Event) bool { return e.Attributes["zone"] == "z1" }},
		{"a zone and a type", query.Filter{Attributes: map[string]string{"zone": "z2", "all": "yes"}, Types: []string{"b"}},
			func(e schemas.Event) bool { return e.Attributes["zone"] == "z2" && e.Type == "b" }},
	} {
		for _, desc := range []bool{false, true} {
			want := byTimeThenID(desc, c.keep)
			for _, limit := range []int{1, 5, 13} {
				for off := 0; off <= len(want); off += max(1, limit/2) {
					flt := c.flt
					flt.Limit, flt.Offset, flt.Descending = limit, off, desc
					got, _, err := f.client.QueryEvents(ctx, flt)
					if err != nil {
						t.Fatal(err)
					}
					w := want[off:min(len(want), off+limit)]
					if g := ids(got, func(e schemas.Event) string { return e.EventID }); fmt.Sprint(g) != fmt.Sprint(w) {
						t.Fatalf("%s, descending %v, limit %d, offset %d: got %v, want %v", c.name, desc, limit, off, g, w)
					}
				}
			}
		}
	}
}

// A page whose edge microsecond holds MaxEdgeEvents events is cut from the index; one more event
// there and it is answered from events instead. Both answers are the brute-force pages, by id.
func TestAttributePagesAtTheEdgeEventsLimit(t *testing.T) {
	for _, n := range []int{query.MaxEdgeEvents, query.MaxEdgeEvents + 1} {
		cfg := testenv.ClickHouse(t)
		conn := testenv.OpenClickHouse(t, cfg)
		f := &fixture{chcfg: cfg}
		rng := rand.NewChaCha8([32]byte{byte(n)})
		ids := make([]string, n)
		for i := range n {
			ids[i] = uuid.Must(uuid.NewRandomFromReader(rng)).String()
			f.events = append(f.events, schemas.Event{EventID: ids[i], Type: "a", Name: "n", Timestamp: base,
				Attributes: map[string]any{"zone": "z1"}})
		}
		f.serve(t, conn)
		sort.Strings(ids)
		for _, c := range []struct {
			off  int
			desc bool
		}{{0, false}, {9995, false}, {0, true}, {9995, true}} { // 10,000: the fixture's QUERY_MAX_OFFSET
			got, _, err := f.client.QueryEvents(context.Background(), query.Filter{Attributes: map[string]string{"zone": "z1"},
				Limit: 5, Offset: c.off, Descending: c.desc})
			if err != nil {
				t.Fatal(err)
			}
			want := ids[c.off : c.off+5]
			if c.desc {
				want = make([]string, 5)
				for i := range want {
					want[i] = ids[n-1-c.off-i]
				}
			}
			if g := fmt.Sprint(eventIDs(got)); g != fmt.Sprint(want) {
				t.Errorf("%d events in one microsecond, offset %d, descending %v: got %s, want %v", n, c.off, c.desc, g, want)
			}
		}
	}
}

func eventIDs(es []schemas.Event) []string {
	return ids(es, func(e schemas.Event) string { return e.EventID })
}

// An attribute index row that names an event without the attribute (what a collision of two
// attributes' hashes would leave) does not put that event in an answer: the page comes from events.
func TestAttributeHashCollisionAnswersFromEvents(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	conn := testenv.OpenClickHouse(t, f.chcfg)
	// e0001 has node_id node_1; give it a row saying node_4, as a colliding attribute would.
	if err := conn.Exec(ctx, "INSERT INTO "+f.chcfg.Database+".events_attr_index (tenant_hash, attr_hash, timestamp, timestamp_us, event_hash, type_hash, name_hash) "+
		"SELECT cityHash64(tenant), cityHash64('node_id', 'node_4'), timestamp, timestamp_us, cityHash64(event_id), cityHash64(type), cityHash64(name) FROM "+
		f.chcfg.Database+".events WHERE event_id = 'e0001'"); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{3, 1000} {
		var want []string
		for _, e := range f.events {
			if e.Attributes["node_id"] == "node_4" && len(want) < limit {
				want = append(want, e.EventID)
			}
		}
		got, _, err := f.client.QueryEvents(ctx, query.Filter{Attributes: map[string]string{"node_id": "node_4"}, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got, func(e schemas.Event) string { return e.EventID }); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Errorf("limit %d: got %d events %v, want %d %v", limit, len(g), head(g), len(want), head(want))
		}
	}
}

func TestMetricFiltersMatchBruteForce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	check := func(name string, flt query.Filter, keep func(schemas.Metric) bool) {
		t.Helper()
		want := 0
		for _, m := range f.metrics {
			if keep(m) {
				want++
			}
		}
		flt.Limit = 1000
		got, _, err := f.client.QueryMetrics(ctx, flt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range got {
			if !keep(m) {
				t.Fatalf("%s: %s should not match", name, m.MetricID)
			}
		}
		if len(got) != want {
			t.Errorf("%s: got %d metrics, want %d", name, len(got), want)
		}
	}
	check("name", query.Filter{Name: "metric_1"}, func(m schemas.Metric) bool { return m.Name == "metric_1" })
	check("aggregation", query.Filter{AggregationType: "histogram"}, func(m schemas.Metric) bool { return m.AggregationType == schemas.Histogram })
	check("trace", query.Filter{TraceID: "t03"}, func(m schemas.Metric) bool { return m.TraceID == "t03" })
	end := base.Add(1500 * time.Second)
	check("end", query.Filter{End: end}, func(m schemas.Metric) bool { return m.Timestamp.Before(end) })
	check("attribute", query.Filter{Name: "metric_2", Attributes: map[string]string{"host": "h1"}},
		func(m schemas.Metric) bool { return m.Name == "metric_2" && m.Attributes["host"] == "h1" })
}

func TestBadParametersAre400NamingThem(t *testing.T) {
	f := newFixture(t)
	for q, param := range map[string]string{
		"/v1/events?limit=0":      "limit",
		"/v1/events?limit=abc":    "limit",
		"/v1/events?limit=100000": "limit",
		"/v1/events?start=2025-01-15T10:00:00Z&end=2025-01-15T09:00:00Z": "end",
		"/v1/events?start=not-a-time":                                    "start",
		"/v1/metrics?aggregation_type=summary":                           "aggregation_type",
		"/v1/metrics?type=node_failed":                                   "type",
		"/v1/events?order=random":                                        "order",
	} {
		resp, err := http.Get(f.url + q)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error, Parameter string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || body.Parameter != param || body.Error == "" {
			t.Errorf("%s: HTTP %d %+v, want 400 naming %q", q, resp.StatusCode, body, param)
		}
	}
	_, _, err := f.client.QueryEvents(context.Background(), query.Filter{Limit: 5000})
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Parameter != "limit" || apiErr.Status != 400 {
		t.Errorf("client error %v", err)
	}
}

// Injection attempts in every parameter are bound as values: they match nothing, and the tables are
// intact afterwards.
func TestInjectionIsBoundHarmlessly(t *testing.T) {
	f := newFixture(t)
	attacks := []string{"' OR 1=1 --", "x'; DROP TABLE events; --", `\' OR \'1\'=\'1`, "1) OR (1=1", "' UNION SELECT * FROM system.users --"}
	for _, a := range attacks {
		for _, p := range []string{"type", "name", "trace_id", "span_id", "attr.node_id", "attr." + a} {
			resp, err := http.Get(f.url + "/v1/events?" + url.Values{p: {a}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			var body query.EventsAnswer
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || body.Count != 0 {
				t.Errorf("%s=%q: HTTP %d, %d events", p, a, resp.StatusCode, body.Count)
			}
		}
	}
	got, _, err := f.client.QueryEvents(context.Background(), query.Filter{Limit: 1000})
	if err != nil || len(got) != len(f.events) {
		t.Fatalf("after the attacks: %d events, %v", len(got), err)
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func TestOperationalEndpoints(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.client.QueryEvents(context.Background(), query.Filter{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/healthz": `"ok"`, "/readyz": `"ready"`,
		"/metrics": `tributary_query_requests_total{endpoint="events",status="200"} 1`,
	} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: HTTP %d, body lacks %s", path, resp.StatusCode, want)
		}
	}
}
