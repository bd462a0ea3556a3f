package gateway

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/tributary/tributary/schemas"
)

// histogramRequest is a request with one explicit histogram point; min and max NaN are not sent.
func histogramRequest(temporality pmetric.AggregationTemporality, start, at pcommon.Timestamp, count uint64, sum, min, max float64,
	bounds []float64, counts []uint64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("latency")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(temporality)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(at)
	dp.SetCount(count)
	if !math.IsNaN(sum) {
		dp.SetSum(sum)
	}
	if !math.IsNaN(min) {
		dp.SetMin(min)
	}
	if !math.IsNaN(max) {
		dp.SetMax(max)
	}
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(counts)
	return md
}

// expRequest is a request with one cumulative exponential histogram point.
func expRequest(at pcommon.Timestamp, scale int32, count uint64, sum, min, max float64, zero uint64, posOff int32, pos []uint64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("size")
	h := m.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(0))
	dp.SetTimestamp(at)
	dp.SetScale(scale)
	dp.SetCount(count)
	dp.SetSum(sum)
	dp.SetMin(min)
	dp.SetMax(max)
	dp.SetZeroCount(zero)
	dp.Positive().SetOffset(posOff)
	dp.Positive().BucketCounts().FromRaw(pos)
	return md
}

func histograms(t *testing.T, c *cumulative, md pmetric.Metrics) []*schemas.Distribution {
	t.Helper()
	var out []*schemas.Distribution
	for _, m := range send(t, c, md, true) {
		if m.AggregationType != schemas.Histogram || m.Histogram == nil {
			t.Fatalf("%s stored as %s with %v", m.Name, m.AggregationType, m.Histogram)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("stored point does not validate: %v", err)
		}
		out = append(out, m.Histogram)
	}
	return out
}

