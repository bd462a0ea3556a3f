package gateway

import (
	"encoding/binary"
	"hash/fnv"
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// An OTLP histogram data point becomes one metric point of aggregation type histogram: its value
// the sum, its Histogram the count, min, max and buckets (docs/otlp.md). A cumulative point
// becomes the increase since the stream's previous point, buckets included.

func (c *metricConv) histograms(dps pmetric.HistogramDataPointSlice, cum *cumulative) error {
	for i := range dps.Len() {
		dp := dps.At(i)
		p, ok := c.next(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp(), dp.Flags())
		if !ok {
			continue
		}
		bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
		if counts.Len() > 0 && counts.Len() != bounds.Len()+1 {
			c.b.reject(p.item, "data point %d (histogram %q): %d bucket counts for %d bounds (want one more count than bounds)",
				p.item, c.m.Name(), counts.Len(), bounds.Len())
			continue
		}
		vals := make([]float64, 2+counts.Len())
		vals[0], vals[1] = float64(dp.Count()), dp.Sum()
		layout := fnv.New64a()
		var n [8]byte
		for j := range counts.Len() {
			vals[2+j] = float64(counts.At(j))
			if j < bounds.Len() {
				binary.LittleEndian.PutUint64(n[:], math.Float64bits(bounds.At(j)))
				layout.Write(n[:])
			}
		}
		next := stream{layout: layout.Sum64(), vals: vals, min: optionalFloat(dp.HasMin(), dp.Min()), max: optionalFloat(dp.HasMax(), dp.Max())}
		d, ok := c.increase(cum, p, next)
		if !ok {
			continue
		}
		h := &schemas.Distribution{Count: uint64(d.vals[0])}
		if counts.Len() > 0 {
			h.Bounds, h.Counts = bounds.AsRaw(), toCounts(d.vals[2:])
		}
		c.emitHistogram(p, h, d, dp.HasSum(), next)
		if err := c.b.full(); err != nil {
			return err
		}
	}
	return nil
}

func (c *metricConv) expHistograms(dps pmetric.ExponentialHistogramDataPointSlice, cum *cumulative) error {
	for i := range dps.Len() {
		dp := dps.At(i)
		p, ok := c.next(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp(), dp.Flags())
		if !ok {
			continue
		}
		pos, neg := dp.Positive().BucketCounts(), dp.Negative().BucketCounts()
		if sc := dp.Scale(); sc < schemas.MinExponentialScale || sc > schemas.MaxExponentialScale {
			c.b.reject(p.item, "data point %d (exponential histogram %q): scale %d outside OTLP's %d..%d",
				p.item, c.m.Name(), sc, schemas.MinExponentialScale, schemas.MaxExponentialScale)
			continue
		}
		if int64(dp.Positive().Offset())+int64(pos.Len()) > math.MaxInt32 || int64(dp.Negative().Offset())+int64(neg.Len()) > math.MaxInt32 {
			c.b.reject(p.item, "data point %d (exponential histogram %q): bucket indexes beyond the int32 range", p.item, c.m.Name())
			continue
		}
		l := &expLayout{scale: dp.Scale(), posOff: int64(dp.Positive().Offset()), posLen: pos.Len(),
			negOff: int64(dp.Negative().Offset()), negLen: neg.Len()}
		vals := make([]float64, 3, 3+pos.Len()+neg.Len())
		vals[0], vals[1], vals[2] = float64(dp.Count()), dp.Sum(), float64(dp.ZeroCount())
		for _, side := range []countSlice{pos, neg} {
			for j := range side.Len() {
				vals = append(vals, float64(side.At(j)))
			}
		}
		next := stream{layout: math.Float64bits(dp.ZeroThreshold()), vals: vals, exp: l,
			min: optionalFloat(dp.HasMin(), dp.Min()), max: optionalFloat(dp.HasMax(), dp.Max())}
		d, ok := c.increase(cum, p, next)
		if !ok {
			continue
		}
		h := &schemas.Distribution{Count: uint64(d.vals[0]), Exponential: d.exp.buckets(d.vals, dp.ZeroThreshold())}
		c.emitHistogram(p, h, d, dp.HasSum(), next)
		if err := c.b.full(); err != nil {
			return err
		}
	}
	return nil
}

// countSlice is the bucket counts of either side of an exponential histogram.
type countSlice interface {
	Len() int
	At(int) uint64
}

func optionalFloat(has bool, v float64) float64 {
	if !has {
		return math.NaN()
	}
	return v
}

func toCounts(vals []float64) []uint64 {
	out := make([]uint64, len(vals))
	for i, v := range vals {
		out[i] = uint64(v)
	}
	return out
}

// emitHistogram adds the metric point of h, the increase d of the OTLP point sent (next: its
// min and max, NaN when not sent). A point of no values stores nothing.
func (c *metricConv) emitHistogram(p point, h *schemas.Distribution, d increase, hasSum bool, sent stream) {
	if h.Count == 0 {
		return
	}
	// The sender's min and max are the increase's when they cover exactly its values: for a
	// delta point, a cumulative stream's first point or reset, or an extreme that moved since the
	// previous point (the value that moved it was recorded since). Otherwise they are bounds.
	exactMin := !math.IsNaN(sent.min) && (d.from == nil || math.IsNaN(d.from.min) || sent.min < d.from.min)
	exactMax := !math.IsNaN(sent.max) && (d.from == nil || math.IsNaN(d.from.max) || sent.max > d.from.max)
	mean := math.NaN()
	if hasSum {
		mean = d.vals[1] / float64(h.Count)
	}
	h.Min, h.Max = extremes(h, mean, sent.min, exactMin, sent.max, exactMax)
	if math.IsNaN(h.Min) || math.IsNaN(h.Max) {
		c.b.reject(p.item, "data point %d (histogram %q): no sum, and no min, max or bucket bounds that bound its values", p.item, c.m.Name())
		return
	}
	sum := d.vals[1]
	if !hasSum { // OTLP's sum is optional (senders of negative values leave it out): estimate it
		sum = 0
		h.Buckets(func(lo, hi float64, n uint64) bool {
			sum += float64(n) * rollups.BucketValueOf(lo, hi, h.Min, h.Max)
			return true
		})
	}
	m := schemas.Metric{Name: c.m.Name(), Value: sum, Unit: c.m.Unit(), AggregationType: schemas.Histogram,
		Timestamp: otlpTime(p.ts), Attributes: p.attrs, Source: c.o.src, Histogram: h}
	c.b.addMetric(p.item, m)
}

// extremes returns h's min and max: the sender's where exact; else the tightest bounds known (the
// outer buckets' edges, and the sender's min and max since the stream started); where neither
// bounds a side (an explicit histogram's open bucket, no min or max sent), the outer bucket's
// finite edge, then the mean. NaN when nothing is known.
func extremes(h *schemas.Distribution, mean, min float64, exactMin bool, max float64, exactMax bool) (float64, float64) {
	lowest, highest, ok := h.OuterBuckets()
	lo, hi := math.Inf(-1), math.Inf(1)
	if ok {
		lo, hi = lowest[0], highest[1]
	}
	switch {
	case exactMin:
		lo = min
	case !math.IsNaN(min):
		lo = math.Max(lo, min)
	}
	switch {
	case exactMax:
		hi = max
	case !math.IsNaN(max):
		hi = math.Min(hi, max)
	}
	if math.IsInf(lo, -1) && ok && !math.IsInf(lowest[1], 1) {
		lo = lowest[1]
	}
	if math.IsInf(hi, 1) && ok && !math.IsInf(highest[0], -1) {
		hi = highest[0]
	}
	if math.IsInf(lo, 0) {
		lo = mean
	}
	if math.IsInf(hi, 0) {
		hi = mean
	}
	return math.Min(lo, hi), math.Max(lo, hi)
}

// expLayout places an exponential histogram's buckets in a stream's values: after count, sum and
// the zero count come posLen positive buckets from index posOff, then negLen negative ones.
type expLayout struct {
	scale          int32
	posOff, negOff int64
	posLen, negLen int
}

// buckets returns the exponential buckets of vals in layout l, without empty buckets at either end
// of a side.
func (l *expLayout) buckets(vals []float64, zeroThreshold float64) *schemas.ExponentialBuckets {
	trim := func(off int64, counts []float64) (int32, []uint64) {
		i, j := 0, len(counts)
		for i < j && counts[i] == 0 {
			i++
		}
		for j > i && counts[j-1] == 0 {
			j--
		}
		if i == j {
			return 0, nil
		}
		return int32(off + int64(i)), toCounts(counts[i:j])
	}
	e := &schemas.ExponentialBuckets{Scale: l.scale, ZeroCount: uint64(vals[2]), ZeroThreshold: zeroThreshold}
	e.PositiveOffset, e.PositiveCounts = trim(l.posOff, vals[3:3+l.posLen])
	e.NegativeOffset, e.NegativeCounts = trim(l.negOff, vals[3+l.posLen:3+l.posLen+l.negLen])
	return e
}

// alignExp returns the values of prev and next in one layout: the coarser of their scales (a
// bucket at a finer scale falls whole into one at a coarser: index >> the scale difference, as
// OTel SDKs downscale) and, per side, the union of their ranges. A union wider than
// MaxHistogramBuckets returns ok false (the stream is taken to have restarted).
func alignExp(prev, next *stream) (pv, nv []float64, l *expLayout, ok bool) {
	scale := min(prev.exp.scale, next.exp.scale)
	type span struct{ lo, hi int64 } // of indexes at scale; empty when lo > hi
	side := func(s *stream, positive bool) (off int64, n int, shift int32) {
		if positive {
			return s.exp.posOff, s.exp.posLen, s.exp.scale - scale
		}
		return s.exp.negOff, s.exp.negLen, s.exp.scale - scale
	}
	union := func(positive bool) span {
		u := span{math.MaxInt64, math.MinInt64}
		for _, s := range []*stream{prev, next} {
			off, n, shift := side(s, positive)
			if n > 0 {
				u.lo, u.hi = min(u.lo, off>>shift), max(u.hi, (off+int64(n)-1)>>shift)
			}
		}
		if u.lo > u.hi {
			return span{0, -1}
		}
		return u
	}
	ps, ns := union(true), union(false)
	if ps.hi-ps.lo+1+ns.hi-ns.lo+1 > schemas.MaxHistogramBuckets {
		return nil, nil, nil, false
	}
	l = &expLayout{scale: scale, posOff: ps.lo, posLen: int(ps.hi - ps.lo + 1), negOff: ns.lo, negLen: int(ns.hi - ns.lo + 1)}
	place := func(s *stream) []float64 {
		out := make([]float64, 3+l.posLen+l.negLen)
		copy(out, s.vals[:3])
		for _, positive := range []bool{true, false} {
			off, n, shift := side(s, positive)
			from, base, into := 3, l.posOff, 3
			if !positive {
				from, base, into = 3+s.exp.posLen, l.negOff, 3+l.posLen
			}
			for i := range n {
				out[into+int(((off+int64(i))>>shift)-base)] += s.vals[from+i]
			}
		}
		return out
	}
	return place(prev), place(next), l, true
}

// histogramDigest is a fingerprint of h for the record's id: two histograms of one stream and
// time with the same sum but different values get different ids.
func histogramDigest(h *schemas.Distribution) string {
	d := fnv.New64a()
	var n [8]byte
	put := func(u uint64) {
		binary.LittleEndian.PutUint64(n[:], u)
		d.Write(n[:])
	}
	put(h.Count)
	put(math.Float64bits(h.Min))
	put(math.Float64bits(h.Max))
	for _, b := range h.Bounds {
		put(math.Float64bits(b))
	}
	put(uint64(len(h.Counts)))
	for _, c := range h.Counts {
		put(c)
	}
	if e := h.Exponential; e != nil {
		put(uint64(int64(e.Scale)))
		put(e.ZeroCount)
		put(math.Float64bits(e.ZeroThreshold))
		for _, side := range []struct {
			off    int32
			counts []uint64
		}{{e.PositiveOffset, e.PositiveCounts}, {e.NegativeOffset, e.NegativeCounts}} {
			put(uint64(int64(side.off)))
			put(uint64(len(side.counts)))
			for _, c := range side.counts {
				put(c)
			}
		}
	}
	return string(binary.LittleEndian.AppendUint64(nil, d.Sum64()))
}
