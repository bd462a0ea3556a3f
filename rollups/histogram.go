package rollups

import "math"

// BucketValueOf is the value that stands for every value of a histogram bucket (an OTLP bucket,
// edges lo and hi, in a histogram whose values lie in [min, max]) when the bucket's count is
// added to a Sketch.
//
// The edges are first narrowed to [min, max]. For a bucket on one side of zero the value is the
// harmonic mean 2·lo·hi/(lo+hi): the one value whose relative distance to the farthest value of
// the bucket is smallest, ε = (hi−lo)/(hi+lo) of magnitudes (the sketch's own buckets use the same
// rule). A quantile read from the sketch is then within ε + RelativeAccuracy + ε·RelativeAccuracy
// of the true one, ε of the buckets holding the values at its rank, because the bucket counts,
// and so the ranks, are exact. For an exponential bucket of scale s (base b = 2^(2^−s)),
// ε = (b−1)/(b+1): 1/3 at scale 0, 4.3% at 3, 1.1% at 5, 0.27% at 7. A bucket
// that contains zero or touches it has no relative bound: its value is the midpoint, within half
// its width of every value in it. A bucket narrowed to one point (min = max, or a bucket at the
// edge of [min, max] of width zero) is exact.
func BucketValueOf(lo, hi, min, max float64) float64 {
	lo, hi = math.Max(lo, min), math.Min(hi, max)
	switch {
	case lo >= hi: // one point, or edges that disagree with min and max (take the nearer)
		return hi
	case lo > 0 || hi < 0:
		return 2 / (1/lo + 1/hi) // the harmonic mean, without overflowing lo·hi
	}
	return lo/2 + hi/2
}

// BucketError is ε of BucketValueOf: the largest relative distance between the value standing for
// the bucket [lo, hi] (narrowed to [min, max]) and a value in it; +Inf when the bucket contains or
// touches zero.
func BucketError(lo, hi, min, max float64) float64 {
	lo, hi = math.Max(lo, min), math.Min(hi, max)
	switch {
	case lo >= hi:
		return 0
	case lo > 0:
		return (hi - lo) / (hi + lo)
	case hi < 0:
		return (lo - hi) / (lo + hi)
	}
	return math.Inf(1)
}
