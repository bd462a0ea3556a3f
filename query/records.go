package query

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/tributary/tributary/schemas"
)

// EventJSON is one event in an answer. Attributes keep their types: floats always carry a decimal
// point or exponent, integers never do.
type EventJSON struct {
	EventID    string          `json:"event_id"`
	TraceID    *string         `json:"trace_id"`
	SpanID     *string         `json:"span_id"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Timestamp  string          `json:"timestamp"`
	Attributes json.RawMessage `json:"attributes"`
	Tenant     string          `json:"tenant"`
	Service    string          `json:"service"`
	Host       string          `json:"host"`
}

// MetricJSON is one metric point in an answer. Histogram is null for a point of one value (every
// counter and gauge; see HistogramJSON).
type MetricJSON struct {
	MetricID        string          `json:"metric_id"`
	TraceID         *string         `json:"trace_id"`
	Name            string          `json:"name"`
	Value           float64         `json:"value"`
	Unit            string          `json:"unit"`
	AggregationType string          `json:"aggregation_type"`
	Timestamp       string          `json:"timestamp"`
	Attributes      json.RawMessage `json:"attributes"`
	Tenant          string          `json:"tenant"`
	Service         string          `json:"service"`
	Host            string          `json:"host"`
	Histogram       *HistogramJSON  `json:"histogram"`
}

// EventsAnswer is the body of GET /v1/events.
type EventsAnswer struct {
	Events []EventJSON `json:"events"`
	page
}

// MetricsAnswer is the body of GET /v1/metrics.
type MetricsAnswer struct {
	Metrics []MetricJSON `json:"metrics"`
	page
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func formatMicros(us uint64) string {
	return time.UnixMicro(int64(us)).UTC().Format(time.RFC3339Nano)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query(), s.cfg, "type", "name", "trace_id", "span_id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.scope = tenantOf(r)
	out, more, err := s.queryEvents(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, EventsAnswer{Events: out, page: newPage(len(out), f, more)})
}

// trace answers GET /v1/traces/{trace_id}: a page of the trace's events in time order (limit,
// QUERY_MAX_LIMIT by default, and offset, as /v1/events takes them; next_offset is set when more
// follow), or 404 when the trace has no events. A page past the end of a trace is empty.
func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k != "limit" && k != "offset" {
			s.fail(w, r, badParam(k, "unknown parameter (allowed: limit, offset)"))
			return
		}
	}
	f, err := parseFilter(q, s.cfg)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !q.Has("limit") {
		f.Limit = s.cfg.MaxLimit
	}
	f.TraceID, f.scope = r.PathValue("trace_id"), tenantOf(r)
	out, more, err := s.queryEvents(r.Context(), f)
	known := len(out) > 0
	if err == nil && !known && f.Offset > 0 {
		known, err = s.traceExists(r.Context(), f)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !known {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no events for trace " + f.TraceID, Parameter: "trace_id"})
		return
	}
	writeJSON(w, http.StatusOK, EventsAnswer{Events: out, page: newPage(len(out), f, more)})
}

// traceExists reports whether the trace has any event the request may see; it tells an empty page
// past the end of a trace from an unknown trace.
func (s *Server) traceExists(ctx context.Context, f Filter) (bool, error) {
	ctx, cancel := s.queryCtx(ctx)
	defer cancel()
	cond, args := traceIndexWhere(f)
	rows, err := s.conn.Query(ctx, "SELECT 1 FROM "+s.cfg.ClickHouse.Database+".events_trace_index"+cond+" LIMIT 1", args...)
	if err != nil {
		return false, fmt.Errorf("look up trace: %w", err)
	}
	defer rows.Close()
	found := rows.Next()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("look up trace: %w", err)
	}
	return found, nil
}

// traceEvents reads the page of a filter with a trace: the events the trace index
// (events_trace_index: the hashes of each event's tenant, trace and id, and its time, ordered by
// tenant and trace) names, read from events within the trace's time span, where every condition
// of the filter (the trace id itself too, so a hash collision cannot add an event) is checked and
// the page is ordered by (timestamp_us, event_id) and cut.
func (s *Server) traceEvents(ctx context.Context, f Filter) ([]EventJSON, error) {
	db := s.cfg.ClickHouse.Database
	icond, iargs := traceIndexWhere(f)
	cond, args := where(f, "events")
	tail, targs := orderLimit(f, "event_id")
	// The trace's time span bounds the read of events with their sorting key and partitions.
	// GLOBAL IN: on a cluster (Distributed tables) the index is read once and its set sent to
	// every shard (ClickHouse refuses a plain IN of one Distributed table in another); on one
	// server it is a plain IN.
	span := "timestamp >= (SELECT min(timestamp) FROM " + db + ".events_trace_index" + icond + ")" +
		" AND timestamp <= (SELECT max(timestamp) FROM " + db + ".events_trace_index" + icond + ")" +
		" AND (cityHash64(tenant), timestamp_us, cityHash64(event_id)) GLOBAL IN (SELECT tenant_hash, timestamp_us, event_hash FROM " +
		db + ".events_trace_index" + icond + ")"
	all := append(append(append(append(args, iargs...), iargs...), iargs...), targs...)
	return s.readEvents(ctx, eventColumns+db+".events FINAL"+andCond(cond, span)+tail, all)
}

// traceIndexWhere selects f's trace (and the request's tenant) in the trace index.
func traceIndexWhere(f Filter) (string, []any) {
	cond, args := " WHERE trace_hash = cityHash64(?)", []any{f.TraceID}
	if f.scope.scoped {
		cond, args = cond+" AND tenant_hash = cityHash64(?)", append(args, f.scope.tenant)
	}
	return cond, args
}

const eventColumns = "SELECT event_id, trace_id, span_id, type, name, timestamp_us, attributes, tenant, service, host FROM "

// queryEvents answers an event filter. A trace's events are found in the trace index (see
// traceEvents). A filter with attributes (and no span id) is answered from the attribute index (see
// pageByAttr). Otherwise the page is found first, reading only key columns of events, and then
// its rows are read from events by their sorting key: ordering a range's rows costs far less
// without their attributes' JSON.
// It reads one row past the page to tell whether more follow (more).
func (s *Server) queryEvents(ctx context.Context, f Filter) (_ []EventJSON, more bool, _ error) {
	ctx, cancel := s.queryCtx(ctx)
	defer cancel()
	limit := f.Limit
	f.Limit++
	if f.TraceID != "" {
		out, err := s.traceEvents(ctx, f)
		out, more = trimPage(out, limit)
		return out, more, err
	}
	if len(f.Attributes) > 0 && f.SpanID == "" {
		out, ok, err := s.pageByAttr(ctx, f)
		if err != nil {
			return nil, false, err
		}
		if ok {
			out, more = trimPage(out, limit)
			return out, more, nil
		}
		// An index row named an event the filter does not match (two hashes collided), retention
		// or new rows changed the page between two reads, or one microsecond holds more than
		// maxEdgeEvents events: answer from events alone, whose SQL checks every condition.
		s.log.Warn("the attribute index could not answer this page: answering from events", "attributes", f.Attributes)
	}
	cond, args := where(f, "events")
	tail, targs := orderLimit(f, "event_id")
	refs, err := s.eventRefs(ctx, "SELECT tenant, type, timestamp, event_id, timestamp_us FROM "+s.cfg.ClickHouse.Database+".events FINAL"+cond+tail,
		append(args, targs...))
	if err != nil {
		return nil, false, err
	}
	refs, more = trimPage(refs, limit)
	out, err := s.eventsByKey(ctx, refs, f.Descending)
	return out, more, err
}

// trimPage cuts a page read with one row past its limit (to tell whether more follow) to limit,
// and says whether it had more.
func trimPage[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit], true
	}
	return rows, false
}

func (s *Server) readEvents(ctx context.Context, sql string, args []any) ([]EventJSON, error) {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	out := []EventJSON{}
	for rows.Next() {
		var e EventJSON
		var trace, span, attrs string
		var us uint64
		if err := rows.Scan(&e.EventID, &trace, &span, &e.Type, &e.Name, &us, &attrs, &e.Tenant, &e.Service, &e.Host); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		e.TraceID, e.SpanID, e.Timestamp, e.Attributes = nullable(trace), nullable(span), formatMicros(us), json.RawMessage(attrs)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// EventCount is one bucket's count of one event type.
type EventCount struct {
	Time  time.Time `json:"t"`
	Type  string    `json:"type"`
	Count uint64    `json:"count"`
}

// eventCounts answers GET /v1/events/counts: events per bucket and type.
func (s *Server) eventCounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilter(withoutKeys(q, "bucket"), s.cfg, "type", "name", "trace_id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if q.Has("limit") || q.Has("offset") || q.Has("order") {
		s.fail(w, r, badParam("limit", "counts take no limit, offset or order"))
		return
	}
	f.scope, f.Limit, f.Offset = tenantOf(r), 0, 0
	a := AggregateQuery{Start: f.Start, End: f.End}
	if a.End.IsZero() {
		a.End = time.Now().UTC().Truncate(time.Second).Add(time.Second)
	}
	if a.Start.IsZero() {
		a.Start = a.End.Add(-time.Hour)
	}
	if a.Bucket, err = parseBucket(q.Get("bucket"), s.cfg, a.Start, a.End); err != nil {
		s.fail(w, r, err)
		return
	}
	f.Start, f.End = a.Start, a.End
	cond, args := where(f, "events")
	bucket := int64(a.Bucket / time.Second)
	sql := "SELECT toUInt32(intDiv(toUInt32(timestamp), ?) * ?) AS b, type, count() FROM " + s.cfg.ClickHouse.Database +
		".events FINAL" + cond + " GROUP BY b, type ORDER BY b, type LIMIT ?"
	ctx, cancel := s.queryCtx(r.Context())
	defer cancel()
	rows, err := s.conn.Query(ctx, sql, append(append([]any{bucket, bucket}, args...), s.cfg.MaxSeriesRows+1)...)
	if err != nil {
		s.fail(w, r, fmt.Errorf("count events: %w", err))
		return
	}
	defer rows.Close()
	out := []EventCount{}
	for rows.Next() {
		var b uint32
		var c EventCount
		if err := rows.Scan(&b, &c.Type, &c.Count); err != nil {
			s.fail(w, r, fmt.Errorf("count events: %w", err))
			return
		}
		c.Time = time.Unix(int64(b), 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, fmt.Errorf("count events: %w", err))
		return
	}
	if len(out) > s.cfg.MaxSeriesRows {
		s.fail(w, r, badParam("bucket", "more than %d bucket x type cells; widen the bucket or narrow the range", s.cfg.MaxSeriesRows))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bucket_seconds": bucket, "start": a.Start.Format(time.RFC3339Nano),
		"end": a.End.Format(time.RFC3339Nano), "counts": out})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query(), s.cfg, "name", "trace_id", "aggregation_type")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.scope = tenantOf(r)
	cond, args := where(f, "metrics")
	plus := f
	plus.Limit++ // one row past the page tells whether more follow
	tail, targs := orderLimit(plus, "metric_id")
	sql := "SELECT metric_id, trace_id, name, value, unit, toString(aggregation_type), timestamp_us, attributes, tenant, service, host, " +
		histogramColumns + " FROM " + s.cfg.ClickHouse.Database + ".metrics FINAL" + cond + tail
	ctx, cancel := s.queryCtx(r.Context())
	defer cancel()
	rows, err := s.conn.Query(ctx, sql, append(args, targs...)...)
	if err != nil {
		s.fail(w, r, fmt.Errorf("query metrics: %w", err))
		return
	}
	defer rows.Close()
	out := make([]MetricJSON, 0, min(f.Limit, 1024))
	for rows.Next() {
		var m MetricJSON
		var trace, attrs string
		var us uint64
		var h histogramRow
		dest := append([]any{&m.MetricID, &trace, &m.Name, &m.Value, &m.Unit, &m.AggregationType, &us, &attrs, &m.Tenant, &m.Service, &m.Host}, h.dest()...)
		if err := rows.Scan(dest...); err != nil {
			s.fail(w, r, fmt.Errorf("read metrics: %w", err))
			return
		}
		m.TraceID, m.Timestamp, m.Attributes, m.Histogram = nullable(trace), formatMicros(us), json.RawMessage(attrs), h.histogram(m.Value)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, fmt.Errorf("read metrics: %w", err))
		return
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	writeJSON(w, http.StatusOK, MetricsAnswer{Metrics: out, page: newPage(len(out), f, more)})
}

// toEvent converts an answer's event back to a record, attributes with their types.
func (e *EventJSON) toEvent() (schemas.Event, error) {
	ts, attrs, err := parseTimeAndAttributes("event "+e.EventID, e.Timestamp, e.Attributes)
	if err != nil {
		return schemas.Event{}, err
	}
	return schemas.Event{
		EventID: e.EventID, TraceID: deref(e.TraceID), SpanID: deref(e.SpanID), Type: e.Type, Name: e.Name,
		Timestamp: ts, Attributes: attrs, Source: schemas.Source{Tenant: e.Tenant, Service: e.Service, Host: e.Host},
	}, nil
}

func (m *MetricJSON) toMetric() (schemas.Metric, error) {
	ts, attrs, err := parseTimeAndAttributes("metric "+m.MetricID, m.Timestamp, m.Attributes)
	if err != nil {
		return schemas.Metric{}, err
	}
	return schemas.Metric{
		MetricID: m.MetricID, TraceID: deref(m.TraceID), Name: m.Name, Value: m.Value, Unit: m.Unit,
		AggregationType: schemas.AggregationType(m.AggregationType), Timestamp: ts, Attributes: attrs,
		Source: schemas.Source{Tenant: m.Tenant, Service: m.Service, Host: m.Host}, Histogram: m.Histogram.distribution(),
	}, nil
}

// parseTimeAndAttributes parses the timestamp and attributes of an answer's record (what names
// it, for errors).
func parseTimeAndAttributes(what, timestamp string, attributes json.RawMessage) (time.Time, map[string]any, error) {
	ts, err := time.Parse(time.RFC3339Nano, timestamp)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("%s: timestamp: %w", what, err)
	}
	attrs, err := schemas.ParseAttributesJSON(attributes)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return ts, attrs, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
