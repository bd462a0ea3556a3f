package consumer

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

const rollupColumns = "tenant, name, unit, aggregation_type, series_id, attributes, attr_keys, attr_values, tier, " +
	"window_start, source_partition, last_offset, count, sum, min, max, last, last_ts_us, " +
	"sketch_pos_keys, sketch_pos_counts, sketch_neg_keys, sketch_neg_counts, sketch_zero, updated_at"

// rollupWriteColumns adds the stored percentiles, which only the query service reads.
const rollupWriteColumns = rollupColumns + ", sketch_p50, sketch_p90, sketch_p95, sketch_p99"

// storedQuantiles are the percentiles written with each window (migration 0005).
var storedQuantiles = [4]float64{0.5, 0.9, 0.95, 0.99}

// WriteWindows stores windows as rows of the rollups table (each replacing the key's older rows).
func (s *ClickHouseStore) WriteWindows(ctx context.Context, ws []*rollups.Window) error {
	if len(ws) == 0 {
		return nil
	}
	n := len(ws)
	var (
		tenant, name, unit, agg, attrs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seriesID, lastOffset, count    = make([]uint64, n), make([]uint64, n), make([]uint64, n)
		lastTS, zero                   = make([]uint64, n), make([]uint64, n)
		keys, values                   = make([][]string, n), make([][]string, n)
		tier, part                     = make([]uint32, n), make([]uint32, n)
		start, updated                 = make([]time.Time, n), make([]time.Time, n)
		sum, mn, mx, last              = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		posK, negK                     = make([][]int32, n), make([][]int32, n)
		posC, negC                     = make([][]uint64, n), make([][]uint64, n)
		qs                             [4][]float64
	)
	for j := range qs {
		qs[j] = make([]float64, n)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for i, w := range ws {
		sr, a := w.Series, &w.Agg
		tenant[i], name[i], unit[i], agg[i], attrs[i] = sr.Tenant, sr.Name, sr.Unit, string(sr.Type), sr.AttrJSON
		seriesID[i], keys[i], values[i] = sr.ID, sr.AttrKeys, sr.AttrValues
		tier[i], start[i], part[i] = uint32(w.Tier), time.Unix(w.Start, 0).UTC(), uint32(w.Partition)
		lastOffset[i], count[i], lastTS[i] = uint64(a.LastOffset), a.Count, uint64(a.LastTS)
		sum[i], mn[i], mx[i], last[i] = a.Sum, a.Min, a.Max, a.Last
		posK[i], posC[i], negK[i], negC[i] = []int32{}, []uint64{}, []int32{}, []uint64{}
		if a.Sketch != nil {
			posK[i], posC[i] = rollups.Arrays(a.Sketch.Pos)
			negK[i], negC[i] = rollups.Arrays(a.Sketch.Neg)
			zero[i] = a.Sketch.Zero
		}
		for j, q := range storedQuantiles {
			qs[j][i] = rollups.QuantileOfArrays(posK[i], posC[i], negK[i], negC[i], zero[i], q) // NaN without a sketch
		}
		updated[i] = now
	}
	return s.insert(ctx, "rollups", rollupWriteColumns, tenant, name, unit, agg, seriesID, attrs, keys, values, tier,
		start, part, lastOffset, count, sum, mn, mx, last, lastTS, posK, posC, negK, negC, zero, updated, qs[0], qs[1], qs[2], qs[3])
}

// LoadWindows returns the stored rows of keys (the latest version of each; keys without a row are
// left out). The series ids travel as an external-data block (_series), not in the statement's
// text, so the statement's size does not grow with the batch: a batch of a million series is one
// statement of a few hundred bytes.
//
// In cluster mode it reads every replica of every shard and keeps each window's newest version
// (see replicas.go).
func (s *ClickHouseStore) LoadWindows(ctx context.Context, keys []rollups.Key) ([]*rollups.Window, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	shards, err := s.rollupReplicas(ctx)
	if err != nil {
		return nil, fmt.Errorf("load rollup windows: %w", err)
	}
	if shards == nil {
		return s.loadWindowsFrom(ctx, s.database+".rollups", keys)
	}
	var out []*rollups.Window
	err = eachShard(shards, func(from string) error {
		ws, err := s.loadWindowsFrom(ctx, from, keys)
		out = append(out, ws...)
		return err
	}, func(r replica) error { return s.replicaComplete(ctx, r) })
	if err != nil {
		return nil, fmt.Errorf("load rollup windows: %w", err)
	}
	return newestWindows(out), nil
}

// loadWindowsFrom is LoadWindows from one table expression (the rollups table, or one replica's
// rollups_local through remote()).
func (s *ClickHouseStore) loadWindowsFrom(ctx context.Context, from string, keys []rollups.Key) ([]*rollups.Window, error) {
	want := make(map[rollups.Key]bool, len(keys))
	series, tiers, parts := map[uint64]bool{}, map[int32]bool{}, map[int32]bool{}
	lo, hi := keys[0].Start, keys[0].Start
	for _, k := range keys {
		want[k] = true
		series[k.Series], tiers[k.Tier], parts[k.Partition] = true, true, true
		lo, hi = min(lo, k.Start), max(hi, k.Start)
	}
	ids, err := ext.NewTable("_series", ext.Column("id", "UInt64"))
	if err != nil {
		return nil, fmt.Errorf("load rollup windows: %w", err)
	}
	for id := range series {
		if err := ids.Append(id); err != nil {
			return nil, fmt.Errorf("load rollup windows: %w", err)
		}
	}
	// The tier and partition lists are bounded by the configuration and the partitions owned; the
	// time range prunes partitions and granules.
	sql := "SELECT " + rollupColumns + " FROM " + from + " FINAL WHERE window_start >= toDateTime(?) AND window_start <= toDateTime(?)" +
		" AND tier IN (" + numList(tiers) + ") AND source_partition IN (" + numList(parts) + ") AND series_id IN _series"
	ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(ids))
	rows, err := s.conn.Query(ctx, sql, uint32(lo), uint32(hi))
	if err != nil {
		return nil, fmt.Errorf("load rollup windows: %w", err)
	}
	defer rows.Close()
	var out []*rollups.Window
	for rows.Next() {
		var (
			sr                              rollups.Series
			agg, attrs                      string
			tier, part                      uint32
			start, updated                  time.Time
			lastOffset, count, lastTS, zero uint64
			a                               rollups.Aggregate
			posK, negK                      []int32
			posC, negC                      []uint64
		)
		if err := rows.Scan(&sr.Tenant, &sr.Name, &sr.Unit, &agg, &sr.ID, &attrs, &sr.AttrKeys, &sr.AttrValues, &tier,
			&start, &part, &lastOffset, &count, &a.Sum, &a.Min, &a.Max, &a.Last, &lastTS,
			&posK, &posC, &negK, &negC, &zero, &updated); err != nil {
			return nil, fmt.Errorf("load rollup windows: %w", err)
		}
		k := rollups.Key{Series: sr.ID, Tier: int32(tier), Start: start.Unix(), Partition: int32(part)}
		if !want[k] {
			continue
		}
		sr.Type, sr.AttrJSON = schemas.AggregationType(agg), attrs
		if _, err = schemas.ParseAttributesJSON([]byte(attrs)); err != nil { // publishing it must not fail later
			return nil, Permanent(fmt.Errorf("load rollup windows: series %x: %w", sr.ID, err))
		}
		a.Count, a.LastTS, a.LastOffset = count, int64(lastTS), int64(lastOffset)
		if sr.Type == schemas.Histogram {
			a.Sketch = &rollups.Sketch{Pos: rollups.FromArrays(posK, posC), Neg: rollups.FromArrays(negK, negC), Zero: zero}
		}
		out = append(out, &rollups.Window{Key: k, Series: &sr, Agg: a})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load rollup windows: %w", err)
	}
	return out, nil
}

