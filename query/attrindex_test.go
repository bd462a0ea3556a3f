package query

import (
	"encoding/json"
	"testing"

	"github.com/tributary/tributary/schemas"
)

// haveAttributes compares as the attr_values column stores attributes (schemas.AttributeColumns
// at write time): a value of any type that the SQL filter matches, it matches too.
func TestHaveAttributesMatchesTheStoredColumns(t *testing.T) {
	attrs, err := schemas.NormalizeAttributes(map[string]any{"n": 42, "f": 2.5, "whole": 2.0, "b": true, "s": "x", "l": []any{1, "a"},
		"m": map[string]any{"a": 1}, "none": nil})
	if err != nil {
		t.Fatal(err)
	}
	js, keys, values := schemas.AttributeColumns(attrs)
	events := []EventJSON{{Attributes: json.RawMessage(js)}}
	for i, k := range keys {
		if !haveAttributes(events, map[string]string{k: values[i]}) {
			t.Errorf("%s = %q (as stored) does not match %s", k, values[i], js)
		}
		if haveAttributes(events, map[string]string{k: values[i] + "0"}) {
			t.Errorf("%s = %q matches %s", k, values[i]+"0", js)
		}
	}
	if haveAttributes(events, map[string]string{"missing": ""}) {
		t.Error("a missing key matched")
	}
	if !haveAttributes(events, map[string]string{"n": "42", "s": "x"}) || haveAttributes(events, map[string]string{"n": "42", "s": "y"}) {
		t.Error("two attributes: wrong answer")
	}
}
