package rollups

import (
	"maps"
	"math"
	"slices"
)

// RelativeAccuracy is the sketch's guarantee: a quantile it returns is within 1% of the true value
// at that rank (DDSketch's relative-error guarantee, for values of magnitude >= MinIndexable).
const RelativeAccuracy = 0.01

// MinIndexable is the smallest magnitude the sketch tells apart from zero; smaller values count as
// zero.
const MinIndexable = 1e-9

// Gamma is the ratio of one bucket's bound to the next: bucket k holds the magnitudes in
// (Gamma^(k-1), Gamma^k].
const Gamma = (1 + RelativeAccuracy) / (1 - RelativeAccuracy)

var logGamma = math.Log(Gamma)

// Sketch is a mergeable quantile sketch with logarithmic buckets (DDSketch): a value v > 0 falls in
// bucket ceil(log_gamma(v)), negatives likewise by magnitude, and near-zero values in a zero count.
// Merging adds bucket counts, so sketches of partitions, windows and rows merge exactly — in Go
// with Merge, in SQL with sumMap over the key and count arrays. The zero value is empty and ready.
type Sketch struct {
	Pos, Neg map[int32]uint64
	Zero     uint64
}

// BucketKey returns the bucket of magnitude m (m >= MinIndexable).
func BucketKey(m float64) int32 { return int32(math.Ceil(math.Log(m) / logGamma)) }

// BucketValue is the value a bucket stands for: within RelativeAccuracy of every magnitude in it.
func BucketValue(k int32) float64 { return 2 * math.Pow(Gamma, float64(k)) / (Gamma + 1) }

// Add counts v once.
func (s *Sketch) Add(v float64) { s.AddN(v, 1) }

// AddN counts v n times.
func (s *Sketch) AddN(v float64, n uint64) {
	switch {
	case v >= MinIndexable:
		if s.Pos == nil {
			s.Pos = make(map[int32]uint64)
		}
		s.Pos[BucketKey(v)] += n
	case v <= -MinIndexable:
		if s.Neg == nil {
			s.Neg = make(map[int32]uint64)
		}
		s.Neg[BucketKey(-v)] += n
	default:
		s.Zero += n
	}
}

// Merge adds o's counts to s.
func (s *Sketch) Merge(o *Sketch) {
	for k, c := range o.Pos {
		if s.Pos == nil {
			s.Pos = make(map[int32]uint64, len(o.Pos))
		}
		s.Pos[k] += c
	}
	for k, c := range o.Neg {
		if s.Neg == nil {
			s.Neg = make(map[int32]uint64, len(o.Neg))
		}
		s.Neg[k] += c
	}
	s.Zero += o.Zero
}

// Count is the number of values added.
func (s *Sketch) Count() uint64 {
	n := s.Zero
	for _, c := range s.Pos {
		n += c
	}
	for _, c := range s.Neg {
		n += c
	}
	return n
}

// Quantile returns the value at quantile q (0..1) within RelativeAccuracy, ranked as
// QuantileOfArrays ranks; NaN when empty.
func (s *Sketch) Quantile(q float64) float64 {
	pk, pc := Arrays(s.Pos)
	nk, nc := Arrays(s.Neg)
	return QuantileOfArrays(pk, pc, nk, nc, s.Zero, q)
}

// Arrays returns a side's buckets as sorted parallel arrays, the stored form (ClickHouse's
// sumMap(keys, counts) merges rows of them).
func Arrays(m map[int32]uint64) (keys []int32, counts []uint64) {
	keys = slices.Sorted(maps.Keys(m))
	counts = make([]uint64, len(keys))
	for i, k := range keys {
		counts[i] = m[k]
	}
	return keys, counts
}

// FromArrays builds a side from parallel arrays, adding counts of repeated keys.
func FromArrays(keys []int32, counts []uint64) map[int32]uint64 {
	if len(keys) == 0 {
		return nil
	}
	m := make(map[int32]uint64, len(keys))
	for i, k := range keys {
		if i < len(counts) {
			m[k] += counts[i]
		}
	}
	return m
}

// QuantileOfArrays returns the value at quantile q (0..1) of the sketch whose sides are given in
// their stored form (sorted parallel arrays with unique keys, as Arrays and ClickHouse's sumMap
// return them), within RelativeAccuracy; NaN when empty or q is outside 0..1. It is the value
// (BucketValue) of the bucket holding the value of rank min(floor(q*n), n-1) in sorted order, as
// ClickHouse's quantileExact ranks: negative buckets most negative first, then the zero count,
// then the positive buckets.
//
// This is the one definition of the rule: Sketch.Quantile calls it, the consumer stores its
// percentiles with each window, and the query service's SQL for merged sketches
// (query.sketchQuantileSQL) spells out the same rank and bucket value from Gamma, held to the
// same answers by a test. It builds no maps.
func QuantileOfArrays(posKeys []int32, posCounts []uint64, negKeys []int32, negCounts []uint64, zero uint64, q float64) float64 {
	n := zero
	for _, c := range posCounts[:min(len(posKeys), len(posCounts))] {
		n += c
	}
	for _, c := range negCounts[:min(len(negKeys), len(negCounts))] {
		n += c
	}
	if n == 0 || q < 0 || q > 1 || math.IsNaN(q) {
		return math.NaN()
	}
	rank := min(uint64(q*float64(n)), n-1)
	var seen uint64
	for i := min(len(negKeys), len(negCounts)) - 1; i >= 0; i-- { // most negative first
		if seen += negCounts[i]; seen > rank {
			return -BucketValue(negKeys[i])
		}
	}
	if seen += zero; seen > rank {
		return 0
	}
	for i := range min(len(posKeys), len(posCounts)) {
		if seen += posCounts[i]; seen > rank {
			return BucketValue(posKeys[i])
		}
	}
	return math.NaN()
}
