package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hambaEvent and hambaMetric are how the codec encoded events and metrics before encode.go:
// hamba/avro's Marshal of the wire shape. encode.go must write the same bytes.
func hambaEvent(t testing.TB, c *Codec, e *Event) []byte {
	t.Helper()
	attrs, err := toWireAttrs(e.Attributes)
	if err != nil {
		t.Fatal(err)
	}
	w := wireEvent{EventID: e.EventID, TraceID: optional(e.TraceID), SpanID: optional(e.SpanID), Type: e.Type, Name: e.Name,
		Timestamp: e.Timestamp.UTC(), Attributes: attrs, Tenant: e.Tenant, Service: e.Service, Host: e.Host}
	b, err := c.append(nil, c.eventH[:], c.event, &w, "event")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hambaMetric(t testing.TB, c *Codec, m *Metric) []byte {
	t.Helper()
	attrs, err := toWireAttrs(m.Attributes)
	if err != nil {
		t.Fatal(err)
	}
	w := wireMetric{MetricID: m.MetricID, TraceID: optional(m.TraceID), Name: m.Name, Value: m.Value, Unit: m.Unit,
		AggregationType: string(m.AggregationType), Timestamp: m.Timestamp.UTC(), Attributes: attrs,
		Tenant: m.Tenant, Service: m.Service, Host: m.Host, Histogram: toWireHistogram(m.Histogram)}
	header, schema := c.metricH[:], c.metric
	if w.Histogram == nil {
		header, schema = c.metric1H[:], c.metric1
	}
	b, err := c.append(nil, header, schema, &w, "metric")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func toWireHistogram(h *Distribution) *wireHistogram {
	if h == nil {
		return nil
	}
	w := &wireHistogram{Count: int64(h.Count), Min: h.Min, Max: h.Max, Bounds: h.Bounds, Counts: toSigned(h.Counts)}
	if w.Bounds == nil {
		w.Bounds = []float64{}
	}
	if e := h.Exponential; e != nil {
		w.Exponential = &wireExpHistogram{Scale: e.Scale, ZeroCount: int64(e.ZeroCount), ZeroThreshold: e.ZeroThreshold,
			PositiveOffset: e.PositiveOffset, PositiveCounts: toSigned(e.PositiveCounts),
			NegativeOffset: e.NegativeOffset, NegativeCounts: toSigned(e.NegativeCounts)}
	}
	return w
}

// seq is n values made by f: lists and histogram arrays longer than a block.
func seq[T any](n int, f func(int) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// Records whose maps hold at most one key at every level encode to exactly hamba/avro's bytes,
// whatever the values: every attribute type, nesting, lists of more than one block, the extremes
// of long and double, timestamps before 1970 and with nanoseconds, histograms of both kinds.
func TestEncodeWritesHambaAvroBytes(t *testing.T) {
	c := newCodec(t)
	long := seq(250, func(i int) any { return int64(i - 125) })
	values := []any{nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), 0.0, math.Copysign(0, -1),
		math.MaxFloat64, math.SmallestNonzeroFloat64, -2.5, "", "ünïcødé ✓", strings.Repeat("x", 300), []any{}, map[string]any{},
		long, []any{"a", int64(1), 2.5, nil, true, []any{map[string]any{"k": []any{false}}}},
		map[string]any{"outer": map[string]any{"inner": []any{int64(7)}}}}
	times := []time.Time{time.Date(2025, 1, 15, 10, 0, 2, 123456789, time.UTC), time.Unix(-1, 500), time.Unix(-86400*365, 999_999_999),
		time.Unix(0, 0), time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))}
	hists := []*Distribution{nil,
		{Count: 3, Min: 0.1, Max: 9, Bounds: []float64{1, 5}, Counts: []uint64{1, 1, 1}},
		{Count: 0, Min: 0, Max: 0},
		{Count: 1000, Min: -1, Max: 1e9, Bounds: seq(250, func(i int) float64 { return float64(i) }), Counts: seq(251, func(i int) uint64 { return uint64(i) })},
		{Count: 12, Min: 0, Max: 8, Exponential: &ExponentialBuckets{Scale: -3, ZeroCount: 2, ZeroThreshold: 1e-9, PositiveOffset: -5,
			PositiveCounts: seq(150, func(i int) uint64 { return uint64(i % 3) }), NegativeOffset: 2}},
		{Count: 1, Min: 1, Max: 1, Exponential: &ExponentialBuckets{Scale: 20, NegativeOffset: math.MinInt32, NegativeCounts: []uint64{1}}}}
	floats := []float64{0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -2.5, 1e-300}
	n := 0
	for i, v := range values {
		for j, ts := range times {
			e := sampleEvent()
			e.Timestamp, e.Attributes = ts, map[string]any{fmt.Sprintf("key%d", i): v}
			if j%2 == 1 {
				e.TraceID, e.SpanID, e.Tenant = "", "", ""
			}
			if j == 2 {
				e.Attributes = nil
			}
			got, err := c.AppendEvent(nil, &e)
			if err != nil {
				t.Fatal(err)
			}
			if want := hambaEvent(t, c, &e); !bytes.Equal(got, want) {
				t.Fatalf("event with attribute %#v at %v:\n got %x\nwant %x", v, ts, got, want)
			}
			m := sampleMetric()
			m.Timestamp, m.Attributes, m.Value = ts, e.Attributes, floats[(i+j)%len(floats)]
			m.AggregationType = []AggregationType{Counter, Gauge, Histogram}[(i+j)%3]
			m.Histogram = hists[(i+j)%len(hists)]
			if j%2 == 1 {
				m.TraceID, m.Unit = "", ""
			}
			got, err = c.AppendMetric(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			if want := hambaMetric(t, c, &m); !bytes.Equal(got, want) {
				t.Fatalf("metric with attribute %#v, histogram %+v at %v:\n got %x\nwant %x", v, m.Histogram, ts, got, want)
			}
			n += 2
		}
	}
	t.Logf("%d records, the same bytes as hamba/avro's", n)
}

// randomAttrs is a map of random values nested up to depth levels: up to 4 keys, or at the top
// sometimes more than a block (101-120).
func randomAttrs(r *rand.Rand, depth int, top bool) map[string]any {
	n := r.IntN(5)
	if top && r.IntN(10) == 0 {
		n = 101 + r.IntN(20)
	}
	out := make(map[string]any, n)
	for i := range n {
		out[fmt.Sprintf("k%d_%d", i, r.IntN(1000))] = randomValue(r, depth)
	}
	return out
}

func randomValue(r *rand.Rand, depth int) any {
	k := r.IntN(9)
	if depth <= 1 {
		k = r.IntN(7)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return int64(r.Uint64())
	case 3:
		return r.NormFloat64() * 1e6
	case 4, 5:
		return strings.Repeat("é", r.IntN(40))
	case 6:
		return fmt.Sprint(r.Uint32())
	case 7:
		list := make([]any, r.IntN(4))
		if r.IntN(10) == 0 && depth > MaxAttributeDepth-3 {
			list = make([]any, 100+r.IntN(150))
		}
		for i := range list {
			list[i] = randomValue(r, depth-1)
		}
		return list
	}
	return randomAttrs(r, depth-1, false)
}

// Records with maps of many keys (whose order Go does not fix) decode to the same records as
// hamba/avro's bytes for them do, and are as long (but for a map of more than one block, whose
// blocks' sizes depend on the order).
func TestEncodeDecodesLikeHambaAvro(t *testing.T) {
	c := newCodec(t)
	r := rand.New(rand.NewPCG(7, 13))
	for i := range 3000 {
		e := sampleEvent()
		e.Attributes = randomAttrs(r, 1+r.IntN(MaxAttributeDepth), true)
		e.Timestamp = time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9))
		got, err := c.AppendEvent(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		want := hambaEvent(t, c, &e)
		ge, err1 := c.DecodeEvent(got)
		we, err2 := c.DecodeEvent(want)
		sameLen := len(got) == len(want) || len(e.Attributes) > blockItems
		if err1 != nil || err2 != nil || !sameLen || !reflect.DeepEqual(ge, we) {
			t.Fatalf("event %d: %d bytes (decoded %v), hamba/avro %d bytes (decoded %v); equal decoded: %v", i, len(got), err1, len(want), err2, reflect.DeepEqual(ge, we))
		}
		m := sampleMetric()
		m.Attributes, m.Timestamp = e.Attributes, e.Timestamp
		if i%2 == 0 {
			m.AggregationType, m.Histogram = Histogram, &Distribution{Count: uint64(i), Min: 1, Max: 2, Bounds: []float64{1.5}, Counts: []uint64{uint64(i / 2), uint64(i - i/2)}}
		}
		got, err = c.AppendMetric(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		want = hambaMetric(t, c, &m)
		gm, err1 := c.DecodeMetric(got)
		wm, err2 := c.DecodeMetric(want)
		sameLen = len(got) == len(want) || len(m.Attributes) > blockItems
		if err1 != nil || err2 != nil || !sameLen || !reflect.DeepEqual(gm, wm) {
			t.Fatalf("metric %d: %d bytes (decoded %v), hamba/avro %d bytes (decoded %v)", i, len(got), err1, len(want), err2)
		}
	}
}

// What the codec cannot write is refused with an error naming it, as before.
func TestEncodeRefusesWhatItCannotWrite(t *testing.T) {
	c := newCodec(t)
	e := sampleEvent()
	e.Attributes = map[string]any{"n": int32(3)} // NormalizeAttributes makes it an int64
	if _, err := c.AppendEvent(nil, &e); !errors.Is(err, ErrBadAttribute) || !strings.Contains(err.Error(), `attribute "n"`) ||
		!strings.Contains(err.Error(), "int32 is not normalised") {
		t.Errorf("an int32 attribute: %v", err)
	}
	// An int is written as the int64 NormalizeAttributes makes of it (the SDK leaves it as it is).
	e.Attributes = map[string]any{"n": 3}
	b, err := c.AppendEvent(nil, &e)
	if err != nil {
		t.Fatalf("an int attribute: %v", err)
	}
	if d, err := c.DecodeEvent(b); err != nil || !reflect.DeepEqual(d.Attributes, map[string]any{"n": int64(3)}) {
		t.Errorf("an int attribute: decoded %#v, %v; want int64 3", d.Attributes, err)
	}
	e.Attributes = map[string]any{"outer": []any{map[string]any{"x": struct{}{}}}}
	if _, err := c.AppendEvent(nil, &e); !errors.Is(err, ErrBadAttribute) || !strings.Contains(err.Error(), `attribute "outer": attribute "x"`) {
		t.Errorf("a struct nested in a list: %v", err)
	}
	m := sampleMetric()
	m.AggregationType = "summary"
	if _, err := c.AppendMetric(nil, &m); err == nil || !strings.Contains(err.Error(), `aggregation_type "summary"`) {
		t.Errorf("aggregation type summary: %v", err)
	}
}

// BenchmarkAppendEvent: AppendEvent against hamba/avro's Marshal of the same event (what it was
// before encode.go), in the same run; compare the two ns/op.
func BenchmarkAppendEvent(b *testing.B) {
	c := newCodec(b)
	e := sampleEvent()
	e.Attributes = map[string]any{"node_id": "transform_1", "node_type": "TransformNode", "region": "eu-west", "execution_count": int64(7)}
	b.Run("encode.go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AppendEvent(nil, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hamba-avro", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			attrs, _ := toWireAttrs(e.Attributes)
			w := wireEvent{EventID: e.EventID, TraceID: optional(e.TraceID), SpanID: optional(e.SpanID), Type: e.Type, Name: e.Name,
				Timestamp: e.Timestamp.UTC(), Attributes: attrs, Tenant: e.Tenant, Service: e.Service, Host: e.Host}
			if _, err := c.append(nil, c.eventH[:], c.event, &w, "event"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
