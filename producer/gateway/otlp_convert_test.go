package gateway

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/tributary/tributary/schemas"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ts(sec int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(t0.Add(time.Duration(sec) * time.Second))
}

// cumulativeSum is a request with one point of a monotonic cumulative sum.
func cumulativeSum(start, at pcommon.Timestamp, v float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "api")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("requests")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(at)
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr("route", "/a")
	return md
}

// send converts md as a request would, and commits its state when accepted.
func send(t *testing.T, c *cumulative, md pmetric.Metrics, accepted bool) []schemas.Metric {
	t.Helper()
	b := newOTLPBatch("acme", 1000)
	if err := b.convertMetrics(md, c); err != nil {
		t.Fatal(err)
	}
	if b.cum != nil {
		if accepted {
			c.commit(b.updates)
		}
		c.reqMu.Unlock()
	}
	return b.req.metrics
}

func values(ms []schemas.Metric) []float64 {
	var out []float64
	for _, m := range ms {
		out = append(out, m.Value)
	}
	return out
}

// Cumulative sums become increases: a stream started before the horizon begins with a baseline,
// one started after it counts whole; resets and restarts count the new value; re-sent points are
// skipped; a refused request leaves the state as it was; an eviction moves the horizon.
func TestCumulativeToIncreases(t *testing.T) {
	c := newCumulative(2)
	c.horizon = int64(ts(100)) // the process started at t0+100s
	c.now = func() time.Time { return t0.Add(500 * time.Second) }
	f := func(name string, md pmetric.Metrics, accepted bool, want []float64) {
		t.Helper()
		if got := values(send(t, c, md, accepted)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: stored %v, want %v", name, got, want)
		}
	}
	f("started before the horizon: baseline", cumulativeSum(ts(0), ts(110), 50), true, nil)
	f("increase", cumulativeSum(ts(0), ts(120), 57), true, []float64{7})
	f("refused request", cumulativeSum(ts(0), ts(130), 60), false, []float64{3})
	f("its retry counts the same", cumulativeSum(ts(0), ts(130), 60), true, []float64{3})
	f("re-sent point skipped", cumulativeSum(ts(0), ts(130), 60), true, nil)
	f("older point skipped", cumulativeSum(ts(0), ts(125), 58), true, nil)
	f("reset (lower value)", cumulativeSum(ts(0), ts(140), 4), true, []float64{4})
	f("restart (new start time)", cumulativeSum(ts(135), ts(150), 9), true, []float64{9})
	f("after the restart", cumulativeSum(ts(135), ts(160), 10), true, []float64{1})

	other := func(route string, start, at pcommon.Timestamp, v float64) pmetric.Metrics {
		md := cumulativeSum(start, at, v)
		md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Attributes().PutStr("route", route)
		return md
	}
	f("a stream started after the horizon counts whole", other("/b", ts(200), ts(210), 5), true, []float64{5})
	f("a third stream evicts the oldest, moving the horizon", other("/c", ts(300), ts(310), 6), true, []float64{6})
	if c.horizon != c.now().UnixNano() {
		t.Fatalf("horizon %d after an eviction", c.horizon)
	}
	f("the evicted stream begins with a baseline again", cumulativeSum(ts(135), ts(400), 20), true, nil)
	f("a stream started before the eviction: baseline", other("/d", ts(450), ts(460), 8), true, nil)
}