// LatestWindows returns, for each partition in since, the newest stored window start of each tier
// at or after since[p] (Unix seconds; tiers without such a row are left out). One statement reads
// two small columns of the partitions' recent rows; the engine anchors a partition with it once,
// when the worker starts or is assigned it.
// In cluster mode it reads every replica of every shard (see replicas.go).
func (s *ClickHouseStore) LatestWindows(ctx context.Context, since map[int32]int64) (map[int32]map[int32]int64, error) {
	if len(since) == 0 {
		return nil, nil
	}
	shards, err := s.rollupReplicas(ctx)
	if err != nil {
		return nil, fmt.Errorf("latest rollup windows: %w", err)
	}
	if shards == nil {
		return s.latestWindowsFrom(ctx, s.database+".rollups", since)
	}
	out := map[int32]map[int32]int64{}
	err = eachShard(shards, func(from string) error {
		got, err := s.latestWindowsFrom(ctx, from, since)
		for p, tiers := range got {
			for tier, start := range tiers {
				if out[p] == nil {
					out[p] = map[int32]int64{}
				}
				out[p][tier] = max(out[p][tier], start)
			}
		}
		return err
	}, func(r replica) error { return s.replicaComplete(ctx, r) })
	if err != nil {
		return nil, fmt.Errorf("latest rollup windows: %w", err)
	}
	return out, nil
}

// latestWindowsFrom is LatestWindows from one table expression.
func (s *ClickHouseStore) latestWindowsFrom(ctx context.Context, from string, since map[int32]int64) (map[int32]map[int32]int64, error) {
	parts := make(map[int32]bool, len(since))
	lo := int64(math.MaxUint32)
	for p, t := range since {
		parts[p] = true
		lo = min(lo, t)
	}
	lo = max(lo, 0)
	rows, err := s.conn.Query(ctx, "SELECT source_partition, tier, toUInt32(max(window_start)) FROM "+from+
		" WHERE window_start >= toDateTime(?) AND source_partition IN ("+numList(parts)+") GROUP BY source_partition, tier", uint32(lo))
	if err != nil {
		return nil, fmt.Errorf("latest rollup windows: %w", err)
	}
	defer rows.Close()
	out := map[int32]map[int32]int64{}
	for rows.Next() {
		var part, tier, latest uint32
		if err := rows.Scan(&part, &tier, &latest); err != nil {
			return nil, fmt.Errorf("latest rollup windows: %w", err)
		}
		if int64(latest) < since[int32(part)] {
			continue
		}
		if out[int32(part)] == nil {
			out[int32(part)] = map[int32]int64{}
		}
		out[int32(part)][int32(tier)] = int64(latest)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest rollup windows: %w", err)
	}
	return out, nil
}

func numList[T uint64 | int32](set map[T]bool) string {
	var b strings.Builder
	for v := range set {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, v)
	}
	return b.String()
}
