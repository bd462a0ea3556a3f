package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/schemas"
)

// Client calls the query service over HTTP; it mirrors the spec's query_events / query_metrics. It
// is safe for concurrent use.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// WithToken returns a copy of c that sends the bearer token (needed when the service has
// QUERY_TOKENS).
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// NewClient returns a client for the service at baseURL (http://host:port). A nil httpClient uses
// one with a 60 s timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), http: httpClient}
}

// APIError is an error answer from the service. Parameter names the bad parameter of a 400;
// ErrorID is the id under which the service logged a 500's details.
type APIError struct {
	Status    int
	Parameter string
	Message   string
	ErrorID   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("query service: HTTP %d: %s", e.Status, e.Message)
}

// Values renders f as query parameters; zero fields are left out.
func (f Filter) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	for _, t := range f.Types {
		v.Add("type", t)
	}
	set("name", f.Name)
	set("trace_id", f.TraceID)
	set("span_id", f.SpanID)
	set("aggregation_type", f.AggregationType)
	if !f.Start.IsZero() {
		v.Set("start", f.Start.UTC().Format(time.RFC3339Nano))
	}
	if !f.End.IsZero() {
		v.Set("end", f.End.UTC().Format(time.RFC3339Nano))
	}
	for k, val := range f.Attributes {
		v.Set(attrPrefix+k, val)
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset > 0 {
		v.Set("offset", strconv.Itoa(f.Offset))
	}
	if f.Descending {
		v.Set("order", "desc")
	}
	return v
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("query service: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("query service: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		_ = json.Unmarshal(body, &eb)
		if eb.Error == "" {
			eb.Error = strings.TrimSpace(string(body))
		}
		return &APIError{Status: resp.StatusCode, Parameter: eb.Parameter, Message: eb.Error, ErrorID: eb.ErrorID}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("query service: decode answer: %w", err)
	}
	return nil
}

// QueryEvents returns one page of events matching f, and the offset of the next page (-1 when this
// page was the last).
func (c *Client) QueryEvents(ctx context.Context, f Filter) ([]schemas.Event, int, error) {
	var a EventsAnswer
	if err := c.get(ctx, "/v1/events", f.Values(), &a); err != nil {
		return nil, -1, err
	}
	return eventsOf(a)
}

func eventsOf(a EventsAnswer) ([]schemas.Event, int, error) {
	return recordsOf(a.Events, (*EventJSON).toEvent, a.page)
}

// recordsOf converts one page of an answer back to records with conv, and returns them with the
// offset of the next page.
func recordsOf[J, R any](rows []J, conv func(*J) (R, error), p page) ([]R, int, error) {
	out := make([]R, len(rows))
	for i := range rows {
		r, err := conv(&rows[i])
		if err != nil {
			return nil, -1, err
		}
		out[i] = r
	}
	return out, next(p), nil
}

// QueryMetrics returns one page of metric points matching f, and the offset of the next page (-1
// when this page was the last).
func (c *Client) QueryMetrics(ctx context.Context, f Filter) ([]schemas.Metric, int, error) {
	var a MetricsAnswer
	if err := c.get(ctx, "/v1/metrics", f.Values(), &a); err != nil {
		return nil, -1, err
	}
	return recordsOf(a.Metrics, (*MetricJSON).toMetric, a.page)
}

func next(p page) int {
	if p.NextOffset == nil {
		return -1
	}
	return *p.NextOffset
}

// Aggregate returns a metric's time series (see AggregateQuery and GET /v1/aggregate).
func (c *Client) Aggregate(ctx context.Context, q AggregateQuery) (AggregateAnswer, error) {
	var a AggregateAnswer
	err := c.get(ctx, "/v1/aggregate", q.Values(), &a)
	return a, err
}

// Trace returns every event of a trace in time order, reading it in pages of the service's
// QUERY_MAX_LIMIT (a trace's size is the caller's bound); an unknown trace is an *APIError with
// Status 404.
func (c *Client) Trace(ctx context.Context, traceID string) ([]schemas.Event, error) {
	return All(ctx, Filter{}, func(ctx context.Context, f Filter) ([]schemas.Event, int, error) {
		return c.TracePage(ctx, traceID, f.Limit, f.Offset)
	})
}

// TracePage returns one page of a trace's events in time order: limit events (0: the service's
// QUERY_MAX_LIMIT) from offset, and the offset of the next page (-1 when this page was the last).
// An unknown trace is an *APIError with Status 404; a page past the end of a known trace is empty.
func (c *Client) TracePage(ctx context.Context, traceID string, limit, offset int) ([]schemas.Event, int, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	var a EventsAnswer
	if err := c.get(ctx, "/v1/traces/"+url.PathEscape(traceID), q, &a); err != nil {
		return nil, -1, err
	}
	return eventsOf(a)
}

// All pages through a query (QueryEvents or QueryMetrics) from f.Offset to its end and returns
// every item.
func All[T any](ctx context.Context, f Filter, page func(context.Context, Filter) ([]T, int, error)) ([]T, error) {
	var all []T
	for off := f.Offset; off >= 0; {
		f.Offset = off
		items, next, err := page(ctx, f)
		if err != nil {
			return nil, err
		}
		all, off = append(all, items...), next
	}
	return all, nil
}
