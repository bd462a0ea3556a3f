package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// maxFixture serves, with the default limits (query.DefaultConfig), one tenant's 20,001 events
// with real UUIDv4 and UUIDv7 ids: half=a on the first 10,000 (exactly a maximal page), half=b on
// the other 10,001; the first 10,000 in trace A, the rest in trace B.
type maxFixture struct {
	events         []schemas.Event // in time order
	url, token     string
	traceA, traceB string
	cfg            query.Config
}

const maxEvents = 20001

func newMaxFixture(t *testing.T) *maxFixture {
	t.Helper()
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	tenant := uuid.NewString()
	f := &maxFixture{traceA: uuid.NewString(), traceB: uuid.NewString(), token: "max-token-1"}
	for i := range maxEvents {
		id := uuid.NewString()
		if i%2 == 1 {
			id = uuid.Must(uuid.NewV7()).String()
		}
		half, trace := "a", f.traceA
		if i >= 10000 {
			half, trace = "b", f.traceB
		}
		f.events = append(f.events, schemas.Event{
			EventID: id, TraceID: trace, SpanID: uuid.NewString()[:16], Type: []string{"node_started", "node_finished"}[i%2],
			Name: "step", Timestamp: base.Add(time.Duration(i)*100*time.Millisecond + time.Duration(i)*time.Microsecond),
			Attributes: map[string]any{"half": half, "node_id": fmt.Sprintf("node_%d", i%7)},
			Source:     schemas.Source{Tenant: tenant, Service: "etl", Host: "host-1"},
		})
	}
	if err := consumertest.Write(context.Background(), conn, cfg.Database, f.events, nil); err != nil {
		t.Fatal(err)
	}
	ro := cfg
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	f.cfg = query.DefaultConfig()
	f.cfg.ClickHouse = ro
	f.cfg.Tokens = map[string]string{f.token: tenant}
	f.url = testenv.QueryServer(t, f.cfg)
	return f
}

// get answers the request's status and body.
func (f *maxFixture) get(t *testing.T, path string, q url.Values) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+path+"?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// page asks for a page and checks it holds exactly want's ids, in order.
func (f *maxFixture) page(t *testing.T, path string, q url.Values, want []schemas.Event) query.EventsAnswer {
	t.Helper()
	status, body := f.get(t, path, q)
	if status != http.StatusOK {
		t.Fatalf("%s?%s: HTTP %d %.300s", path, q.Encode(), status, body)
	}
	var a query.EventsAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Events) != len(want) || a.Count != len(want) {
		t.Fatalf("%s?%s: %d events (count %d), want %d", path, q.Encode(), len(a.Events), a.Count, len(want))
	}
	for i, e := range a.Events {
		if e.EventID != want[i].EventID {
			t.Fatalf("%s?%s: event %d is %s, want %s", path, q.Encode(), i, e.EventID, want[i].EventID)
		}
	}
	return a
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func every[T any](s []T, keep func(int) bool) []T {
	var out []T
	for i, v := range s {
		if keep(i) {
			out = append(out, v)
		}
	}
	return out
}

