package chdbcheck

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSame(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	f := func(a, b any, want bool) {
		t.Helper()
		if got := same(a, b); got != want {
			t.Errorf("same(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
	f(n("3"), n("3"), true)
	f(n("0.30000000000000004"), n("0.3"), true) // within 1e-9
	f(n("0.3"), n("0.31"), false)
	f(n("18446744073709551615"), n("18446744073709551614"), false) // integers exactly
	f(n("1796227740"), "1796227740", true)                         // DateTime: a number on one side, quoted on the other
	f(n("nan"), "nan", true)
	f(n("nan"), n("1"), false)
	f(n("1e+21"), n("1e21"), true)
	f("transform_1", "transform_2", false)
	f([]any{n("1"), "a"}, []any{n("1"), "a"}, true)
	f([]any{n("1")}, []any{n("1"), n("2")}, false)
	f([]any{}, "x", false)
}

func TestDiffRows(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	want := [][]any{{n("1"), "a"}, {n("1"), "b"}}
	if d := diffRows(want, [][]any{{n("1"), "b"}, {n("1"), "a"}}); d != "" {
		t.Errorf("the same rows in another order: %s", d)
	}
	if d := diffRows(want, [][]any{{n("1"), "a"}}); !strings.Contains(d, "1 rows, 18.16 answered 2") {
		t.Errorf("a missing row: %q", d)
	}
	if d := diffRows(want, [][]any{{n("1"), "a"}, {n("2"), "b"}}); !strings.Contains(d, "row 1") {
		t.Errorf("a different value: %q", d)
	}
}

func TestMaskAny(t *testing.T) {
	sql := "SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS b, av[indexOf(ak, 'a,b')] AS g0, sum(v.1), count(), any(v.7) FROM (SELECT any(x) FROM t) GROUP BY b"
	if got := selectList(sql); len(got) != 5 || got[3] != "count()" || got[4] != "any(v.7)" {
		t.Fatalf("selectList = %q", got)
	}
	rows := [][]any{{"0", "g", "1", json.Number("1"), "0.5"}, {"60", "g", "2", json.Number("2"), "0.7"}}
	got := maskAny(sql, rows)
	if got[0][4] != "0.5" || got[1][4] != "(any of several)" || rows[1][4] != "0.7" {
		t.Errorf("maskAny = %v (rows %v)", got, rows)
	}
	if got := maskAny("SELECT any(x) FROM t", rows); !reflect.DeepEqual(got, rows) {
		t.Errorf("no count(): %v", got)
	}
}

func TestAppendJSONAndCanonical(t *testing.T) {
	ts := time.Unix(1700000000, 0).UTC()
	f := func(v any, wantJSON string, wantCanon any) {
		t.Helper()
		var b strings.Builder
		if err := appendJSON(&b, reflect.ValueOf(v)); err != nil || b.String() != wantJSON {
			t.Errorf("appendJSON(%#v) = %s, %v; want %s", v, b.String(), err, wantJSON)
		}
		if got := canonical(reflect.ValueOf(v)); !reflect.DeepEqual(got, wantCanon) {
			t.Errorf("canonical(%#v) = %#v, want %#v", v, got, wantCanon)
		}
	}
	f("a\"b", `"a\"b"`, "a\"b")
	f(uint64(math.MaxUint64), "18446744073709551615", json.Number("18446744073709551615"))
	f(int32(-3), "-3", json.Number("-3"))
	f(0.25, "0.25", json.Number("0.25"))
	f(math.NaN(), `"nan"`, json.Number("nan"))
	f(math.Inf(-1), `"-inf"`, json.Number("-inf"))
	f(ts, "1700000000", json.Number("1700000000"))
	f([]string{"x", "y"}, `["x","y"]`, []any{"x", "y"})
	f([]int32{}, `[]`, []any{})
	var b strings.Builder
	if err := appendJSON(&b, reflect.ValueOf("\xff")); err == nil {
		t.Error("a non-UTF-8 string went into JSON")
	}
}
