package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

// sameAsCodec checks that the Decoder decodes data as the Codec does: both refuse it (with
// ErrMalformed or ErrUnknownSchema) or both give the same record and the same attribute columns
// (AttributeColumns of the Codec's attributes).
func sameAsCodec(t *testing.T, c *Codec, d *Decoder, data []byte) {
	t.Helper()
	check := func(what string, cerr, derr error, got, want any, wantAttrs map[string]any) {
		t.Helper()
		if (cerr == nil) != (derr == nil) {
			t.Fatalf("%s: codec error %v, decoder error %v", what, cerr, derr)
		}
		if derr != nil {
			if !errors.Is(derr, ErrMalformed) && !errors.Is(derr, ErrUnknownSchema) {
				t.Fatalf("%s: decoder error is neither ErrMalformed nor ErrUnknownSchema: %v", what, derr)
			}
			return
		}
		// Compared as printed: a NaN (which Validate refuses later) equals itself there.
		if g, w := printed(got), printed(want); g != w {
			t.Fatalf("%s: decoder gave\n%s\ncodec gave\n%s", what, g, w)
		}
		wj, wk, wv := AttributeColumns(wantAttrs)
		gj, gk, gv := d.AttrColumns()
		if gj != wj || !reflect.DeepEqual(gk, wk) || !reflect.DeepEqual(gv, wv) || string(d.AttrJSON()) != wj {
			t.Fatalf("%s: decoder's attributes %s %q %q (AttrJSON %s), codec's %s %q %q", what, gj, gk, gv, d.AttrJSON(), wj, wk, wv)
		}
	}
	we, cerr := c.DecodeEvent(data)
	var ge Event
	derr := d.DecodeEvent(data, &ge)
	wantAttrs := we.Attributes
	we.Attributes = nil
	check("event", cerr, derr, ge, we, wantAttrs)

	wm, cerr := c.DecodeMetric(data)
	var gm Metric
	derr = d.DecodeMetric(data, &gm)
	wantAttrs = wm.Attributes
	wm.Attributes = nil
	check("metric", cerr, derr, gm, wm, wantAttrs)
}

// printed formats a decoded Event or Metric, its histogram included (not its address).
func printed(v any) string {
	if m, ok := v.(Metric); ok && m.Histogram != nil {
		h := *m.Histogram
		m.Histogram = nil
		if e := h.Exponential; e != nil {
			h.Exponential = nil
			return fmt.Sprintf("%#v %#v %#v", m, h, *e)
		}
		return fmt.Sprintf("%#v %#v", m, h)
	}
	return fmt.Sprintf("%#v", v)
}

func decoderSamples(t testing.TB, c *Codec) [][]byte {
	e, m := sampleEvent(), sampleMetric()
	rich := map[string]any{
		"s": "a \"quoted\"\n\u00e9 string", "i": int64(-7), "f": 2.0, "g": 1e21, "h": 0.1, "b": false, "n": nil,
		"list": []any{int64(1), "x", []any{}, map[string]any{"z": 1.5, "a": nil}},
		"map":  map[string]any{"b": map[string]any{"c": []any{true}}, "a": "1"},
		"":     "empty key", "\u00fc": int64(0),
	}
	out := [][]byte{}
	add := func(b []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(c.AppendEvent(nil, &e))
	add(c.AppendMetric(nil, &m))
	e.Attributes, m.Attributes = rich, rich
	add(c.AppendEvent(nil, &e))
	add(c.AppendMetric(nil, &m))
	e.Attributes, m.Attributes, e.TraceID, m.TraceID, e.SpanID = nil, nil, "", "", ""
	e.Timestamp = time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)
	add(c.AppendEvent(nil, &e))
	add(c.AppendMetric(nil, &m))
	for _, h := range sampleHistograms() {
		add(c.AppendMetric(nil, &h))
	}
	return out
}

func TestDecoderDecodesAsTheCodec(t *testing.T) {
	c := newCodec(t)
	d := c.NewDecoder()
	for _, data := range decoderSamples(t, c) {
		sameAsCodec(t, c, d, data)
		// Cut short, and with a byte more: both refused.
		sameAsCodec(t, c, d, data[:len(data)-1])
		sameAsCodec(t, c, d, append(append([]byte{}, data...), 0))
	}
	// Another producer's record may repeat a key: the last value is kept, as in a decoded map.
	e := sampleEvent()
	e.Attributes = map[string]any{"k1": int64(1), "k2": int64(2)}
	b, err := c.AppendEvent(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	dup := bytes.ReplaceAll(b, []byte("k2"), []byte("k1"))
	sameAsCodec(t, c, d, dup)
	var got Event
	if err := d.DecodeEvent(dup, &got); err != nil {
		t.Fatal(err)
	}
	if j := string(d.AttrJSON()); j != `{"k1":1}` && j != `{"k1":2}` {
		t.Fatalf("repeated key: %s", j)
	}
	// A NaN attribute (another producer's) is refused by both.
	e.Attributes = map[string]any{"x": 1.0}
	if b, err = c.AppendEvent(nil, &e); err != nil {
		t.Fatal(err)
	}
	nan := append([]byte{}, b...)
	for i := 0; i+8 <= len(nan); i++ {
		if math.Float64frombits(le64(nan[i:])) == 1.0 {
			putLE64(nan[i:], math.Float64bits(math.NaN()))
		}
	}
	if err := d.DecodeEvent(nan, &got); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a NaN attribute: %v, want ErrMalformed", err)
	}
	sameAsCodec(t, c, d, nan)
}

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func putLE64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// Whatever the input, the Decoder and the Codec agree: both refuse it, or both decode the same.
func FuzzDecoderAgreesWithCodec(f *testing.F) {
	c := newCodec(f)
	for _, b := range decoderSamples(f, c) {
		f.Add(b)
	}
	f.Add([]byte{0xC3, 0x01})
	d := c.NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) { sameAsCodec(t, c, d, data) })
}
