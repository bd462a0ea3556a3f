package query

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/rollups"
)

func (s *Server) aggregate(w http.ResponseWriter, r *http.Request) {
	a, err := parseAggregate(r.URL.Query(), s.cfg, time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tier := rollupTier(a, s.cfg.RollupTiers)
	source := "raw"
	switch {
	case a.Source == "rollups" && tier == 0:
		s.fail(w, r, badParam("source", "rollups need a bucket that is a multiple of a rollup tier (%v) and a range aligned to it", s.cfg.RollupTiers))
		return
	case a.Source != "raw" && tier > 0:
		source = "rollups"
	}
	ctx, cancel := s.queryCtx(r.Context())
	defer cancel()
	if source == "rollups" && wantsPercentiles(a.Aggregates) {
		// Only histograms' windows carry a sketch: percentiles of other types come from raw rows.
		typ, err := s.rollupType(ctx, a, tier, tenantOf(r))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if typ != "" && typ != "histogram" {
			if a.Source == "rollups" {
				s.fail(w, r, badParam("source", "%s is a %s: rollups keep percentiles for histograms only; use source=raw or auto", a.Name, typ))
				return
			}
			source = "raw"
		}
	}
	var cells []cell
	if source == "rollups" {
		cells, err = s.fromRollups(ctx, a, tier, tenantOf(r))
	} else {
		cells, err = s.fromRaw(ctx, a, tenantOf(r))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ans := AggregateAnswer{
		Name: a.Name, Source: source, BucketSeconds: int64(a.Bucket / time.Second),
		Start: a.Start.Format(time.RFC3339Nano), End: a.End.Format(time.RFC3339Nano), Series: assemble(a, cells),
	}
	if err := checkFinite(ans.Series); err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := ans.appendJSON(nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// groupSQL returns the group-by expressions (each key bound as a parameter) and their arguments.
func groupSQL(keys []string) (string, []any) { return groupSQLOf(keys, "") }

// groupSQLOf is groupSQL with each expression in aggregate function agg ("" for none).
func groupSQLOf(keys []string, agg string) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(keys))
	for i, k := range keys {
		expr := "attr_values[indexOf(attr_keys, ?)]"
		if agg != "" {
			expr = agg + "(" + expr + ")"
		}
		fmt.Fprintf(&b, ", %s AS g%d", expr, i)
		args = append(args, k)
	}
	return b.String(), args
}

func groupNames(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ", g%d", i)
	}
	return b.String()
}

// attrSQL filters on top-level attributes, keys and values bound.
func attrSQL(attrs map[string]string) (string, []any) {
	var b strings.Builder
	var args []any
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		b.WriteString(" AND has(attr_keys, ?) AND attr_values[indexOf(attr_keys, ?)] = ?")
		args = append(args, k, k, attrs[k])
	}
	return b.String(), args
}

func tenantSQL(tenant string, scoped bool) (string, []any) {
	if !scoped {
		return "", nil
	}
	return " AND tenant = ?", []any{tenant}
}

