package query

import "github.com/tributary/tributary/schemas"

// HistogramJSON is the histogram of a metric point that holds many values (an OTLP histogram data
// point; schemas.Distribution), as the metrics table stores it (migration 0006): Count is
// value_count, Min and Max are value_min and value_max, Bounds and Counts are bucket_bounds and
// bucket_counts (both empty for exponential buckets or none), and Exponential holds the exp_*
// columns, nil for explicit buckets or none. Its field names are those of the metric topic's Avro
// histogram record (metric.avsc).
type HistogramJSON struct {
	Count       uint64           `json:"count"`
	Min         float64          `json:"min"`
	Max         float64          `json:"max"`
	Bounds      []float64        `json:"bounds"`
	Counts      []uint64         `json:"counts"`
	Exponential *ExponentialJSON `json:"exponential"`
}

// ExponentialJSON is an exponential histogram's buckets: the metrics table's exp_scale,
// exp_zero_count, exp_zero_threshold, exp_positive_offset, exp_positive_counts,
// exp_negative_offset and exp_negative_counts.
type ExponentialJSON struct {
	Scale          int32    `json:"scale"`
	ZeroCount      uint64   `json:"zero_count"`
	ZeroThreshold  float64  `json:"zero_threshold"`
	PositiveOffset int32    `json:"positive_offset"`
	PositiveCounts []uint64 `json:"positive_counts"`
	NegativeOffset int32    `json:"negative_offset"`
	NegativeCounts []uint64 `json:"negative_counts"`
}

// histogramColumns are the metrics table's columns that describe a row's values (migration 0006),
// in the order histogramRow.dest scans them.
const histogramColumns = "value_count, value_min, value_max, bucket_bounds, bucket_counts, exp_scale, exp_zero_count, " +
	"exp_zero_threshold, exp_positive_offset, exp_positive_counts, exp_negative_offset, exp_negative_counts"

// histogramRow is one row's histogramColumns as scanned.
type histogramRow struct {
	count  uint64
	min    float64
	max    float64
	bounds []float64
	counts []uint64
	e      ExponentialJSON
}

// dest returns the scan destinations of histogramColumns.
func (h *histogramRow) dest() []any {
	return []any{&h.count, &h.min, &h.max, &h.bounds, &h.counts, &h.e.Scale, &h.e.ZeroCount,
		&h.e.ZeroThreshold, &h.e.PositiveOffset, &h.e.PositiveCounts, &h.e.NegativeOffset, &h.e.NegativeCounts}
}

// histogram returns the row's histogram, or nil when the row holds one value: value_count 1,
// value_min = value_max = value and no buckets, which is every counter and gauge, every histogram
// point recorded one value at a time (the SDK's), and every row written before migration 0006.
// Those columns then hold only what value gives, and nil loses nothing.
func (h *histogramRow) histogram(value float64) *HistogramJSON {
	e := &h.e
	exponential := e.Scale != 0 || e.ZeroCount != 0 || e.ZeroThreshold != 0 || e.PositiveOffset != 0 ||
		len(e.PositiveCounts) > 0 || e.NegativeOffset != 0 || len(e.NegativeCounts) > 0
	if !exponential && h.count == 1 && h.min == value && h.max == value && len(h.bounds) == 0 && len(h.counts) == 0 {
		return nil
	}
	out := &HistogramJSON{Count: h.count, Min: h.min, Max: h.max, Bounds: nonNil(h.bounds), Counts: nonNil(h.counts)}
	if exponential {
		x := *e
		x.PositiveCounts, x.NegativeCounts = nonNil(x.PositiveCounts), nonNil(x.NegativeCounts)
		out.Exponential = &x
	}
	return out
}

// distribution converts an answer's histogram back to the record's; empty bucket lists become nil
// as they are in a decoded record.
func (h *HistogramJSON) distribution() *schemas.Distribution {
	if h == nil {
		return nil
	}
	d := &schemas.Distribution{Count: h.Count, Min: h.Min, Max: h.Max, Bounds: nilIfEmpty(h.Bounds), Counts: nilIfEmpty(h.Counts)}
	if e := h.Exponential; e != nil {
		d.Exponential = &schemas.ExponentialBuckets{Scale: e.Scale, ZeroCount: e.ZeroCount, ZeroThreshold: e.ZeroThreshold,
			PositiveOffset: e.PositiveOffset, PositiveCounts: nilIfEmpty(e.PositiveCounts),
			NegativeOffset: e.NegativeOffset, NegativeCounts: nilIfEmpty(e.NegativeCounts)}
	}
	return d
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
