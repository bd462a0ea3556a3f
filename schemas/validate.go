package schemas

import (
	"fmt"
	"math"
	"time"
)

// The range of ClickHouse's DateTime, where records are stored.
var (
	minTimestamp = time.Unix(0, 0)
	maxTimestamp = time.Unix(math.MaxUint32, 0)
)

func checkTimestamp(ts time.Time) error {
	if ts.IsZero() {
		return fmt.Errorf("timestamp: %w: zero", ErrBadTimestamp)
	}
	if ts.Before(minTimestamp) || !ts.Before(maxTimestamp) {
		return fmt.Errorf("timestamp: %w: %s is outside 1970..2106", ErrBadTimestamp, ts.UTC().Format(time.RFC3339))
	}
	return nil
}

func required(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: %w", field, ErrEmptyField)
	}
	return nil
}

// Validate reports the first problem with e, naming the field: empty event_id, type or name; a bad
// timestamp; attributes that are not normalised.
func (e *Event) Validate() error {
	if err := required("event_id", e.EventID); err != nil {
		return err
	}
	if err := required("type", e.Type); err != nil {
		return err
	}
	if err := required("name", e.Name); err != nil {
		return err
	}
	return checkTimestamp(e.Timestamp)
}

// Validate reports the first problem with m, naming the field: empty metric_id or name; NaN or
// infinite value; unknown aggregation_type; a bad timestamp; a histogram on a metric that is not
// a histogram, or whose parts disagree (Distribution.Validate).
func (m *Metric) Validate() error {
	if err := required("metric_id", m.MetricID); err != nil {
		return err
	}
	if err := required("name", m.Name); err != nil {
		return err
	}
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return fmt.Errorf("value: %w, got %v", ErrBadValue, m.Value)
	}
	if _, err := ParseAggregationType(string(m.AggregationType)); err != nil {
		return fmt.Errorf("aggregation_type: %w", err)
	}
	if m.Histogram != nil {
		if m.AggregationType != Histogram {
			return fmt.Errorf("histogram: %w: set on a %s (only a histogram holds many values)", ErrBadHistogram, m.AggregationType)
		}
		if err := m.Histogram.Validate(); err != nil {
			return err
		}
	}
	return checkTimestamp(m.Timestamp)
}