// fromRollups answers from the rollup windows. Percentiles of a cell made of one window row come
// from the percentiles stored with the row (migration 0005); cells of several rows (several
// series or partitions) merge their sketches: a second query concatenates their buckets and they
// are merged here (ClickHouse 18.16's sumMap costs about 10 us a group).
func (s *Server) fromRollups(ctx context.Context, a AggregateQuery, tier int64, tenant tenantScope) ([]cell, error) {
	bucket := int64(a.Bucket / time.Second)
	gsql, gargs := groupSQLOf(a.GroupBy, "any") // in the window rows' query; the cells' take its g0, g1...
	asql, aargs := attrSQL(a.Attributes)
	tsql, targs := tenantSQL(tenant.tenant, tenant.scoped)
	var pct []string
	for _, agg := range a.Aggregates {
		if _, ok := quantileOf[agg]; ok {
			pct = append(pct, agg)
		}
	}
	// Each window row's latest version (what FINAL would read, at about half its cost on 18.16):
	// of each column, the value in the row with the highest last_offset of its sorting key, as
	// v1, v2... in the order of cols. (A row's versions of one last_offset are the same row
	// written again. One argMax per column costs half of one argMax of their tuple on 18.16.)
	latest := func(cols ...string) string {
		var v strings.Builder
		for i, c := range cols {
			fmt.Fprintf(&v, ", argMax(%s, last_offset) AS v%d", c, i+1)
		}
		return " FROM (SELECT window_start" + gsql + v.String() +
			" FROM " + s.cfg.ClickHouse.Database + ".rollups WHERE name = ? AND tier = ?" +
			" AND window_start >= toDateTime(?) AND window_start < toDateTime(?)" + tsql + asql +
			" GROUP BY tenant, series_id, source_partition, window_start)" +
			" GROUP BY b" + groupNames(len(a.GroupBy)) + " ORDER BY b LIMIT ?"
	}
	cols, stored := []string{"count", "sum", "min", "max", "last", "last_ts_us"}, ""
	for i, p := range pct {
		cols = append(cols, "sketch_"+p) // p is from the allow-list
		stored += fmt.Sprintf(", any(v%d)", 7+i)
	}
	args := append([]any{bucket, bucket}, gargs...)
	args = append(args, a.Name, uint32(tier), uint32(a.Start.Unix()), uint32(a.End.Unix()))
	args = append(append(append(args, targs...), aargs...), s.cfg.MaxSeriesRows+1)
	rows, err := s.conn.Query(ctx, "SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS b"+groupNames(len(a.GroupBy))+
		", sum(v1), sum(v2), min(v3), max(v4), argMax(v5, v6), count()"+stored+latest(cols...), args...)
	if err != nil {
		return nil, fmt.Errorf("aggregate from rollups: %w", err)
	}
	defer rows.Close()
	var cells []cell
	merge := map[string]int{} // cells whose sketches must be merged, by bucket and group
	for rows.Next() {
		c := cell{groups: make([]string, len(a.GroupBy))}
		var n uint64
		qs := make([]float64, len(pct))
		dest := []any{&c.bucket}
		for i := range c.groups {
			dest = append(dest, &c.groups[i])
		}
		dest = append(dest, &c.count, &c.sum, &c.lo, &c.hi, &c.last, &n)
		for i := range qs {
			dest = append(dest, &qs[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("aggregate from rollups: %w", err)
		}
		if len(pct) > 0 {
			for i, p := range pct {
				if n != 1 || math.IsNaN(qs[i]) {
					merge[cellKey(c.bucket, c.groups)] = len(cells)
					break
				}
				c.setQuantile(p, math.Max(c.lo, math.Min(c.hi, qs[i])))
			}
		}
		cells = append(cells, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aggregate from rollups: %w", err)
	}
	if len(cells) > s.cfg.MaxSeriesRows {
		return nil, badParam("group_by", "more than %d bucket x group cells; narrow with attr.<key> filters, a wider bucket or fewer keys", s.cfg.MaxSeriesRows)
	}
	s.rollupCells.WithLabelValues("stored").Add(float64(len(cells) - len(merge)))
	s.rollupCells.WithLabelValues("merged").Add(float64(len(merge)))
	if len(merge) == 0 {
		return cells, nil
	}
	// The merge happens in ClickHouse: concatenated buckets sorted by key, ranked as Sketch.Quantile
	// ranks. (sumMap is slower on 18.16, and reading the buckets out through the driver more so.)
	qsql := ""
	for _, p := range pct {
		qsql += ", " + sketchQuantileSQL(quantileOf[p])
	}
	rows2, err := s.conn.Query(ctx, "SELECT b"+groupNames(len(a.GroupBy))+qsql+
		" FROM (SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS b"+groupNames(len(a.GroupBy))+
		", groupArrayArray(v1) AS _pk, groupArrayArray(v2) AS _pc, groupArrayArray(v3) AS _nk,"+
		" groupArrayArray(v4) AS _nc, sum(v5) AS _z, "+sketchAliases+
		latest("sketch_pos_keys", "sketch_pos_counts", "sketch_neg_keys", "sketch_neg_counts", "sketch_zero")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("aggregate from rollups: %w", err)
	}
	defer rows2.Close()
	for rows2.Next() {
		var b uint32
		groups := make([]string, len(a.GroupBy))
		qs := make([]float64, len(pct))
		dest := []any{&b}
		for i := range groups {
			dest = append(dest, &groups[i])
		}
		for i := range qs {
			dest = append(dest, &qs[i])
		}
		if err := rows2.Scan(dest...); err != nil {
			return nil, fmt.Errorf("aggregate from rollups: %w", err)
		}
		i, ok := merge[cellKey(b, groups)]
		if !ok {
			continue
		}
		c := &cells[i]
		for j, p := range pct {
			if !math.IsNaN(qs[j]) { // only histograms have sketches
				c.setQuantile(p, math.Max(c.lo, math.Min(c.hi, qs[j])))
			}
		}
	}
	return cells, rows2.Err()
}

// sketchAliases sorts the concatenated buckets of the sketches being merged (_pk/_pc positive keys
// and counts, _nk/_nc negative ones, _z the summed zero counts; keys may repeat) into the aliases
// sketchQuantileSQL reads: _spk/_spc the positive buckets by key, _snk/_snc the negative ones most
// negative first, _nt the negative count and _n the total.
const sketchAliases = "arraySort(_pk) AS _spk, arraySort((c, k) -> k, _pc, _pk) AS _spc," +
	" arrayReverse(arraySort(_nk)) AS _snk, arrayReverse(arraySort((c, k) -> k, _nc, _nk)) AS _snc," +
	" arraySum(_nc) AS _nt, arraySum(_pc) + _nt + _z AS _n"

// sketchQuantileSQL is rollups.QuantileOfArrays(..., q), the one definition of the rank rule, in
// ClickHouse SQL over sketchAliases: the rank min(floor(q*n), n-1), the first bucket whose
// cumulative count passes it (negatives, then zero, then positives), and that bucket's value
// rollups.BucketValue, 2*Gamma^k/(Gamma+1). TestSketchQuantileSQLMatchesGo holds the two to the
// same answers. q comes from quantileOf, never from a request.
func sketchQuantileSQL(q float64) string {
	g := strconv.FormatFloat(rollups.Gamma, 'g', -1, 64)
	rank := "least(toUInt64(floor(" + strconv.FormatFloat(q, 'g', -1, 64) + " * _n)), _n - 1)"
	negIdx := "arrayFirstIndex(x -> x > " + rank + ", arrayCumSum(_snc))"
	posIdx := "arrayFirstIndex(x -> x + _nt + _z > " + rank + ", arrayCumSum(_spc))"
	value := func(k string) string { return "(2 * pow(" + g + ", " + k + ") / (" + g + " + 1))" }
	return "if(_n = 0, nan, if(" + negIdx + " > 0, -" + value("_snk["+negIdx+"]") + ", if(_nt + _z > " + rank + ", 0, " +
		value("_spk["+posIdx+"]") + ")))"
}

func cellKey(bucket uint32, groups []string) string {
	return strconv.FormatUint(uint64(bucket), 10) + "\x00" + strings.Join(groups, "\x00")
}

func (s *Server) fromRaw(ctx context.Context, a AggregateQuery, tenant tenantScope) ([]cell, error) {
	bucket := int64(a.Bucket / time.Second)
	gsql, gargs := groupSQL(a.GroupBy)
	asql, aargs := attrSQL(a.Attributes)
	tsql, targs := tenantSQL(tenant.tenant, tenant.scoped)
	sql := "SELECT toUInt32(intDiv(toUInt32(timestamp), ?) * ?) AS b" + gsql +
		", sum(value_count), sum(value), min(value_min), max(value_max), argMax(value, timestamp_us)," +
		" quantilesExact(0.5, 0.9, 0.95, 0.99)(value), countIf(value_count != 1)" +
		" FROM " + s.cfg.ClickHouse.Database + ".metrics FINAL WHERE name = ?" +
		" AND timestamp >= toDateTime(?) AND timestamp <= toDateTime(?) AND timestamp_us >= ? AND timestamp_us < ?" + tsql + asql +
		" GROUP BY b" + groupNames(len(a.GroupBy)) + " ORDER BY b LIMIT ?"
	args := append([]any{bucket, bucket}, gargs...)
	args = append(args, a.Name, uint32(a.Start.Unix()), uint32(a.End.Unix()), uint64(a.Start.UnixMicro()), uint64(a.End.UnixMicro()))
	args = append(append(append(args, targs...), aargs...), s.cfg.MaxSeriesRows+1)
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("aggregate from raw rows: %w", err)
	}
	defer rows.Close()
	var cells []cell
	var bucketed uint64 // rows that hold many values (an OTLP histogram point each)
	for rows.Next() {
		c := cell{groups: make([]string, len(a.GroupBy))}
		var qs []float64
		var many uint64
		dest := []any{&c.bucket}
		for i := range c.groups {
			dest = append(dest, &c.groups[i])
		}
		dest = append(dest, &c.count, &c.sum, &c.lo, &c.hi, &c.last, &qs, &many)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("aggregate from raw rows: %w", err)
		}
		copy(c.quantiles[:], qs)
		c.hasQuantile = [4]bool{true, true, true, true}
		cells = append(cells, c)
		bucketed += many
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aggregate from raw rows: %w", err)
	}
	if len(cells) > s.cfg.MaxSeriesRows {
		return nil, badParam("group_by", "more than %d bucket x group cells; narrow with attr.<key> filters, a wider bucket or fewer keys", s.cfg.MaxSeriesRows)
	}
	if bucketed > 0 && wantsPercentiles(a.Aggregates) {
		// Their values are known only by bucket: percentiles come from the rollups' sketches.
		return nil, badParam("aggregates", "%s has %d rows that hold many values each (OTLP histograms, known by bucket): its percentiles come "+
			"from the rollups; use a bucket that is a multiple of a rollup tier (%v), a range aligned to it, and source=rollups or auto",
			a.Name, bucketed, s.cfg.RollupTiers)
	}
	return cells, nil
}

func wantsPercentiles(aggs []string) bool {
	for _, a := range aggs {
		if _, ok := quantileOf[a]; ok {
			return true
		}
	}
	return false
}

// rollupType is the aggregation type of a's metric in its rollup windows ("" when there are none).
func (s *Server) rollupType(ctx context.Context, a AggregateQuery, tier int64, tenant tenantScope) (string, error) {
	tsql, targs := tenantSQL(tenant.tenant, tenant.scoped)
	rows, err := s.conn.Query(ctx, "SELECT toString(aggregation_type) FROM "+s.cfg.ClickHouse.Database+".rollups WHERE name = ? AND tier = ?"+
		" AND window_start >= toDateTime(?) AND window_start < toDateTime(?)"+tsql+" LIMIT 1",
		append([]any{a.Name, uint32(tier), uint32(a.Start.Unix()), uint32(a.End.Unix())}, targs...)...)
	if err != nil {
		return "", fmt.Errorf("aggregate from rollups: %w", err)
	}
	defer rows.Close()
	var typ string
	if rows.Next() {
		if err := rows.Scan(&typ); err != nil {
			return "", fmt.Errorf("aggregate from rollups: %w", err)
		}
	}
	return typ, rows.Err()
}
