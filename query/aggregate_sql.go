package query

import (
	"context"
	"fmt"
	"net/http"
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
	writeJSON(w, http.StatusOK, AggregateAnswer{
		Name: a.Name, Source: source, BucketSeconds: int64(a.Bucket / time.Second),
		Start: a.Start.Format(time.RFC3339Nano), End: a.End.Format(time.RFC3339Nano), Series: assemble(a, cells),
	})
}

// groupSQL returns the group-by expressions (each key bound as a parameter) and their arguments.
func groupSQL(keys []string) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(keys))
	for i, k := range keys {
		fmt.Fprintf(&b, ", attr_values[indexOf(attr_keys, ?)] AS g%d", i)
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
	for _, k := range sortedStringKeys(attrs) {
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

func (s *Server) fromRollups(ctx context.Context, a AggregateQuery, tier int64, tenant tenantScope) ([]cell, error) {
	bucket := int64(a.Bucket / time.Second)
	gsql, gargs := groupSQL(a.GroupBy)
	asql, aargs := attrSQL(a.Attributes)
	tsql, targs := tenantSQL(tenant.tenant, tenant.scoped)
	sql := "SELECT toUInt32(intDiv(toUInt32(window_start), ?) * ?) AS b" + gsql +
		", sum(count), sum(sum), min(min), max(max), argMax(last, last_ts_us)," +
		" sumMap(sketch_pos_keys, sketch_pos_counts), sumMap(sketch_neg_keys, sketch_neg_counts), sum(sketch_zero)" +
		" FROM " + s.cfg.ClickHouse.Database + ".rollups FINAL WHERE name = ? AND tier = ?" +
		" AND window_start >= toDateTime(?) AND window_start < toDateTime(?)" + tsql + asql +
		" GROUP BY b" + groupNames(len(a.GroupBy)) + " ORDER BY b LIMIT ?"
	args := append([]any{bucket, bucket}, gargs...)
	args = append(args, a.Name, uint32(tier), uint32(a.Start.Unix()), uint32(a.End.Unix()))
	args = append(append(append(args, targs...), aargs...), s.cfg.MaxSeriesRows+1)
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("aggregate from rollups: %w", err)
	}
	defer rows.Close()
	var cells []cell
	for rows.Next() {
		c := cell{groups: make([]string, len(a.GroupBy))}
		var pos, neg []any
		var zero uint64
		dest := []any{&c.bucket}
		for i := range c.groups {
			dest = append(dest, &c.groups[i])
		}
		dest = append(dest, &c.count, &c.sum, &c.lo, &c.hi, &c.last, &pos, &neg, &zero)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("aggregate from rollups: %w", err)
		}
		sk := rollups.Sketch{Pos: rollups.FromArrays(pos[0].([]int32), pos[1].([]uint64)),
			Neg: rollups.FromArrays(neg[0].([]int32), neg[1].([]uint64)), Zero: zero}
		c.quantiles = sketchQuantiles(a.Aggregates, &sk, c.lo, c.hi)
		cells = append(cells, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aggregate from rollups: %w", err)
	}
	if len(cells) > s.cfg.MaxSeriesRows {
		return nil, badParam("group_by", "more than %d bucket x group cells; narrow with attr.<key> filters, a wider bucket or fewer keys", s.cfg.MaxSeriesRows)
	}
	return cells, nil
}

func (s *Server) fromRaw(ctx context.Context, a AggregateQuery, tenant tenantScope) ([]cell, error) {
	bucket := int64(a.Bucket / time.Second)
	gsql, gargs := groupSQL(a.GroupBy)
	asql, aargs := attrSQL(a.Attributes)
	tsql, targs := tenantSQL(tenant.tenant, tenant.scoped)
	sql := "SELECT toUInt32(intDiv(toUInt32(timestamp), ?) * ?) AS b" + gsql +
		", count(), sum(value), min(value), max(value), argMax(value, timestamp_us), quantilesExact(0.5, 0.9, 0.95, 0.99)(value)" +
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
	for rows.Next() {
		c := cell{groups: make([]string, len(a.GroupBy))}
		var qs []float64
		dest := []any{&c.bucket}
		for i := range c.groups {
			dest = append(dest, &c.groups[i])
		}
		dest = append(dest, &c.count, &c.sum, &c.lo, &c.hi, &c.last, &qs)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("aggregate from raw rows: %w", err)
		}
		c.quantiles = map[string]float64{"p50": qs[0], "p90": qs[1], "p95": qs[2], "p99": qs[3]}
		cells = append(cells, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aggregate from raw rows: %w", err)
	}
	if len(cells) > s.cfg.MaxSeriesRows {
		return nil, badParam("group_by", "more than %d bucket x group cells; narrow with attr.<key> filters, a wider bucket or fewer keys", s.cfg.MaxSeriesRows)
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
