package schemas

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNormalizeAttributes(t *testing.T) {
	type point struct{ X int }
	f := func(in any, want any, wantErr error) {
		t.Helper()
		got, err := NormalizeAttributes(map[string]any{"k": in})
		if wantErr != nil {
			if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), `"k"`) {
				t.Errorf("%#v: error %v, want %v naming the key", in, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%#v: %v", in, err)
		}
		if !reflect.DeepEqual(got["k"], want) {
			t.Errorf("%#v normalised to %#v, want %#v", in, got["k"], want)
		}
	}
	f(int(3), int64(3), nil)
	f(uint8(3), int64(3), nil)
	f(uint64(math.MaxInt64), int64(math.MaxInt64), nil)
	f(float32(0.5), 0.5, nil)
	f([]string{"a", "b"}, []any{"a", "b"}, nil)
	f([2]int{1, 2}, []any{int64(1), int64(2)}, nil)
	f(map[string]int{"a": 1}, map[string]any{"a": int64(1)}, nil)
	f(map[string]any{"m": []any{map[string]bool{"x": true}}}, map[string]any{"m": []any{map[string]any{"x": true}}}, nil)
	f(time.Date(2025, 1, 15, 10, 0, 2, 5, time.UTC), "2025-01-15T10:00:02.000000005Z", nil)
	f([]int(nil), nil, nil)
	f((*int)(nil), nil, nil)
	f(uint64(math.MaxUint64), nil, ErrBadAttribute)
	f(math.NaN(), nil, ErrBadValue)
	f(math.Inf(-1), nil, ErrBadValue)
	f([]any{math.Inf(1)}, nil, ErrBadValue)
	f(point{1}, nil, ErrBadAttribute)
	f(map[int]string{1: "a"}, nil, ErrBadAttribute)
	f(make(chan int), nil, ErrBadAttribute)
	deep := any("leaf")
	for range MaxAttributeDepth + 1 {
		deep = []any{deep}
	}
	f(deep, nil, ErrBadAttribute)
}

func TestAttributesJSONIsLossless(t *testing.T) {
	attrs := sampleEvent().Attributes
	attrs["quote"] = "a\"b\\c\n\x01é☃"
	attrs["big"] = int64(math.MaxInt64)
	attrs["tiny"] = 1e-300
	attrs["whole"] = -3.0
	b := AppendAttributesJSON(nil, attrs)
	back, err := ParseAttributesJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !reflect.DeepEqual(back, attrs) {
		t.Fatalf("JSON round trip changed attributes:\n%s\n in: %#v\nout: %#v", b, attrs, back)
	}
	if !strings.Contains(string(b), `"whole":-3.0`) || !strings.Contains(string(b), `"execution_count":42,`) {
		t.Fatalf("floats must keep a decimal point and ints must not: %s", b)
	}
}

func TestParseAttributesJSONErrors(t *testing.T) {
	for _, in := range []string{`[1]`, `{"a":1} x`, `{"a":`, `{"a":123456789012345678901234567890}`, `"s"`} {
		if _, err := ParseAttributesJSON([]byte(in)); !errors.Is(err, ErrBadAttribute) {
			t.Errorf("%s: got %v, want ErrBadAttribute", in, err)
		}
	}
	if a, err := ParseAttributesJSON([]byte(`null`)); a != nil || err != nil {
		t.Errorf("null: %v %v", a, err)
	}
}

func FuzzParseAttributesJSON(f *testing.F) {
	f.Add([]byte(AppendAttributesJSON(nil, sampleEvent().Attributes)))
	f.Add([]byte(`{"a":[1,2.5,{"b":null}],"c":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		attrs, err := ParseAttributesJSON(data)
		if err != nil {
			if !errors.Is(err, ErrBadAttribute) {
				t.Fatalf("error is not ErrBadAttribute: %v", err)
			}
			return
		}
		again, err := ParseAttributesJSON(AppendAttributesJSON(nil, attrs))
		if err != nil || !reflect.DeepEqual(again, attrs) {
			t.Fatalf("not stable: %v\n%#v\n%#v", err, attrs, again)
		}
	})
}

func TestFlattenAttributes(t *testing.T) {
	keys, values := FlattenAttributes(map[string]any{
		"s": "x", "b": false, "i": int64(-7), "f": 2.0, "n": nil, "l": []any{int64(1), "a"}, "m": map[string]any{"z": 1.5},
	})
	wantK := []string{"b", "f", "i", "l", "m", "n", "s"}
	wantV := []string{"false", "2", "-7", `[1,"a"]`, `{"z":1.5}`, "", "x"}
	if !reflect.DeepEqual(keys, wantK) || !reflect.DeepEqual(values, wantV) {
		t.Fatalf("got %q %q", keys, values)
	}
}

func TestValidate(t *testing.T) {
	f := func(name string, err error, want error, field string) {
		t.Helper()
		if !errors.Is(err, want) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want %v naming %s", name, err, want, field)
		}
	}
	e := sampleEvent()
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	e.Name = ""
	f("empty event name", e.Validate(), ErrEmptyField, "name")
	e = sampleEvent()
	e.Type = ""
	f("empty type", e.Validate(), ErrEmptyField, "type")
	e = sampleEvent()
	e.Timestamp = time.Time{}
	f("zero timestamp", e.Validate(), ErrBadTimestamp, "timestamp")
	e.Timestamp = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	f("1960", e.Validate(), ErrBadTimestamp, "timestamp")

	m := sampleMetric()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.Value = math.NaN()
	f("NaN", m.Validate(), ErrBadValue, "value")
	m = sampleMetric()
	m.AggregationType = "summary"
	f("unknown aggregation", m.Validate(), ErrUnknownAggregation, "aggregation_type")
	m = sampleMetric()
	m.Name = ""
	f("empty metric name", m.Validate(), ErrEmptyField, "name")
}

func TestAttributeColumnsAgreeWithTheirParts(t *testing.T) {
	for _, attrs := range []map[string]any{nil, {}, sampleEvent().Attributes, {"a": 1.0, "b": []any{int64(1)}}} {
		n, _ := NormalizeAttributes(attrs)
		js, keys, values := AttributeColumns(n)
		wk, wv := FlattenAttributes(n)
		if js != string(AppendAttributesJSON(nil, n)) || !reflect.DeepEqual(keys, wk) || !reflect.DeepEqual(values, wv) {
			t.Fatalf("%v: %s %v %v", attrs, js, keys, values)
		}
	}
}
