package testenv

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// RollupMergeSQL is the analysts' query (docs/analysts.md) that merges rollup rows of all source
// partitions into one row per series, tier and window.
const RollupMergeSQL = `
SELECT series_id, tier, toUInt32(window_start) AS ws,
       sum(count) AS n, sum(sum) AS total, min(min) AS lo, max(max) AS hi,
       argMax(last, last_ts_us) AS last_value, max(last_ts_us) AS last_ts,
       sumMap(sketch_pos_keys, sketch_pos_counts) AS pos,
       sumMap(sketch_neg_keys, sketch_neg_counts) AS neg,
       sum(sketch_zero) AS zero
FROM %s.rollups FINAL
GROUP BY series_id, tier, window_start`

// WindowKey names a merged rollup window.
type WindowKey struct {
	Series uint64
	Tier   uint32
	Start  uint32
}

// Merged is a rollup window merged over its source partitions by RollupMergeSQL.
type Merged struct {
	N                 uint64
	Sum, Lo, Hi, Last float64
	LastTS            uint64
	Sketch            rollups.Sketch
}

// ReadRollups reads every rollup window of database, merged over source partitions.
func ReadRollups(t testing.TB, conn driver.Conn, database string) map[WindowKey]*Merged {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(RollupMergeSQL, database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[WindowKey]*Merged{}
	for rows.Next() {
		var k WindowKey
		var m Merged
		var pos, neg []any
		if err := rows.Scan(&k.Series, &k.Tier, &k.Start, &m.N, &m.Sum, &m.Lo, &m.Hi, &m.Last, &m.LastTS, &pos, &neg, &m.Sketch.Zero); err != nil {
			t.Fatal(err)
		}
		m.Sketch.Pos = rollups.FromArrays(pos[0].([]int32), pos[1].([]uint64))
		m.Sketch.Neg = rollups.FromArrays(neg[0].([]int32), neg[1].([]uint64))
		out[k] = &m
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// CheckRollups compares the stored rollups with a brute-force computation over ms.
func CheckRollups(t testing.TB, got map[WindowKey]*Merged, ms []schemas.Metric, tiers []int64) {
	t.Helper()
	type acc struct {
		vals   []float64
		sum    float64
		last   float64
		lastTS int64
		typ    schemas.AggregationType
	}
	want := map[WindowKey]*acc{}
	for i := range ms {
		m := &ms[i]
		id := rollups.SeriesOf(m).ID
		for _, tier := range tiers {
			k := WindowKey{Series: id, Tier: uint32(tier), Start: uint32(m.Timestamp.Unix() / tier * tier)}
			a := want[k]
			if a == nil {
				a = &acc{typ: m.AggregationType, lastTS: math.MinInt64}
				want[k] = a
			}
			a.vals = append(a.vals, m.Value)
			a.sum += m.Value
			if ts := m.Timestamp.UnixMicro(); ts > a.lastTS || (ts == a.lastTS && m.Value > a.last) {
				a.last, a.lastTS = m.Value, ts
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d rollup windows stored, brute force has %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g == nil {
			t.Fatalf("window %+v missing", k)
		}
		sort.Float64s(w.vals)
		if g.N != uint64(len(w.vals)) || g.Lo != w.vals[0] || g.Hi != w.vals[len(w.vals)-1] || g.Last != w.last ||
			g.LastTS != uint64(w.lastTS) || math.Abs(g.Sum-w.sum) > 1e-9*math.Max(1, math.Abs(w.sum)) {
			t.Fatalf("window %+v: got n=%d sum=%v min=%v max=%v last=%v, want n=%d sum=%v min=%v max=%v last=%v",
				k, g.N, g.Sum, g.Lo, g.Hi, g.Last, len(w.vals), w.sum, w.vals[0], w.vals[len(w.vals)-1], w.last)
		}
		if w.typ == schemas.Histogram {
			for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
				exact := w.vals[min(int(q*float64(len(w.vals))), len(w.vals)-1)]
				est := math.Max(g.Lo, math.Min(g.Hi, g.Sketch.Quantile(q)))
				if math.Abs(est-exact) > rollups.RelativeAccuracy*math.Abs(exact)+1e-12 {
					t.Fatalf("window %+v p%v: %v, exact %v", k, q*100, est, exact)
				}
			}
		}
	}
}

// rawWindowsSQL and rollupWindowsSQL read one tier's (%[2]d) windows per series of database %[1]s
// with the same columns: from the raw metrics, and from the rollups merged over source partitions.
const (
	rawWindowsSQL = `
SELECT tenant, name, unit, toString(aggregation_type), attributes, toUInt32(intDiv(toUInt32(timestamp), %[2]d) * %[2]d) AS ws,
       count(), sum(value), min(value), max(value)
FROM %[1]s.metrics FINAL WHERE %[3]s
GROUP BY tenant, name, unit, aggregation_type, attributes, ws`
	rollupWindowsSQL = `
SELECT tenant, name, unit, toString(aggregation_type), attributes, toUInt32(window_start) AS ws,
       sum(count), sum(sum), min(min), max(max)
FROM %[1]s.rollups FINAL WHERE tier = %[2]d AND %[3]s
GROUP BY tenant, name, unit, aggregation_type, attributes, window_start`
)

type seriesWindow struct {
	tenant, name, unit, typ, attrs string
	start                          uint32
}

type windowAgg struct {
	n             uint64
	sum, min, max float64
}

func readWindows(conn driver.Conn, q string) (map[seriesWindow]windowAgg, error) {
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	out := map[seriesWindow]windowAgg{}
	for rows.Next() {
		var k seriesWindow
		var a windowAgg
		if err := rows.Scan(&k.tenant, &k.name, &k.unit, &k.typ, &k.attrs, &k.start, &a.n, &a.sum, &a.min, &a.max); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		out[k] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return out, nil
}

// RollupsMatchRaw checks with SQL over database's tables that, for every series and window of each
// tier (in seconds), the rollups merged over source partitions hold exactly the count, min and max
// of the raw metrics (FINAL) and their sum up to rounding, with no window on one side only. where
// is a condition on the columns both tables have (tenant, name, unit, aggregation_type, attributes)
// choosing the series compared, "1" for all. It returns the number of windows compared.
func RollupsMatchRaw(t testing.TB, conn driver.Conn, database string, tiers []int64, where string) int {
	t.Helper()
	n, err := RollupsDiffRaw(conn, database, tiers, where)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// RollupsDiffRaw is RollupsMatchRaw's check without a test: it returns the first difference (or
// query error) as an error, for waiting until a worker has written every window
// (EventuallyNil), and the number of windows compared.
func RollupsDiffRaw(conn driver.Conn, database string, tiers []int64, where string) (int, error) {
	compared := 0
	for _, tier := range tiers {
		raw, err := readWindows(conn, fmt.Sprintf(rawWindowsSQL, database, tier, where))
		if err != nil {
			return compared, err
		}
		rolled, err := readWindows(conn, fmt.Sprintf(rollupWindowsSQL, database, tier, where))
		if err != nil {
			return compared, err
		}
		if len(raw) != len(rolled) {
			return compared, fmt.Errorf("tier %ds: %d windows in the raw metrics, %d in the rollups", tier, len(raw), len(rolled))
		}
		for k, r := range raw {
			g, ok := rolled[k]
			if !ok {
				return compared, fmt.Errorf("tier %ds: window %+v of the raw metrics has no rollup", tier, k)
			}
			if g.n != r.n || g.min != r.min || g.max != r.max || math.Abs(g.sum-r.sum) > 1e-9*math.Max(1, math.Abs(r.sum)) {
				return compared, fmt.Errorf("tier %ds: window %+v: rollups n=%d sum=%v min=%v max=%v, raw n=%d sum=%v min=%v max=%v",
					tier, k, g.n, g.sum, g.min, g.max, r.n, r.sum, r.min, r.max)
			}
		}
		compared += len(raw)
	}
	return compared, nil
}