// A histogram or exponential histogram becomes one histogram point (its sum the value, its count,
// min, max and buckets the Histogram); a summary .count/.sum and a gauge per quantile.
func TestHistogramAndSummaryPoints(t *testing.T) {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	h := ms.AppendEmpty()
	h.SetName("latency")
	h.SetUnit("ms")
	hd := h.SetEmptyHistogram()
	hd.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := hd.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(1))
	dp.SetCount(4)
	dp.SetSum(31)
	dp.SetMin(1)
	dp.SetMax(20)
	dp.ExplicitBounds().FromRaw([]float64{5, 10})
	dp.BucketCounts().FromRaw([]uint64{2, 0, 2})
	e := ms.AppendEmpty()
	e.SetName("size")
	ed := e.SetEmptyExponentialHistogram()
	ed.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	edp := ed.DataPoints().AppendEmpty()
	edp.SetTimestamp(ts(1))
	edp.SetCount(3)
	edp.SetSum(12)
	edp.SetMax(8)
	edp.SetZeroCount(1)
	edp.Positive().SetOffset(2)
	edp.Positive().BucketCounts().FromRaw([]uint64{2}) // (4, 8] at scale 0
	s := ms.AppendEmpty()
	s.SetName("rpc")
	sdp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetStartTimestamp(ts(0))
	sdp.SetTimestamp(ts(1))
	sdp.SetCount(10)
	sdp.SetSum(55)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(9.5)

	c := newCumulative(10)
	c.horizon = 0 // every stream started after it: counted whole
	type row struct {
		name string
		agg  schemas.AggregationType
		v    float64
		unit string
		ex   any
		h    *schemas.Distribution
	}
	var got []row
	for _, m := range send(t, c, md, true) {
		got = append(got, row{m.Name, m.AggregationType, m.Value, m.Unit, m.Attributes[attrQuantile], m.Histogram})
	}
	want := []row{
		{"latency", schemas.Histogram, 31, "ms", nil, &schemas.Distribution{Count: 4, Min: 1, Max: 20, Bounds: []float64{5, 10}, Counts: []uint64{2, 0, 2}}},
		// No min sent: the lowest bucket's lower edge (the zero bucket, threshold 0) bounds it.
		{"size", schemas.Histogram, 12, "", nil, &schemas.Distribution{Count: 3, Min: 0, Max: 8,
			Exponential: &schemas.ExponentialBuckets{ZeroCount: 1, PositiveOffset: 2, PositiveCounts: []uint64{2}}}},
		{"rpc", schemas.Gauge, 9.5, "", 0.99, nil}, {"rpc.count", schemas.Counter, 10, "count", nil, nil}, {"rpc.sum", schemas.Counter, 55, "", nil, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("points\n%+v\nwant\n%+v", got, want)
	}
}

// Every OTLP attribute value type is carried; resource attributes join the record's, which win
// (the resource's value is kept under otel.resource.<key>); service.name and host.name become the
// source.
func TestAttributeValues(t *testing.T) {
	res := pcommon.NewResource()
	_ = res.Attributes().FromRaw(map[string]any{"service.name": "api", "host.name": "h1", "region": "eu", "k": "from resource"})
	scope := pcommon.NewInstrumentationScope()
	scope.SetName("lib")
	o := newOrigin("acme", res, scope)
	own := pcommon.NewMap()
	own.PutStr("k", "own")
	own.PutBool("b", true)
	own.PutInt("i", -7)
	own.PutDouble("d", 2.0)
	own.PutEmptyBytes("raw").FromRaw([]byte("hi"))
	own.PutEmpty("nothing")
	sl := own.PutEmptySlice("list")
	sl.AppendEmpty().SetStr("a")
	sl.AppendEmpty().SetEmptyMap().PutInt("n", 1)
	got := o.attributes(own, 0)
	want := map[string]any{"region": "eu", "otel.scope.name": "lib", "k": "own", "otel.resource.k": "from resource",
		"b": true, "i": int64(-7), "d": 2.0, "raw": "aGk=", "nothing": nil, "list": []any{"a", map[string]any{"n": int64(1)}}}
	if !reflect.DeepEqual(got, want) || o.src != (schemas.Source{Tenant: "acme", Service: "api", Host: "h1"}) {
		t.Fatalf("attributes %v source %+v", got, o.src)
	}
	if _, err := schemas.NormalizeAttributes(got); err != nil {
		t.Fatal(err)
	}
}
