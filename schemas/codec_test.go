package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

var update = flag.Bool("update", false, "rewrite the golden payloads in testdata/")

func newCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sampleEvent() Event {
	return Event{
		EventID: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
		TraceID: "550e8400-e29b-41d4-a716-446655440000",
		SpanID:  "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		Type:    "node_finished",
		Name:    "TransformNode Completed",
		// 2025-01-15T10:00:02.123456Z, as in the spec's example plus sub-second precision.
		Timestamp: time.Date(2025, 1, 15, 10, 0, 2, 123456000, time.UTC),
		Attributes: map[string]any{
			"node_id":         "transform_1",
			"node_type":       "TransformNode",
			"outputs":         map[string]any{"success": true, "rows": int64(1000)},
			"execution_count": int64(42),
			"ratio":           2.0,
			"errors":          []any{"a", int64(-1), 0.5, nil, []any{}, map[string]any{"deep": []any{false}}},
			"nothing":         nil,
		},
		Source: Source{Tenant: "acme", Service: "etl", Host: "worker-01"},
	}
}

func sampleMetric() Metric {
	return Metric{
		MetricID:        "8d9e7789-8536-51ef-a55c-f18fc2a01bf8",
		TraceID:         "550e8400-e29b-41d4-a716-446655440000",
		Name:            "node_execution_count",
		Value:           42,
		Unit:            "count",
		AggregationType: Counter,
		Timestamp:       time.Date(2025, 1, 15, 10, 0, 2, 0, time.UTC),
		Attributes:      map[string]any{"node_id": "transform_1", "graph_id": "production_workflow"},
		Source:          Source{Service: "etl", Host: "worker-01"},
	}
}

