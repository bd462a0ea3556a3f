package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
)

// sampleHistograms are histogram metrics of each shape: explicit buckets, exponential buckets (both
// signs and a zero bucket) and no buckets.
func sampleHistograms() []Metric {
	explicit, exponential, none := sampleMetric(), sampleMetric(), sampleMetric()
	for _, m := range []*Metric{&explicit, &exponential, &none} {
		m.Name, m.Unit, m.AggregationType = "latency", "ms", Histogram
	}
	explicit.Value = 274.75
	explicit.Histogram = &Distribution{Count: 7, Min: 0.05, Max: 250, Bounds: []float64{0, 5, 10, 25, 250}, Counts: []uint64{0, 4, 1, 1, 1, 0}}
	exponential.Value = -1.5
	exponential.Histogram = &Distribution{Count: 6, Min: -3, Max: 2.5, Exponential: &ExponentialBuckets{
		Scale: 1, ZeroCount: 1, ZeroThreshold: 1e-9, PositiveOffset: -2, PositiveCounts: []uint64{1, 0, 2},
		NegativeOffset: 3, NegativeCounts: []uint64{2}}}
	none.Value = 10
	none.Histogram = &Distribution{Count: 4, Min: 1, Max: 4}
	return []Metric{explicit, exponential, none}
}

func TestHistogramRoundTrip(t *testing.T) {
	c := newCodec(t)
	for _, in := range sampleHistograms() {
		if err := in.Validate(); err != nil {
			t.Fatalf("sample %+v: %v", in.Histogram, err)
		}
		b, err := c.AppendMetric(nil, &in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:soeHeader], c.metricH[:]) {
			t.Errorf("a histogram is written with header %x, want the current schema's %x", b[:soeHeader], c.metricH)
		}
		out, err := c.DecodeMetric(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip changed the histogram:\n in: %#v %#v\nout: %#v %#v", in, in.Histogram, out, out.Histogram)
		}
	}
}

