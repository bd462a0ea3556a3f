package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/schemas"
)

// recordJSON is one record of a request. Kind is "event" or "metric" (in an array or NDJSON body);
// in an object body the array it is in says it.
type recordJSON struct {
	Kind            string          `json:"kind"`
	EventID         string          `json:"event_id"`
	MetricID        string          `json:"metric_id"`
	TraceID         string          `json:"trace_id"`
	SpanID          string          `json:"span_id"`
	Type            string          `json:"type"`
	Name            string          `json:"name"`
	Value           json.RawMessage `json:"value"`
	Unit            string          `json:"unit"`
	AggregationType string          `json:"aggregation_type"`
	Timestamp       json.RawMessage `json:"timestamp"`
	Attributes      json.RawMessage `json:"attributes"`
	Service         string          `json:"service"`
	Host            string          `json:"host"`
	Tenant          *string         `json:"tenant"`
}

// RecordError is a bad record: its position in the request, and the field at fault.
type RecordError struct {
	Index int
	Field string
	Err   error
}

func (e *RecordError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("record %d: field %q: %v", e.Index, e.Field, e.Err)
	}
	return fmt.Sprintf("record %d: %v", e.Index, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// request is a parsed body: records in request order, split by kind, with their positions.
type request struct {
	events   []schemas.Event
	metrics  []schemas.Metric
	eventAt  []int
	metricAt []int
}

func (r *request) size() int { return len(r.events) + len(r.metrics) }

// errTooMany reports more records than MaxRecords.
var errTooMany = errors.New("too many records")

// parseBody reads a JSON object {"events": [...], "metrics": [...]}, a JSON array of records with
// "kind", or (ndjson) one record with "kind" per line.
func parseBody(body io.Reader, ndjson bool, maxRecords int) (*request, error) {
	req := &request{}
	add := func(i int, kind string, raw json.RawMessage) error {
		if req.size() >= maxRecords {
			return fmt.Errorf("%w: more than %d in one request", errTooMany, maxRecords)
		}
		return req.add(i, kind, raw)
	}
	// The whole body is read before any record is parsed, so a body cut off by a limit is refused
	// as such (413), never as a bad last record.
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	if ndjson {
		i := 0
		for line := range bytes.Lines(data) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if err := add(i, "", line); err != nil {
				return nil, err
			}
			i++
		}
		return req, nil
	}
	data = bytes.TrimSpace(data)
	switch {
	case len(data) > 0 && data[0] == '[':
		var recs []json.RawMessage
		if err := json.Unmarshal(data, &recs); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		for i, raw := range recs {
			if err := add(i, "", raw); err != nil {
				return nil, err
			}
		}
	case len(data) > 0 && data[0] == '{':
		var obj struct {
			Events  []json.RawMessage `json:"events"`
			Metrics []json.RawMessage `json:"metrics"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("body: %w (want {\"events\": [...], \"metrics\": [...]})", err)
		}
		if err := noTrailing(dec); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		for i, raw := range obj.Events {
			if err := add(i, "event", raw); err != nil {
				return nil, err
			}
		}
		for i, raw := range obj.Metrics {
			if err := add(len(obj.Events)+i, "metric", raw); err != nil {
				return nil, err
			}
		}
	default:
		return nil, errors.New("body: want a JSON object, a JSON array or NDJSON")
	}
	return req, nil
}

func (req *request) add(i int, kind string, raw json.RawMessage) error {
	var r recordJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return &RecordError{Index: i, Field: decodeField(err), Err: err}
	}
	if err := noTrailing(dec); err != nil {
		return &RecordError{Index: i, Err: err}
	}
	if r.Tenant != nil {
		return &RecordError{Index: i, Field: "tenant", Err: errors.New("the tenant comes from the bearer token and cannot be set")}
	}
	if kind == "" {
		kind = r.Kind
	} else if r.Kind != "" && r.Kind != kind {
		return &RecordError{Index: i, Field: "kind", Err: fmt.Errorf("%q in the %ss array", r.Kind, kind)}
	}
	ts, err := parseTimestamp(r.Timestamp)
	if err != nil {
		return &RecordError{Index: i, Field: "timestamp", Err: err}
	}
	var attrs map[string]any
	if len(r.Attributes) > 0 {
		if attrs, err = schemas.ParseAttributesJSON(r.Attributes); err != nil {
			return &RecordError{Index: i, Field: "attributes", Err: err}
		}
	}
	src := schemas.Source{Service: r.Service, Host: r.Host}
	switch kind {
	case "event":
		req.events = append(req.events, schemas.Event{EventID: r.EventID, TraceID: r.TraceID, SpanID: r.SpanID, Type: r.Type,
			Name: r.Name, Timestamp: ts, Attributes: attrs, Source: src})
		req.eventAt = append(req.eventAt, i)
	case "metric":
		v, err := parseValue(r.Value)
		if err != nil {
			return &RecordError{Index: i, Field: "value", Err: err}
		}
		req.metrics = append(req.metrics, schemas.Metric{MetricID: r.MetricID, TraceID: r.TraceID, Name: r.Name, Value: v,
			Unit: r.Unit, AggregationType: schemas.AggregationType(r.AggregationType), Timestamp: ts, Attributes: attrs, Source: src})
		req.metricAt = append(req.metricAt, i)
	default:
		return &RecordError{Index: i, Field: "kind", Err: fmt.Errorf("%q: want event or metric", kind)}
	}
	return nil
}

// decodeField names the field a decoding error is about: an unknown one, or one of the wrong type.
func decodeField(err error) string {
	const p = "json: unknown field "
	if s := err.Error(); strings.HasPrefix(s, p) {
		return strings.Trim(strings.TrimPrefix(s, p), `"`)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

// noTrailing refuses anything but white space after the value dec decoded.
func noTrailing(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// parseValue reads a metric value: a JSON number (not a string holding one), finite.
func parseValue(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("%.40s: want a JSON number", raw)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%.40s is not a finite number", raw)
	}
	return v, nil
}

// parseTimestamp accepts RFC 3339 (fractions allowed) or Unix seconds (fractions allowed); absent
// means now (the producer fills it in).
func parseTimestamp(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: want RFC 3339 or Unix seconds", s)
		}
		return t, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > math.MaxUint32 {
		return time.Time{}, fmt.Errorf("%s: want RFC 3339 or Unix seconds", raw)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC().Truncate(time.Microsecond), nil
}
