package schemas

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// nested returns a value whose innermost scalar sits at depth levels (a top-level scalar is 1),
// alternating lists and maps.
func nested(depth int) any {
	var v any = "leaf"
	for d := depth - 1; d >= 1; d-- {
		if d%2 == 0 {
			v = []any{v}
		} else {
			v = map[string]any{"k": v}
		}
	}
	return v
}

// The producer's limit on nesting (NormalizeAttributes), the consumer's decoder and the rollup
// reload (ParseAttributesJSON of the stored JSON) agree: what the SDK accepts decodes and reloads;
// one level more is refused by the SDK and by the decoder, so another producer's record that
// breaks it is dead-lettered at decode instead of stored and then failing every reload.
func TestAttributeDepthLimitAgreesFromProducerToReload(t *testing.T) {
	codec, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	f := func(depth int, wantOK bool) {
		t.Helper()
		attrs := map[string]any{"deep": nested(depth)}
		_, normErr := NormalizeAttributes(attrs)
		m := Metric{MetricID: "0190a5f2-7c3e-7b1a-9d4e-2f6a8b9c0d1e", Name: "m", AggregationType: Gauge, Value: 1,
			Timestamp: time.Unix(1700000000, 0), Attributes: attrs, Source: Source{Tenant: "4f9e2a1c-0b7d-4e3f-8a6c-5d2b1e0f9a87"}}
		// Another producer encodes it without our SDK's checks.
		value, err := codec.AppendMetric(nil, &m)
		if err != nil {
			t.Fatalf("depth %d: encode: %v", depth, err)
		}
		got, decErr := codec.DecodeMetric(value)
		if !wantOK {
			if !errors.Is(normErr, ErrBadAttribute) {
				t.Fatalf("depth %d: the SDK accepted it (%v)", depth, normErr)
			}
			if !errors.Is(decErr, ErrMalformed) || !strings.Contains(decErr.Error(), "nested deeper than 16 levels") {
				t.Fatalf("depth %d: decode error %v, want malformed naming the depth limit", depth, decErr)
			}
			return
		}
		if normErr != nil || decErr != nil {
			t.Fatalf("depth %d: normalise %v, decode %v", depth, normErr, decErr)
		}
		js, _, _ := AttributeColumns(got.Attributes)
		back, err := ParseAttributesJSON([]byte(js))
		if err != nil {
			t.Fatalf("depth %d: the stored JSON does not reload: %v", depth, err)
		}
		if !reflect.DeepEqual(back, got.Attributes) {
			t.Fatalf("depth %d: reloaded %v, stored %v", depth, back, got.Attributes)
		}
	}
	f(1, true)
	f(MaxAttributeDepth, true)
	f(MaxAttributeDepth+1, false)
	f(20, false)
}

// A list of MaxDecodedListLen items is accepted, stored and decoded; one item more is refused by
// the SDK's normalisation as by the decoder, so no producer setting lets through a list the
// consumer would dead-letter.
func TestAttributeListLengthLimitAgreesWithTheDecoder(t *testing.T) {
	codec, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{MaxDecodedListLen, MaxDecodedListLen + 1} {
		list := make([]any, n)
		attrs := map[string]any{"l": list}
		_, normErr := NormalizeAttributes(attrs)
		m := Metric{MetricID: "0190a5f2-7c3e-7b1a-9d4e-2f6a8b9c0d1e", Name: "m", AggregationType: Gauge, Value: 1,
			Timestamp: time.Unix(1700000000, 0), Attributes: attrs}
		value, err := codec.AppendMetric(nil, &m) // another producer, without the SDK's checks
		if err != nil {
			t.Fatalf("%d items: encode: %v", n, err)
		}
		got, decErr := codec.DecodeMetric(value)
		if n == MaxDecodedListLen {
			if normErr != nil || decErr != nil || len(got.Attributes["l"].([]any)) != n {
				t.Fatalf("%d items: normalise %v, decode %v", n, normErr, decErr)
			}
			continue
		}
		if !errors.Is(normErr, ErrBadAttribute) || !strings.Contains(normErr.Error(), "at most 100000") {
			t.Fatalf("%d items: the SDK's normalisation said %v, want ErrBadAttribute naming the limit", n, normErr)
		}
		if !errors.Is(decErr, ErrMalformed) {
			t.Fatalf("%d items: decode error %v, want malformed", n, decErr)
		}
	}
}

// The decoder reads a string of MaxDecodedBytes and refuses one byte more as malformed (the SDK
// cannot make such a record: MAX_ATTRIBUTE_VALUE_BYTES is at most MaxDecodedBytes, and a record
// is at most MAX_RECORD_BYTES).
func TestDecoderStringLimit(t *testing.T) {
	codec, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{MaxDecodedBytes, MaxDecodedBytes + 1} {
		m := Metric{MetricID: "0190a5f2-7c3e-7b1a-9d4e-2f6a8b9c0d1e", Name: "m", AggregationType: Gauge, Value: 1,
			Timestamp: time.Unix(1700000000, 0), Attributes: map[string]any{"s": strings.Repeat("x", n)}}
		value, err := codec.AppendMetric(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.DecodeMetric(value)
		if n == MaxDecodedBytes && (err != nil || len(got.Attributes["s"].(string)) != n) {
			t.Fatalf("a string of %d bytes: %v", n, err)
		}
		if n > MaxDecodedBytes && !errors.Is(err, ErrMalformed) {
			t.Fatalf("a string of %d bytes: %v, want malformed", n, err)
		}
	}
}
