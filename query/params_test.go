package query

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

var testCfg = Config{DefaultLimit: 100, MaxLimit: 1000, MaxOffset: 5000, Timeout: 10 * time.Second}

func TestParseFilterErrorsNameTheParameter(t *testing.T) {
	f := func(query, param string) {
		t.Helper()
		q, _ := url.ParseQuery(query)
		_, err := parseFilter(q, testCfg, "type", "name")
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != param {
			t.Errorf("%s: got %v, want an error naming %q", query, err, param)
		}
	}
	f("limit=0", "limit")
	f("limit=1001", "limit")
	f("limit=ten", "limit")
	f("limit=1&limit=2", "limit")
	f("offset=-1", "offset")
	f("offset=5001", "offset")
	f("start=yesterday", "start")
	f("end=2025-13-01T00:00:00Z", "end")
	f("start=-5", "start")
	f("start=2025-01-15T10:00:00Z&end=2025-01-15T09:00:00Z", "end")
	f("start=1700000000&end=1700000000", "end")
	f("order=sideways", "order")
	f("typo=1", "typo")
	f("trace_id=x", "trace_id") // not allowed on this endpoint
	f("type=", "type")
	f("attr.=x", "attr.")
}

func TestParseFilter(t *testing.T) {
	q, _ := url.ParseQuery("type=a,b&type=c&name=n&start=2025-01-15T10:00:00.5Z&end=1736935300&limit=7&offset=14&order=desc&attr.node_id=x")
	f, err := parseFilter(q, testCfg, "type", "name")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Types) != 3 || f.Types[2] != "c" || f.Name != "n" || f.Limit != 7 || f.Offset != 14 || !f.Descending ||
		f.Attributes["node_id"] != "x" || f.Start.Nanosecond() != 500000000 || f.End.Unix() != 1736935300 {
		t.Fatalf("%+v", f)
	}
	// The client renders a filter that the server parses back to the same thing.
	back, err := parseFilter(f.Values(), testCfg, "type", "name")
	if err != nil || back.Limit != f.Limit || !back.Start.Equal(f.Start) || !back.End.Equal(f.End) || len(back.Types) != 3 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	def, _ := parseFilter(url.Values{}, testCfg)
	if def.Limit != 100 || def.Offset != 0 || def.Descending {
		t.Fatalf("defaults %+v", def)
	}
}

func TestWhereBindsEveryValue(t *testing.T) {
	evil := "x' OR 1=1 --"
	sql, args := where(Filter{Types: []string{evil}, Name: evil, TraceID: evil, Attributes: map[string]string{evil: evil}}, "events")
	for _, a := range args {
		if s, ok := a.(string); ok && s != evil {
			t.Fatalf("unexpected arg %q", s)
		}
	}
	if len(args) != 6 {
		t.Fatalf("args %v", args)
	}
	if containsString(sql, evil) {
		t.Fatalf("caller text in SQL: %s", sql)
	}
}

func containsString(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func FuzzParseFilter(f *testing.F) {
	f.Add("type=a&start=2025-01-15T10:00:00Z&limit=5")
	f.Add("attr.k=v&offset=3&order=desc&end=1700000000")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := parseFilter(q, testCfg, "type", "name", "trace_id", "span_id", "aggregation_type")
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("error without a parameter: %v", err)
			}
			return
		}
		if flt.Limit < 1 || flt.Limit > testCfg.MaxLimit || flt.Offset < 0 || flt.Offset > testCfg.MaxOffset {
			t.Fatalf("limits not enforced: %+v", flt)
		}
		sql, args := where(flt, "events")
		if n := countRune(sql, '?'); n != len(args) {
			t.Fatalf("%d placeholders for %d args in %s", n, len(args), sql)
		}
	})
}

func countRune(s string, r rune) int {
	n := 0
	for _, c := range s {
		if c == r {
			n++
		}
	}
	return n
}

func FuzzParseAggregate(f *testing.F) {
	f.Add("name=m&bucket=5m&aggregates=count,p95&group_by=host,node_id&top=3&start=2025-01-15T10:00:00Z&end=2025-01-15T11:00:00Z")
	f.Add("name=m&bucket=30&source=raw&attr.k=v")
	cfg := testCfg
	cfg.MaxBuckets, cfg.MaxSeriesRows = 1000, 1000
	now := time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		a, err := parseAggregate(q, cfg, now)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("error without a parameter: %v", err)
			}
			return
		}
		if a.Name == "" || a.Bucket < time.Second || len(a.GroupBy) > 4 || !a.End.After(a.Start) ||
			int64(a.End.Sub(a.Start)/a.Bucket) > int64(cfg.MaxBuckets) {
			t.Fatalf("limits not enforced: %+v", a)
		}
		for _, k := range a.GroupBy {
			if !groupKeyRE.MatchString(k) {
				t.Fatalf("group key %q let through", k)
			}
		}
		gsql, gargs := groupSQL(a.GroupBy)
		asql, aargs := attrSQL(a.Attributes)
		if countRune(gsql+asql, '?') != len(gargs)+len(aargs) {
			t.Fatalf("placeholders and arguments differ")
		}
	})
}
