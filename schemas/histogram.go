package schemas

import (
	"fmt"
	"math"
)

// Distribution describes the values a metric point stands for when it holds many of them (an OTLP histogram data point): Count values whose sum is the metric's Value, in OTLP's
// buckets: explicit ones (Bounds and Counts) or exponential ones (Exponential). A histogram with
// no buckets at all has its Count values between Min and Max.
type Distribution struct {
	Count uint64
	// Min and Max are the smallest and largest value: exact when the sender gave them, else the
	// tightest bounds the buckets give (docs/otlp.md).
	Min, Max float64
	// Bounds are the explicit buckets' upper bounds, increasing: bucket i holds the values in
	// (Bounds[i-1], Bounds[i]], the last bucket those above the last bound. Counts has one more
	// entry than Bounds, or none.
	Bounds []float64
	Counts []uint64
	// Exponential is set instead of Bounds and Counts for an exponential histogram.
	Exponential *ExponentialBuckets
}

// ExponentialBuckets are OTLP's exponential histogram buckets. With base = 2^(2^-Scale), positive
// bucket i holds the values in (base^(PositiveOffset+i), base^(PositiveOffset+i+1)], negative
// bucket i the negatives of those, and the zero bucket the values of magnitude at most
// ZeroThreshold.
type ExponentialBuckets struct {
	Scale          int32
	ZeroCount      uint64
	ZeroThreshold  float64
	PositiveOffset int32
	PositiveCounts []uint64
	NegativeOffset int32
	NegativeCounts []uint64
}

// Histogram limits: OTLP's scales, and at most MaxHistogramBuckets explicit buckets or exponential
// buckets (both sides together) in one point.
const (
	MinExponentialScale = -10
	MaxExponentialScale = 20
	MaxHistogramBuckets = 4096
)

func badHistogram(format string, args ...any) error {
	return fmt.Errorf("histogram: %w: %s", ErrBadHistogram, fmt.Sprintf(format, args...))
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Validate reports the first problem with h, naming it.
func (h *Distribution) Validate() error {
	switch {
	case h.Count == 0:
		return badHistogram("count 0 (a point of no values carries nothing: send none)")
	case !finite(h.Min) || !finite(h.Max):
		return badHistogram("min %v and max %v must be finite", h.Min, h.Max)
	case h.Min > h.Max:
		return badHistogram("min %v above max %v", h.Min, h.Max)
	}
	if e := h.Exponential; e != nil {
		if len(h.Bounds) > 0 || len(h.Counts) > 0 {
			return badHistogram("both explicit and exponential buckets")
		}
		return e.validate(h.Count)
	}
	switch {
	case len(h.Counts) == 0 && len(h.Bounds) == 0:
		return nil
	case len(h.Counts) != len(h.Bounds)+1:
		return badHistogram("%d bucket counts for %d bounds (want one more count than bounds)", len(h.Counts), len(h.Bounds))
	case len(h.Counts) > MaxHistogramBuckets:
		return badHistogram("%d buckets (at most %d)", len(h.Counts), MaxHistogramBuckets)
	}
	for i, b := range h.Bounds {
		if !finite(b) || (i > 0 && b <= h.Bounds[i-1]) {
			return badHistogram("bound %d is %v: bounds must be finite and increasing", i, b)
		}
	}
	return checkTotal(h.Count, 0, h.Counts)
}

func (e *ExponentialBuckets) validate(count uint64) error {
	switch {
	case e.Scale < MinExponentialScale || e.Scale > MaxExponentialScale:
		return badHistogram("scale %d outside OTLP's %d..%d", e.Scale, MinExponentialScale, MaxExponentialScale)
	case !finite(e.ZeroThreshold) || e.ZeroThreshold < 0:
		return badHistogram("zero threshold %v must be finite and not negative", e.ZeroThreshold)
	case len(e.PositiveCounts)+len(e.NegativeCounts) > MaxHistogramBuckets:
		return badHistogram("%d buckets (at most %d)", len(e.PositiveCounts)+len(e.NegativeCounts), MaxHistogramBuckets)
	case int64(e.PositiveOffset)+int64(len(e.PositiveCounts)) > math.MaxInt32,
		int64(e.NegativeOffset)+int64(len(e.NegativeCounts)) > math.MaxInt32:
		return badHistogram("bucket offsets beyond the int32 range")
	}
	return checkTotal(count, e.ZeroCount, e.PositiveCounts, e.NegativeCounts)
}

func checkTotal(count, n uint64, sides ...[]uint64) error {
	for _, side := range sides {
		for _, c := range side {
			if n+c < n {
				return badHistogram("bucket counts overflow")
			}
			n += c
		}
	}
	if n != count {
		return badHistogram("bucket counts add up to %d, not the count %d", n, count)
	}
	return nil
}

// Buckets calls yield with the edges of every non-empty bucket of h and the number of values in
// it, in increasing order of value, until yield returns false. Edges are OTLP's: an explicit
// bucket's lower edge is exclusive, its first bucket's is -Inf and its last bucket's upper edge
// +Inf; the exponential zero bucket spans [-ZeroThreshold, ZeroThreshold]. A histogram without
// buckets is one bucket [Min, Max].
func (h *Distribution) Buckets(yield func(lo, hi float64, n uint64) bool) {
	if e := h.Exponential; e != nil {
		e.buckets(yield)
		return
	}
	if len(h.Counts) == 0 {
		yield(h.Min, h.Max, h.Count)
		return
	}
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := math.Inf(-1), math.Inf(1)
		if i > 0 {
			lo = h.Bounds[i-1]
		}
		if i < len(h.Bounds) {
			hi = h.Bounds[i]
		}
		if !yield(lo, hi, n) {
			return
		}
	}
}

// ExponentialEdge is base^index for base 2^(2^-scale): the lower edge of positive bucket index
// (and the upper edge of bucket index-1). It is +Inf past float64's range.
func ExponentialEdge(scale int32, index int64) float64 {
	return math.Exp2(math.Ldexp(float64(index), -int(scale)))
}

func (e *ExponentialBuckets) buckets(yield func(lo, hi float64, n uint64) bool) {
	for i := len(e.NegativeCounts) - 1; i >= 0; i-- { // the most negative first
		if n := e.NegativeCounts[i]; n > 0 {
			idx := int64(e.NegativeOffset) + int64(i)
			if !yield(-ExponentialEdge(e.Scale, idx+1), -ExponentialEdge(e.Scale, idx), n) {
				return
			}
		}
	}
	if e.ZeroCount > 0 && !yield(-e.ZeroThreshold, e.ZeroThreshold, e.ZeroCount) {
		return
	}
	for i, n := range e.PositiveCounts {
		if n > 0 {
			idx := int64(e.PositiveOffset) + int64(i)
			if !yield(ExponentialEdge(e.Scale, idx), ExponentialEdge(e.Scale, idx+1), n) {
				return
			}
		}
	}
}

// OuterBuckets returns the edges of h's lowest and highest non-empty buckets (as Buckets gives
// them: an explicit histogram's open buckets have an infinite edge), or ok false when h has no
// buckets. They bound h's values when h has no Min and Max of its own (docs/otlp.md).
func (h *Distribution) OuterBuckets() (lowest, highest [2]float64, ok bool) {
	if h.Exponential == nil && len(h.Counts) == 0 {
		return lowest, highest, false
	}
	h.Buckets(func(lo, hi float64, _ uint64) bool {
		if !ok {
			lowest, ok = [2]float64{lo, hi}, true
		}
		highest = [2]float64{lo, hi}
		return true
	})
	return lowest, highest, ok
}
