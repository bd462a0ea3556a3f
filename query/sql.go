package query

import (
	"maps"
	"slices"
	"strings"
)

// where builds a WHERE clause from f with every value bound as a ? parameter. It never puts a
// caller's text into the SQL itself.
func where(f Filter, kind string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, vals ...any) {
		conds = append(conds, cond)
		args = append(args, vals...)
	}
	if f.scope.scoped {
		add("tenant = ?", f.scope.tenant)
	}
	if len(f.Types) > 0 {
		add("type IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(f.Types)), ", ")+")", anySlice(f.Types)...)
	}
	if f.Name != "" {
		add("name = ?", f.Name)
	}
	if f.TraceID != "" {
		add("trace_id = ?", f.TraceID)
	}
	if f.SpanID != "" && kind == "events" {
		add("span_id = ?", f.SpanID)
	}
	if f.AggregationType != "" && kind == "metrics" {
		add("aggregation_type = ?", f.AggregationType)
	}
	tc, targs := timeConds(f)
	conds, args = append(conds, tc...), append(args, targs...)
	for _, k := range slices.Sorted(maps.Keys(f.Attributes)) {
		add("has(attr_keys, ?) AND attr_values[indexOf(attr_keys, ?)] = ?", k, k, f.Attributes[k])
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// timeConds are the conditions of f's time range, on the timestamp (seconds), which lets
// ClickHouse use the sorting key and partitions, and on timestamp_us, which is exact.
func timeConds(f Filter) (conds []string, args []any) {
	if !f.Start.IsZero() {
		conds = append(conds, "timestamp >= toDateTime(?)", "timestamp_us >= ?")
		args = append(args, uint32(f.Start.Unix()), uint64(f.Start.UnixMicro()))
	}
	if !f.End.IsZero() {
		conds = append(conds, "timestamp <= toDateTime(?)", "timestamp_us < ?")
		args = append(args, uint32(f.End.Unix()), uint64(f.End.UnixMicro()))
	}
	return conds, args
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// sortDir is the SQL direction of a page: DESC for descending, else ASC.
func sortDir(descending bool) string {
	if descending {
		return "DESC"
	}
	return "ASC"
}

func orderLimit(f Filter, idColumn string) (string, []any) {
	dir := sortDir(f.Descending)
	return " ORDER BY timestamp_us " + dir + ", " + idColumn + " " + dir + " LIMIT ?, ?", []any{f.Offset, f.Limit}
}