func TestRoundTrip(t *testing.T) {
	c := newCodec(t)
	global := sampleEvent()
	global.TraceID, global.SpanID, global.Attributes = "", "", nil

	for name, in := range map[string]Event{"full": sampleEvent(), "global, no attributes": global} {
		t.Run("event "+name, func(t *testing.T) {
			b, err := c.AppendEvent(nil, &in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.DecodeEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("round trip changed the event:\n in: %#v\nout: %#v", in, out)
			}
		})
	}
	for _, at := range []AggregationType{Counter, Gauge, Histogram} {
		t.Run("metric "+string(at), func(t *testing.T) {
			in := sampleMetric()
			in.AggregationType, in.Value = at, -0.000123
			b, err := c.AppendMetric(nil, &in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.DecodeMetric(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("round trip changed the metric:\n in: %#v\nout: %#v", in, out)
			}
		})
	}
}

// Our header must be what any Avro library computes. These fingerprints come from Apache Avro's
// Java SchemaNormalization.parsingFingerprint64 (1.12.2) on our .avsc files; hamba/avro's own
// fingerprint differs for schemas with logical types, which made Java consumers fail.
func TestFingerprintsMatchJavaAvro(t *testing.T) {
	c := newCodec(t)
	for _, f := range []struct {
		avsc   string
		java   int64
		header []byte
	}{
		{EventSchemaJSON, -5712758918128380742, c.eventH[:]},
		{MetricSchemaJSON, -5766536126079748919, c.metricH[:]},
		{MetricV1SchemaJSON, 5860569520370732286, c.metric1H[:]},
		{RollupSchemaJSON, -6457855326842614350, c.rollupH[:]},
	} {
		fp, err := Fingerprint(f.avsc)
		if err != nil {
			t.Fatal(err)
		}
		if int64(fp) != f.java {
			t.Errorf("fingerprint %d, Java Avro says %d", int64(fp), f.java)
		}
		want := binary.LittleEndian.AppendUint64([]byte{0xC3, 0x01}, uint64(f.java))
		if !bytes.Equal(f.header, want) {
			t.Errorf("header %x, want %x", f.header, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	c := newCodec(t)
	e := sampleEvent()
	good, _ := c.AppendEvent(nil, &e)
	unknown := append([]byte{}, good...)
	binary.LittleEndian.PutUint64(unknown[2:], 0xdeadbeef)

	f := func(name string, data []byte, want error) {
		t.Helper()
		_, err := c.DecodeEvent(data)
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
	f("empty", nil, ErrMalformed)
	f("json", []byte(`{"type":"x"}`), ErrMalformed)
	f("header only", good[:soeHeader], ErrMalformed)
	f("truncated", good[:len(good)-3], ErrMalformed)
	f("unknown fingerprint", unknown, ErrUnknownSchema)
	f("confluent framing", []byte{0, 0, 0, 0, 1, 2}, ErrUnknownSchema)

	m := sampleMetric()
	mb, _ := c.AppendMetric(nil, &m)
	f("metric read as event", mb, ErrUnknownSchema)
	if k, err := c.Detect(mb); err != nil || k != KindMetric {
		t.Errorf("Detect(metric) = %v, %v", k, err)
	}
}

// New readers read old data: an event written with the v0 schema (no source fields) decodes with the
// current codec, the missing fields taking their defaults.
func TestNewReaderReadsOldData(t *testing.T) {
	c := newCodec(t)
	v0JSON, err := os.ReadFile("testdata/event.v0.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddWriterSchema(KindEvent, string(v0JSON)); err != nil {
		t.Fatal(err)
	}
	v0 := avro.MustParse(string(v0JSON))
	in := sampleEvent()
	old, err := c.api.Marshal(v0, &wireEvent{
		EventID: in.EventID, Type: in.Type, Name: in.Name, Timestamp: in.Timestamp,
		Attributes: map[string]attrValue{"rows": {V: int64(7)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(string(v0JSON))
	if err != nil {
		t.Fatal(err)
	}
	header := binary.LittleEndian.AppendUint64([]byte{0xC3, 0x01}, fp)
	out, err := c.DecodeEvent(append(header, old...))
	if err != nil {
		t.Fatal(err)
	}
	if out.EventID != in.EventID || out.Tenant != "" || out.Attributes["rows"] != int64(7) {
		t.Fatalf("decoded %#v", out)
	}
}

// Old readers read new data: a reader built for the v0 schema (a struct without the source fields)
// decodes current events once it has the writer schema, skipping the fields it does not know.
func TestOldReaderReadsNewData(t *testing.T) {
	c := newCodec(t)
	v0JSON, _ := os.ReadFile("testdata/event.v0.avsc")
	if err := avro.NewSchemaCompatibility().Compatible(avro.MustParse(string(v0JSON)), c.event); err != nil {
		t.Fatalf("v0 reader cannot read current data: %v", err)
	}
	type v0Event struct {
		EventID    string               `avro:"event_id"`
		Name       string               `avro:"name"`
		Attributes map[string]attrValue `avro:"attributes"`
	}
	in := sampleEvent()
	b, _ := c.AppendEvent(nil, &in)
	var old v0Event
	if err := c.api.Unmarshal(c.event, b[soeHeader:], &old); err != nil {
		t.Fatal(err)
	}
	if old.EventID != in.EventID || old.Name != in.Name || old.Attributes["node_id"].V != "transform_1" {
		t.Fatalf("old reader got %#v", old)
	}
}

func TestAddWriterSchemaRejectsNonZeroDefault(t *testing.T) {
	c := newCodec(t)
	// A writer that lacks "unit" is fine (default ""); one whose reader-side default would have to be
	// invented is not: simulate by declaring an incompatible type for an existing field.
	bad := strings.Replace(MetricSchemaJSON, `"name": "value", "type": "double"`, `"name": "value", "type": "string"`, 1)
	if err := c.AddWriterSchema(KindMetric, bad); err == nil {
		t.Fatal("a writer schema with value as string was accepted")
	}
}

// Golden payloads pin the wire format: a change to the schema or encoder that alters bytes fails
// here (rewrite with go test ./schemas -update when the change is intended and versioned).
func TestGoldenPayloads(t *testing.T) {
	c := newCodec(t)
	e, m := sampleEvent(), sampleMetric()
	eb, err := c.AppendEvent(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := c.AppendMetric(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	// Map iteration order makes Avro map bytes vary, so golden files are decoded and compared, and
	// the single-attribute-free parts are compared byte for byte via the header.
	for _, g := range []struct {
		file string
		data []byte
	}{{"event.golden.bin", eb}, {"metric.golden.bin", mb}} {
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, g.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./schemas -update to create)", err)
		}
		if !bytes.Equal(want[:soeHeader], g.data[:soeHeader]) || len(want) != len(g.data) {
			t.Errorf("%s: header or size changed: %x (%d bytes), golden %x (%d bytes)",
				g.file, g.data[:soeHeader], len(g.data), want[:soeHeader], len(want))
		}
	}
	ge, err := c.DecodeEvent(mustReadFile(t, "testdata/event.golden.bin"))
	if err != nil || !reflect.DeepEqual(ge, e) {
		t.Errorf("golden event decodes to %#v, %v", ge, err)
	}
	gm, err := c.DecodeMetric(mustReadFile(t, "testdata/metric.golden.bin"))
	if err != nil || !reflect.DeepEqual(gm, m) {
		t.Errorf("golden metric decodes to %#v, %v", gm, err)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	c := newCodec(f)
	e, m := sampleEvent(), sampleMetric()
	eb, _ := c.AppendEvent(nil, &e)
	mb, _ := c.AppendMetric(nil, &m)
	f.Add(eb)
	f.Add(mb)
	for _, h := range sampleHistograms() {
		hb, _ := c.AppendMetric(nil, &h)
		f.Add(hb)
	}
	f.Add([]byte{0xC3, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := c.DecodeEvent(data)
		if err == nil {
			// Whatever decodes must re-encode and decode to the same value.
			ev.Attributes, err = NormalizeAttributes(ev.Attributes)
			if err != nil {
				t.Fatalf("decoded attributes do not normalise: %v", err)
			}
			b, err := c.AppendEvent(nil, &ev)
			if err != nil {
				t.Fatalf("decoded event does not re-encode: %v", err)
			}
			again, err := c.DecodeEvent(b)
			if err != nil || !reflect.DeepEqual(again, ev) {
				t.Fatalf("re-decode: %v\n%#v\n%#v", err, again, ev)
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("error is neither ErrMalformed nor ErrUnknownSchema: %v", err)
		}
		me, err := c.DecodeMetric(data)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("error is neither ErrMalformed nor ErrUnknownSchema: %v", err)
		}
		if err == nil && me.Histogram != nil && me.Validate() == nil {
			// A valid histogram's buckets are in increasing order and add up to its count.
			var n uint64
			prev := math.Inf(-1)
			me.Histogram.Buckets(func(lo, hi float64, c uint64) bool {
				if lo > hi || lo < prev {
					t.Fatalf("bucket (%v, %v] after %v", lo, hi, prev)
				}
				prev, n = lo, n+c
				return true
			})
			if n != me.Histogram.Count {
				t.Fatalf("buckets hold %d values, count %d", n, me.Histogram.Count)
			}
		}
	})
}

func TestRollupRoundTrip(t *testing.T) {
	c := newCodec(t)
	in := Rollup{
		Tenant: "acme", Name: "node_duration", Unit: "seconds", AggregationType: Histogram, SeriesID: 1<<63 + 5,
		Attributes: map[string]any{"node_id": "n1"}, TierSeconds: 60, WindowStart: time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC),
		SourcePartition: 3, LastOffset: 99, Count: 4, Sum: 1.5, Min: 0.1, Max: 0.9, Last: 0.2,
		LastTimestamp: time.Date(2025, 1, 15, 10, 0, 31, 5000, time.UTC),
		Sketch: &RollupSketch{RelativeAccuracy: 0.01, PositiveKeys: []int32{-230, -100}, PositiveCounts: []uint64{3, 1},
			NegativeKeys: []int32{}, NegativeCounts: []uint64{}, ZeroCount: 0},
		Final: true,
	}
	b, err := c.AppendRollup(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.DecodeRollup(b)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("%v\n in %#v\nout %#v", err, in, out)
	}
	if k, _ := c.Detect(b); k != KindRollup {
		t.Fatalf("Detect = %v", k)
	}
}