// A metric of one value is written with metric.v1.avsc, exactly as before histograms existed: a
// reader that knows only v1 (Java's BinaryMessageDecoder given metric.v1.avsc, a deployed consumer
// not yet upgraded) reads it; and the current codec reads v1 data.
func TestPlainMetricsStayOnV1(t *testing.T) {
	c := newCodec(t)
	m := sampleMetric()
	b, err := c.AppendMetric(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(MetricV1SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint64(b[2:soeHeader]); got != fp {
		t.Fatalf("plain metric written with fingerprint %x, want v1's %x", got, fp)
	}
	var old wireMetric
	if err := c.api.Unmarshal(avro.MustParse(MetricV1SchemaJSON), b[soeHeader:], &old); err != nil || old.Name != m.Name || old.Value != m.Value {
		t.Fatalf("a v1 reader got %+v, %v", old, err)
	}
	// v1 readers resolve current data too, once they have the writer schema: the field is skipped.
	if err := avro.NewSchemaCompatibility().Compatible(avro.MustParse(MetricV1SchemaJSON), c.metric); err != nil {
		t.Fatalf("v1 reader cannot read current data: %v", err)
	}
	h := sampleHistograms()[0]
	hb, _ := c.AppendMetric(nil, &h)
	type v1Metric struct {
		Name  string  `avro:"name"`
		Value float64 `avro:"value"`
		Host  string  `avro:"host"`
	}
	var v1 v1Metric
	if err := c.api.Unmarshal(c.metric, hb[soeHeader:], &v1); err != nil || v1.Name != "latency" || v1.Value != 274.75 || v1.Host != "worker-01" {
		t.Fatalf("v1 reader of current data got %+v, %v", v1, err)
	}
	// And the current codec reads v1 data (AddWriterSchema's rules hold for the new field).
	fresh := newCodec(t)
	if err := fresh.AddWriterSchema(KindMetric, MetricV1SchemaJSON); err != nil {
		t.Fatalf("v1 is not a valid writer schema for the current reader: %v", err)
	}
}

// The golden histogram pins the current metric schema's bytes (rewrite with -update when a change is
// intended and versioned).
func TestGoldenHistogram(t *testing.T) {
	c := newCodec(t)
	m := sampleHistograms()[1]
	m.Attributes = nil // map order would make the bytes vary
	b, err := c.AppendMetric(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "metric_histogram.golden.bin")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := mustReadFile(t, path)
	if !bytes.Equal(want, b) {
		t.Errorf("histogram bytes changed:\n%x\ngolden:\n%x", b, want)
	}
	got, err := c.DecodeMetric(want)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("golden histogram decodes to %#v, %v", got, err)
	}
}

func TestHistogramValidate(t *testing.T) {
	f := func(name string, h Distribution, agg AggregationType, ok bool) {
		t.Helper()
		m := sampleMetric()
		m.AggregationType, m.Histogram = agg, &h
		err := m.Validate()
		if ok && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !ok && !errors.Is(err, ErrBadHistogram) {
			t.Errorf("%s: got %v, want ErrBadHistogram", name, err)
		}
	}
	exp := func(e ExponentialBuckets) *ExponentialBuckets { return &e }
	good := Distribution{Count: 3, Min: 1, Max: 9, Bounds: []float64{2, 5}, Counts: []uint64{1, 1, 1}}
	f("explicit", good, Histogram, true)
	f("on a gauge", good, Gauge, false)
	f("no buckets", Distribution{Count: 2, Min: 1, Max: 1}, Histogram, true)
	f("count 0", Distribution{Min: 1, Max: 1}, Histogram, false)
	f("min above max", Distribution{Count: 1, Min: 2, Max: 1}, Histogram, false)
	f("infinite max", Distribution{Count: 1, Min: 2, Max: math.Inf(1)}, Histogram, false)
	f("NaN min", Distribution{Count: 1, Min: math.NaN(), Max: 1}, Histogram, false)
	f("counts do not add up", Distribution{Count: 4, Min: 1, Max: 9, Bounds: []float64{2, 5}, Counts: []uint64{1, 1, 1}}, Histogram, false)
	f("one count too few", Distribution{Count: 2, Min: 1, Max: 9, Bounds: []float64{2, 5}, Counts: []uint64{1, 1}}, Histogram, false)
	f("bounds out of order", Distribution{Count: 3, Min: 1, Max: 9, Bounds: []float64{5, 2}, Counts: []uint64{1, 1, 1}}, Histogram, false)
	f("repeated bound", Distribution{Count: 3, Min: 1, Max: 9, Bounds: []float64{2, 2}, Counts: []uint64{1, 1, 1}}, Histogram, false)
	f("infinite bound", Distribution{Count: 2, Min: 1, Max: 9, Bounds: []float64{math.Inf(1)}, Counts: []uint64{1, 1}}, Histogram, false)
	f("too many buckets", Distribution{Count: 1, Min: 1, Max: 1, Bounds: make([]float64, MaxHistogramBuckets), Counts: make([]uint64, MaxHistogramBuckets+1)}, Histogram, false)
	f("counts overflow", Distribution{Count: 1, Min: 1, Max: 9, Bounds: []float64{2}, Counts: []uint64{math.MaxUint64, 2}}, Histogram, false)
	f("exponential", Distribution{Count: 3, Min: 0, Max: 9, Exponential: exp(ExponentialBuckets{Scale: 3, ZeroCount: 1, PositiveCounts: []uint64{2}})}, Histogram, true)
	f("exponential and explicit", Distribution{Count: 3, Min: 1, Max: 9, Bounds: []float64{2, 5}, Counts: []uint64{1, 1, 1},
		Exponential: exp(ExponentialBuckets{PositiveCounts: []uint64{3}})}, Histogram, false)
	f("scale too fine", Distribution{Count: 1, Min: 1, Max: 1, Exponential: exp(ExponentialBuckets{Scale: 21, ZeroCount: 1})}, Histogram, false)
	f("scale too coarse", Distribution{Count: 1, Min: 1, Max: 1, Exponential: exp(ExponentialBuckets{Scale: -11, ZeroCount: 1})}, Histogram, false)
	f("negative zero threshold", Distribution{Count: 1, Min: 0, Max: 0, Exponential: exp(ExponentialBuckets{ZeroThreshold: -1, ZeroCount: 1})}, Histogram, false)
	f("exponential counts do not add up", Distribution{Count: 5, Min: 1, Max: 9, Exponential: exp(ExponentialBuckets{PositiveCounts: []uint64{2}, NegativeCounts: []uint64{2}})}, Histogram, false)
	f("offset past int32", Distribution{Count: 2, Min: 1, Max: 9, Exponential: exp(ExponentialBuckets{PositiveOffset: math.MaxInt32, PositiveCounts: []uint64{1, 1}})}, Histogram, false)
}

// A negative count on the wire (beyond int64 in Go) is malformed, not a huge count.
func TestHistogramNegativeCountIsMalformed(t *testing.T) {
	c := newCodec(t)
	m := sampleHistograms()[0]
	w := wireMetric{MetricID: m.MetricID, Name: m.Name, AggregationType: "histogram", Timestamp: m.Timestamp,
		Attributes: map[string]attrValue{}, Histogram: &wireHistogram{Count: 1, Bounds: []float64{}, Counts: []int64{-1}}}
	b, err := c.append(nil, c.metricH[:], c.metric, &w, "metric")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DecodeMetric(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

func TestHistogramBuckets(t *testing.T) {
	type bucket struct {
		lo, hi float64
		n      uint64
	}
	collect := func(h *Distribution) []bucket {
		var out []bucket
		h.Buckets(func(lo, hi float64, n uint64) bool {
			out = append(out, bucket{lo, hi, n})
			return true
		})
		return out
	}
	hs := sampleHistograms()
	inf := math.Inf(1)
	if got, want := collect(hs[0].Histogram), []bucket{{0, 5, 4}, {5, 10, 1}, {10, 25, 1}, {25, 250, 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("explicit buckets %v, want %v", got, want)
	}
	// Scale 1: base sqrt(2). Negative index 3 holds [-2^2, -2^1.5); positive index -2 holds (2^-1, 2^-0.5].
	s2 := math.Sqrt2
	want := []bucket{{-4, -2 * s2, 2}, {-1e-9, 1e-9, 1}, {0.5, 1 / s2, 1}, {1, s2, 2}}
	got := collect(hs[1].Histogram)
	if len(got) != len(want) {
		t.Fatalf("exponential buckets %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i].lo-want[i].lo) > 1e-12 || math.Abs(got[i].hi-want[i].hi) > 1e-12 || got[i].n != want[i].n {
			t.Errorf("exponential bucket %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got := collect(hs[2].Histogram); !reflect.DeepEqual(got, []bucket{{1, 4, 4}}) {
		t.Errorf("no buckets: %v", got)
	}
	open := &Distribution{Count: 3, Bounds: []float64{0, 10}, Counts: []uint64{1, 0, 2}}
	if got := collect(open); !reflect.DeepEqual(got, []bucket{{-inf, 0, 1}, {10, inf, 2}}) {
		t.Errorf("open buckets: %v", got)
	}
	if lowest, highest, ok := open.OuterBuckets(); !ok || lowest != [2]float64{-inf, 0} || highest != [2]float64{10, inf} {
		t.Errorf("OuterBuckets of open buckets = %v, %v, %v", lowest, highest, ok)
	}
	if lowest, highest, ok := hs[0].Histogram.OuterBuckets(); !ok || lowest != [2]float64{0, 5} || highest != [2]float64{25, 250} {
		t.Errorf("OuterBuckets = %v, %v, %v", lowest, highest, ok)
	}
	if _, _, ok := hs[2].Histogram.OuterBuckets(); ok {
		t.Error("a histogram without buckets has outer buckets")
	}
}
