package rollups

import (
	"math"

	"github.com/tributary/tributary/schemas"
)

// Aggregate is what a window knows of its series' points. Every type keeps count, sum, min, max and
// the last value by timestamp; a histogram also keeps a Sketch. By type, the meaningful parts are:
// counter count and sum (a rate is sum / window width); gauge last, min, max, sum, count; histogram
// count, sum, min, max and quantiles.
type Aggregate struct {
	Count    uint64
	Sum      float64
	Min, Max float64
	Last     float64
	LastTS   int64 // microseconds since the epoch of the point Last came from
	Sketch   *Sketch
	// LastOffset is the highest source offset applied: points at or below it were counted already
	// (replays skip them). -1 when nothing was applied.
	LastOffset int64
}

// NewAggregate returns an empty aggregate for points of type t.
func NewAggregate(t schemas.AggregationType) Aggregate {
	a := Aggregate{Min: math.Inf(1), Max: math.Inf(-1), LastOffset: -1}
	if t == schemas.Histogram {
		a.Sketch = &Sketch{}
	}
	return a
}

// Add counts one point. The last value is the one with the greatest timestamp; among equal
// timestamps, the greater value, so the result does not depend on arrival order.
func (a *Aggregate) Add(v float64, ts int64) {
	a.Count++
	a.Sum += v
	a.Min = math.Min(a.Min, v)
	a.Max = math.Max(a.Max, v)
	if a.Count == 1 || ts > a.LastTS || (ts == a.LastTS && v > a.Last) {
		a.Last, a.LastTS = v, ts
	}
	if a.Sketch != nil {
		a.Sketch.Add(v)
	}
}

// add counts point p: one value, or the values of p.Hist.
func (a *Aggregate) add(p *Point) {
	if p.Hist != nil {
		a.AddHistogram(p.Hist, p.Value, p.TS)
		return
	}
	a.Add(p.Value, p.TS)
}

// AddHistogram counts the h.Count values of a point that holds many (an OTLP histogram data
// point), whose sum is sum: count, sum, min and max are h's (exact when h's are); the last value is
// sum, as the raw row's value; a histogram's sketch counts each of h's buckets at its
// representative value (BucketValueOf), so its quantiles are within the error stated there.
func (a *Aggregate) AddHistogram(h *schemas.Distribution, sum float64, ts int64) {
	if h.Count == 0 {
		return
	}
	first := a.Count == 0
	a.Count += h.Count
	a.Sum += sum
	a.Min = math.Min(a.Min, h.Min)
	a.Max = math.Max(a.Max, h.Max)
	if first || ts > a.LastTS || (ts == a.LastTS && sum > a.Last) {
		a.Last, a.LastTS = sum, ts
	}
	if a.Sketch != nil {
		h.Buckets(func(lo, hi float64, n uint64) bool {
			a.Sketch.AddN(BucketValueOf(lo, hi, h.Min, h.Max), n)
			return true
		})
	}
}

// Merge folds o into a, as if o's points had been added to a.
func (a *Aggregate) Merge(o *Aggregate) {
	if o.Count == 0 {
		return
	}
	if a.Count == 0 || o.LastTS > a.LastTS || (o.LastTS == a.LastTS && o.Last > a.Last) {
		a.Last, a.LastTS = o.Last, o.LastTS
	}
	a.Count += o.Count
	a.Sum += o.Sum
	a.Min = math.Min(a.Min, o.Min)
	a.Max = math.Max(a.Max, o.Max)
	if o.Sketch != nil {
		if a.Sketch == nil {
			a.Sketch = &Sketch{}
		}
		a.Sketch.Merge(o.Sketch)
	}
	a.LastOffset = max(a.LastOffset, o.LastOffset)
}

// Quantile returns the q-quantile of a histogram, clamped to the exact min and max; NaN for other
// types or no points.
func (a *Aggregate) Quantile(q float64) float64 {
	if a.Sketch == nil || a.Count == 0 {
		return math.NaN()
	}
	return math.Max(a.Min, math.Min(a.Max, a.Sketch.Quantile(q)))
}