// A cumulative histogram becomes the increase of every part since the stream's previous point:
// count, sum and each bucket. Its min and max are exact when they moved since the previous point
// (the value that moved them was recorded since); otherwise they are bounds, as tight as the
// buckets and the stream's extremes make them.
func TestCumulativeHistogramIncreases(t *testing.T) {
	c := newCumulative(10)
	c.horizon = 0
	cum := pmetric.AggregationTemporalityCumulative
	bounds := []float64{5, 10, 25}
	f := func(name string, md pmetric.Metrics, want []*schemas.Distribution, wantSum []float64) {
		t.Helper()
		ms := send(t, c, md, true)
		var got []*schemas.Distribution
		var sums []float64
		for _, m := range ms {
			got, sums = append(got, m.Histogram), append(sums, m.Value)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(sums, wantSum) {
			t.Errorf("%s: stored %+v (sums %v), want %+v (sums %v)", name, got, sums, want, wantSum)
		}
	}
	f("first point, started after the horizon: whole", histogramRequest(cum, ts(0), ts(10), 3, 14, 2, 9, bounds, []uint64{1, 2, 0, 0}),
		[]*schemas.Distribution{{Count: 3, Min: 2, Max: 9, Bounds: bounds, Counts: []uint64{1, 2, 0, 0}}}, []float64{14})
	f("max moved: exact; min did not: the lowest non-empty bucket's edge 10", histogramRequest(cum, ts(0), ts(20), 5, 44, 2, 18, bounds, []uint64{1, 2, 2, 0}),
		[]*schemas.Distribution{{Count: 2, Min: 10, Max: 18, Bounds: bounds, Counts: []uint64{0, 0, 2, 0}}}, []float64{30})
	f("min moved: exact; max did not: the highest bucket's edge", histogramRequest(cum, ts(0), ts(30), 6, 45, 1, 18, bounds, []uint64{2, 2, 2, 0}),
		[]*schemas.Distribution{{Count: 1, Min: 1, Max: 5, Bounds: bounds, Counts: []uint64{1, 0, 0, 0}}}, []float64{1})
	f("max moved into the open last bucket: exact; min did not: that bucket's edge 25", histogramRequest(cum, ts(0), ts(40), 7, 75, 1, 40, bounds, []uint64{2, 2, 2, 1}),
		[]*schemas.Distribution{{Count: 1, Min: 25, Max: 40, Bounds: bounds, Counts: []uint64{0, 0, 0, 1}}}, []float64{30})
	f("no values since: nothing stored", histogramRequest(cum, ts(0), ts(50), 7, 75, 1, 40, bounds, []uint64{2, 2, 2, 1}), nil, nil)
	f("a bucket went down: the sender restarted, whole", histogramRequest(cum, ts(0), ts(60), 8, 30, 3, 12, bounds, []uint64{2, 5, 1, 0}),
		[]*schemas.Distribution{{Count: 8, Min: 3, Max: 12, Bounds: bounds, Counts: []uint64{2, 5, 1, 0}}}, []float64{30})
}

// Without min, max or sum (a Prometheus histogram, or one of negative values), the outer buckets
// bound the values (an open bucket's finite edge standing in), and the sum is estimated from the
// buckets' values.
func TestHistogramWithoutMinMaxOrSum(t *testing.T) {
	c := newCumulative(10)
	delta := pmetric.AggregationTemporalityDelta
	nan := math.NaN()
	hs := histograms(t, c, histogramRequest(delta, 0, ts(1), 4, nan, nan, nan, []float64{0, 5, 10}, []uint64{1, 2, 0, 1}))
	want := &schemas.Distribution{Count: 4, Min: 0, Max: 10, Bounds: []float64{0, 5, 10}, Counts: []uint64{1, 2, 0, 1}}
	if len(hs) != 1 || !reflect.DeepEqual(hs[0], want) {
		t.Fatalf("stored %+v, want %+v", hs, want)
	}
	ms := send(t, c, histogramRequest(delta, 0, ts(2), 4, nan, -3, 7, []float64{0, 5, 10}, []uint64{1, 2, 1, 0}), true)
	// (-inf, 0] narrowed to [-3, 0]: -1.5; (0, 5]: 2.5 twice; (5, 10] narrowed to (5, 7]: 2/(1/5+1/7).
	if wantSum := -1.5 + 5 + 2/(1.0/5+1.0/7); len(ms) != 1 || math.Abs(ms[0].Value-wantSum) > 1e-12 {
		t.Fatalf("estimated sum %v, want %v", ms[0].Value, wantSum)
	}
	// Nothing that bounds the values at all: refused, naming why.
	b := newOTLPBatch("acme", 1000)
	if err := b.convertMetrics(histogramRequest(delta, 0, ts(3), 2, nan, nan, nan, nil, nil), c); err != nil {
		t.Fatal(err)
	}
	if b.rejected != 1 || len(b.req.metrics) != 0 {
		t.Fatalf("rejected %d, stored %d (%s)", b.rejected, len(b.req.metrics), b.problem)
	}
}

// A cumulative exponential histogram whose sender downscaled (as OTel SDKs do when the range
// grows) is turned into increases at the coarser scale: the earlier buckets are merged into it.
func TestCumulativeExponentialDownscale(t *testing.T) {
	c := newCumulative(10)
	c.horizon = 0
	// Scale 1: buckets (2^(i/2), 2^((i+1)/2)]; offset 2 holds (2, 2.83], 3 (2.83, 4], 4 (4, 5.66].
	first := histograms(t, c, expRequest(ts(10), 1, 3, 10.5, 2.5, 5, 0, 2, []uint64{1, 1, 1}))
	if len(first) != 1 || first[0].Exponential.Scale != 1 || first[0].Count != 3 {
		t.Fatalf("first point %+v", first)
	}
	// Then at scale 0, after 100 (bucket 6: (64, 128]) and 3.5 (bucket 1: (2, 4]) were recorded:
	// bucket 1 holds the two at scale 1 offsets 2 and 3, plus 3.5; bucket 2 the one at offset 4.
	// The min did not move: 2.5, the stream's, is a tighter bound than the bucket's edge 2.
	next := histograms(t, c, expRequest(ts(20), 0, 5, 114, 2.5, 100, 0, 1, []uint64{3, 1, 0, 0, 0, 1}))
	want := &schemas.Distribution{Count: 2, Min: 2.5, Max: 100, Exponential: &schemas.ExponentialBuckets{
		Scale: 0, PositiveOffset: 1, PositiveCounts: []uint64{1, 0, 0, 0, 0, 1}}}
	if len(next) != 1 || !reflect.DeepEqual(next[0], want) {
		t.Fatalf("increase %+v %+v, want %+v %+v", next[0], next[0].Exponential, want, want.Exponential)
	}
	// Ranges too far apart to align within the bucket limit: taken as a restart, counted whole.
	far := histograms(t, c, expRequest(ts(30), 0, 6, 0, 0, 0, 0, -5000, []uint64{6}))
	if len(far) != 1 || far[0].Count != 6 {
		t.Fatalf("far point %+v", far)
	}
}

// Two histogram points of one stream and time with the same sum but other buckets get other ids;
// the same point sent again gets the same id.
func TestHistogramIDs(t *testing.T) {
	c := newCumulative(10)
	delta := pmetric.AggregationTemporalityDelta
	a := send(t, c, histogramRequest(delta, 0, ts(1), 2, 10, 4, 6, []float64{5}, []uint64{1, 1}), true)
	b := send(t, c, histogramRequest(delta, 0, ts(1), 2, 10, 1, 9, []float64{5}, []uint64{1, 1}), true)
	again := send(t, c, histogramRequest(delta, 0, ts(1), 2, 10, 4, 6, []float64{5}, []uint64{1, 1}), true)
	if a[0].MetricID == b[0].MetricID || a[0].MetricID != again[0].MetricID {
		t.Fatalf("ids %s %s %s", a[0].MetricID, b[0].MetricID, again[0].MetricID)
	}
}

// Whatever histograms a request holds, converting it (twice, so that cumulative points are
// aligned with the state the first left) does not panic, and every histogram point it makes holds
// at least one value and has its extremes (the producer's validation judges the rest).
func FuzzConvertHistograms(f *testing.F) {
	seed := func(md pmetric.Metrics) {
		b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	nan := math.NaN()
	seed(histogramRequest(pmetric.AggregationTemporalityCumulative, ts(0), ts(10), 3, 14, 2, 9, []float64{5, 10}, []uint64{1, 2, 0}))
	seed(histogramRequest(pmetric.AggregationTemporalityDelta, 0, ts(1), 4, nan, nan, nan, []float64{0, 5, 10}, []uint64{1, 2, 0, 1}))
	seed(expRequest(ts(10), 1, 3, 10.5, 2.5, 5, 0, 2, []uint64{1, 1, 1}))
	seed(expRequest(ts(20), 0, 5, 114, 2.5, 100, 0, 1, []uint64{3, 1, 0, 0, 0, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(data); err != nil {
			return
		}
		c := newCumulative(100)
		c.horizon = 0
		for range 2 {
			b := newOTLPBatch("acme", 100000)
			if err := b.convertMetrics(req.Metrics(), c); err != nil && !errors.Is(err, errTooMany) {
				t.Fatal(err)
			}
			if b.cum != nil {
				c.commit(b.updates)
				c.reqMu.Unlock()
			}
			for _, m := range b.req.metrics {
				if m.Histogram == nil {
					continue
				}
				if h := m.Histogram; h.Count == 0 || math.IsNaN(h.Min) || math.IsNaN(h.Max) {
					t.Fatalf("a histogram point without values or extremes: %+v", h)
				}
			}
		}
	})
}
