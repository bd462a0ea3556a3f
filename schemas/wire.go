package schemas

import (
	"fmt"
	"math"
	"time"
)

// attrValue is the Go shape of the AttrValue record: V holds nil, bool, int64, float64, string,
// []attrValue or map[string]attrValue.
type attrValue struct {
	V any `avro:"v"`
}

type wireEvent struct {
	EventID    string               `avro:"event_id"`
	TraceID    *string              `avro:"trace_id"`
	SpanID     *string              `avro:"span_id"`
	Type       string               `avro:"type"`
	Name       string               `avro:"name"`
	Timestamp  time.Time            `avro:"timestamp"`
	Attributes map[string]attrValue `avro:"attributes"`
	Tenant     string               `avro:"tenant"`
	Service    string               `avro:"service"`
	Host       string               `avro:"host"`
}

type wireMetric struct {
	MetricID        string               `avro:"metric_id"`
	TraceID         *string              `avro:"trace_id"`
	Name            string               `avro:"name"`
	Value           float64              `avro:"value"`
	Unit            string               `avro:"unit"`
	AggregationType string               `avro:"aggregation_type"`
	Timestamp       time.Time            `avro:"timestamp"`
	Attributes      map[string]attrValue `avro:"attributes"`
	Tenant          string               `avro:"tenant"`
	Service         string               `avro:"service"`
	Host            string               `avro:"host"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toWireAttrs(attrs map[string]any) (map[string]attrValue, error) {
	return convertMap(attrs, toWireValue)
}

func toWireValue(v any) (attrValue, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return attrValue{V: x}, nil
	case []any:
		list, err := convertList(x, toWireValue)
		if err != nil {
			return attrValue{}, err
		}
		return attrValue{V: list}, nil
	case map[string]any:
		m, err := toWireAttrs(x)
		if err != nil {
			return attrValue{}, err
		}
		return attrValue{V: m}, nil
	}
	return attrValue{}, fmt.Errorf("%w: %T is not normalised (call NormalizeAttributes)", ErrBadAttribute, v)
}

func fromWireAttrs(attrs map[string]attrValue) (map[string]any, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	return convertMap(attrs, func(v attrValue) (any, error) { return fromWireValue(v.V, 1) })
}

// fromWireValue converts a decoded attribute value at nesting depth (a top-level value is at 1)
// and enforces the limits NormalizeAttributes enforces on the producer's side, so a record written
// by another producer that breaks them is refused at decode (and dead-lettered), not stored.
func fromWireValue(v any, depth int) (any, error) {
	switch v.(type) {
	case []attrValue, map[string]attrValue:
		if depth >= MaxAttributeDepth {
			return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrBadAttribute, MaxAttributeDepth)
		}
	}
	switch x := v.(type) {
	case nil, bool, int64, string:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%w, got %v", ErrBadValue, x)
		}
		return x, nil
	case int:
		return int64(x), nil
	case []attrValue:
		return convertList(x, func(e attrValue) (any, error) { return fromWireValue(e.V, depth+1) })
	case map[string]attrValue:
		return convertMap(x, func(e attrValue) (any, error) { return fromWireValue(e.V, depth+1) })
	}
	return nil, fmt.Errorf("%w: unexpected decoded type %T", ErrMalformed, v)
}