// Pages of QUERY_MAX_LIMIT rows with UUID ids and a UUID tenant are answered whole and in order,
// with and without attribute filters, in both orders, and for traces (whose keys once went into
// one literal IN list that passed max_query_size at about 2,800 rows).
func TestMaximalEventPages(t *testing.T) {
	f := newMaxFixture(t)
	es := f.events
	max := f.cfg.MaxLimit
	lim := url.Values{"limit": {fmt.Sprint(max)}}
	with := func(kv ...string) url.Values {
		q := url.Values{"limit": {fmt.Sprint(max)}}
		for i := 0; i < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return q
	}
	// next is the page's expected next_offset: -1 for null (no row follows).
	check := func(path string, q url.Values, want []schemas.Event, next int) {
		t.Helper()
		a := f.page(t, path, q, want)
		if got := a.NextOffset; (next < 0) != (got == nil) || (got != nil && *got != next) {
			t.Fatalf("%s?%s: next_offset %v, want %d (-1: null)", path, q.Encode(), got, next)
		}
	}
	check("/v1/events", lim, es[:max], max)
	check("/v1/events", with("order", "desc"), reversed(es)[:max], max)
	check("/v1/events", with("offset", "10000"), es[max:2*max], 2*max)
	check("/v1/events", with("type", "node_finished"), every(es, func(i int) bool { return i%2 == 1 }), -1)
	check("/v1/events", with("attr.half", "a"), es[:10000], -1)
	check("/v1/events", with("attr.half", "b"), es[10000:10000+max], max)
	check("/v1/events", with("attr.half", "b", "order", "desc"), reversed(es)[:max], max)
	check("/v1/events", with("attr.half", "b", "offset", "10000"), es[20000:], -1)
	check("/v1/events", with("attr.node_id", "node_3", "type", "node_finished"),
		every(es, func(i int) bool { return i%7 == 3 && i%2 == 1 }), -1)
	check("/v1/events", with("trace_id", f.traceA), es[:10000], -1)
	check("/v1/events", with("trace_id", f.traceB), es[10000:10000+max], max)
	check("/v1/traces/"+f.traceA, nil, es[:10000], -1)
	check("/v1/traces/"+f.traceB, nil, es[10000:10000+max], max)
	check("/v1/traces/"+f.traceB, url.Values{"offset": {fmt.Sprint(max)}}, es[10000+max:], -1)
	check("/v1/traces/"+f.traceB, url.Values{"limit": {"3"}, "offset": {"9999"}}, es[19999:], -1)
	check("/v1/traces/"+f.traceB, url.Values{"offset": {"10001"}}, nil, -1) // past the end: empty, not 404

	status, body := f.get(t, "/v1/events", with("limit", fmt.Sprint(max+1)))
	var eb struct{ Error, Parameter string }
	_ = json.Unmarshal(body, &eb)
	if status != http.StatusBadRequest || eb.Parameter != "limit" {
		t.Fatalf("limit %d: HTTP %d %s, want 400 naming limit", max+1, status, body)
	}
	t.Run("trace pages", func(t *testing.T) { testTracePages(t, f) })
}

// A trace of more than QUERY_MAX_LIMIT events is read in pages, each event exactly once and in
// order; offset and limit are bounded as for /v1/events.
func testTracePages(t *testing.T, f *maxFixture) {
	want := f.events[10000:] // trace B: 10,001 events
	c := query.NewClient(f.url, nil).WithToken(f.token)
	ctx := context.Background()
	same := func(what string, got []schemas.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		for i := range got {
			if got[i].EventID != want[i].EventID {
				t.Fatalf("%s: event %d is %s, want %s (repeated, missing or out of order)", what, i, got[i].EventID, want[i].EventID)
			}
		}
	}
	all, err := c.Trace(ctx, f.traceB)
	if err != nil {
		t.Fatal(err)
	}
	same("Trace", all)
	var pages []int
	paged, err := query.All(ctx, query.Filter{Limit: 3000}, func(ctx context.Context, q query.Filter) ([]schemas.Event, int, error) {
		es, next, err := c.TracePage(ctx, f.traceB, q.Limit, q.Offset)
		pages = append(pages, len(es))
		return es, next, err
	})
	if err != nil {
		t.Fatal(err)
	}
	same("pages of 3000", paged)
	if fmt.Sprint(pages) != "[3000 3000 3000 1001]" {
		t.Fatalf("pages of %v, want [3000 3000 3000 1001]", pages)
	}

	var apiErr *query.APIError
	if _, _, err := c.TracePage(ctx, uuid.NewString(), 0, 5); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("an unknown trace from offset 5: %v, want 404", err)
	}
	for _, bad := range []struct {
		q     url.Values
		param string
	}{
		{url.Values{"offset": {fmt.Sprint(f.cfg.MaxOffset)}}, ""},
		{url.Values{"offset": {fmt.Sprint(f.cfg.MaxOffset + 1)}}, "offset"},
		{url.Values{"offset": {"-1"}}, "offset"},
		{url.Values{"limit": {fmt.Sprint(f.cfg.MaxLimit + 1)}}, "limit"},
		{url.Values{"limit": {"0"}}, "limit"},
		{url.Values{"order": {"desc"}}, "order"},
		{url.Values{"attr.half": {"b"}}, "attr.half"},
	} {
		status, body := f.get(t, "/v1/traces/"+f.traceB, bad.q)
		var eb struct{ Error, Parameter string }
		_ = json.Unmarshal(body, &eb)
		if bad.param == "" {
			if status != http.StatusOK || eb.Error != "" {
				t.Errorf("%s: HTTP %d %s, want 200 (an empty page)", bad.q.Encode(), status, body)
			}
			continue
		}
		if status != http.StatusBadRequest || eb.Parameter != bad.param {
			t.Errorf("%s: HTTP %d %s, want 400 naming %s", bad.q.Encode(), status, body, bad.param)
		}
	}
}
