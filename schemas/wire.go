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
	Histogram       *wireHistogram       `avro:"histogram"`
}

type wireHistogram struct {
	Count       int64             `avro:"count"`
	Min         float64           `avro:"min"`
	Max         float64           `avro:"max"`
	Bounds      []float64         `avro:"bounds"`
	Counts      []int64           `avro:"counts"`
	Exponential *wireExpHistogram `avro:"exponential"`
}

type wireExpHistogram struct {
	Scale          int32   `avro:"scale"`
	ZeroCount      int64   `avro:"zero_count"`
	ZeroThreshold  float64 `avro:"zero_threshold"`
	PositiveOffset int32   `avro:"positive_offset"`
	PositiveCounts []int64 `avro:"positive_counts"`
	NegativeOffset int32   `avro:"negative_offset"`
	NegativeCounts []int64 `avro:"negative_counts"`
}

// fromWireHistogram converts a decoded histogram; a count or bucket count beyond int64 (negative
// on the wire) is malformed.
func fromWireHistogram(w *wireHistogram) (*Distribution, error) {
	if w == nil {
		return nil, nil
	}
	neg := w.Count < 0
	for _, side := range [][]int64{w.Counts, expSide(w.Exponential, true), expSide(w.Exponential, false)} {
		for _, c := range side {
			neg = neg || c < 0
		}
	}
	if neg || (w.Exponential != nil && w.Exponential.ZeroCount < 0) {
		return nil, fmt.Errorf("%w: histogram: a negative count", ErrMalformed)
	}
	h := &Distribution{Count: uint64(w.Count), Min: w.Min, Max: w.Max, Bounds: nilIfEmpty(w.Bounds), Counts: nilIfEmpty(toUnsigned(w.Counts))}
	if e := w.Exponential; e != nil {
		h.Exponential = &ExponentialBuckets{Scale: e.Scale, ZeroCount: uint64(e.ZeroCount), ZeroThreshold: e.ZeroThreshold,
			PositiveOffset: e.PositiveOffset, PositiveCounts: nilIfEmpty(toUnsigned(e.PositiveCounts)),
			NegativeOffset: e.NegativeOffset, NegativeCounts: nilIfEmpty(toUnsigned(e.NegativeCounts))}
	}
	return h, nil
}

func expSide(e *wireExpHistogram, positive bool) []int64 {
	switch {
	case e == nil:
		return nil
	case positive:
		return e.PositiveCounts
	}
	return e.NegativeCounts
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
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
