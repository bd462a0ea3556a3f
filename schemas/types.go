package schemas

import (
	"fmt"
	"time"
)

// AggregationType says how a metric's values combine.
type AggregationType string

// The aggregation types of the Events and Metrics Reference.
const (
	Counter   AggregationType = "counter"   // cumulative value that only increases
	Gauge     AggregationType = "gauge"     // point-in-time value that can go up or down
	Histogram AggregationType = "histogram" // distribution of values, for percentiles
)

// ParseAggregationType returns the aggregation type named s, or an error naming s.
func ParseAggregationType(s string) (AggregationType, error) {
	switch AggregationType(s) {
	case Counter, Gauge, Histogram:
		return AggregationType(s), nil
	}
	return "", fmt.Errorf("%w %q (want counter, gauge or histogram)", ErrUnknownAggregation, s)
}

// Source identifies who recorded a record. Tenant is stamped by the ingest path; Service and Host
// come from the producer's configuration.
type Source struct {
	Tenant  string
	Service string
	Host    string
}

// Event is a discrete lifecycle moment. TraceID and SpanID are empty for records outside a trace.
type Event struct {
	EventID    string
	TraceID    string
	SpanID     string
	Type       string
	Name       string
	Timestamp  time.Time
	Attributes map[string]any
	Source
}

// Metric is one numerical measurement. TraceID is empty for a global metric.
type Metric struct {
	MetricID        string
	TraceID         string
	Name            string
	Value           float64
	Unit            string
	AggregationType AggregationType
	Timestamp       time.Time
	Attributes      map[string]any
	Source
	// Histogram is set when the point holds many values (an OTLP histogram data point); Value is
	// then their sum and AggregationType is Histogram. Nil for a point of one value.
	Histogram *Distribution
}
