package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/tributary/tributary/query"
)

// next_offset is null when no row follows the page, however full the page, and set when one does;
// query.All pages through to the last row.
func TestNextOffsetOnlyWhenRowsFollow(t *testing.T) {
	f := newFixture(t) // 500 events and 500 metrics
	next := func(path string) *int {
		t.Helper()
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var p struct {
			Count      int  `json:"count"`
			NextOffset *int `json:"next_offset"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("%s: HTTP %d %s", path, resp.StatusCode, body)
		}
		return p.NextOffset
	}
	for _, c := range []struct {
		path  string
		total int // rows matching
	}{
		{"/v1/events?", 500},
		{"/v1/events?order=desc&", 500},
		{"/v1/events?type=node_failed&", 125},
		{"/v1/events?attr.node_id=node_4&", 83},
		{"/v1/events?trace_id=t07&", 25},
		{"/v1/metrics?", 500},
		{"/v1/metrics?name=metric_1&", 167},
	} {
		if n := next(fmt.Sprintf("%slimit=%d", c.path, c.total)); n != nil {
			t.Errorf("%s: a page of all %d rows has next_offset %d, want null", c.path, c.total, *n)
		}
		if n := next(fmt.Sprintf("%slimit=%d", c.path, c.total-1)); n == nil || *n != c.total-1 {
			t.Errorf("%s: a page of %d of %d rows has next_offset %v, want %d", c.path, c.total-1, c.total, n, c.total-1)
		}
		if n := next(fmt.Sprintf("%slimit=1&offset=%d", c.path, c.total-1)); n != nil {
			t.Errorf("%s: the last row's page has next_offset %d, want null", c.path, *n)
		}
	}
	ctx := context.Background()
	events, err := query.All(ctx, query.Filter{Limit: 100}, f.client.QueryEvents)
	if err != nil || len(events) != 500 {
		t.Fatalf("All events in pages of 100: %d, %v", len(events), err)
	}
	seen := map[string]bool{}
	for i, e := range events {
		if seen[e.EventID] || (i > 0 && e.Timestamp.Before(events[i-1].Timestamp)) {
			t.Fatalf("All: event %d (%s) repeated or out of order", i, e.EventID)
		}
		seen[e.EventID] = true
	}
	metrics, err := query.All(ctx, query.Filter{Limit: 120}, f.client.QueryMetrics)
	if err != nil || len(metrics) != 500 {
		t.Fatalf("All metrics in pages of 120: %d, %v", len(metrics), err)
	}
}
