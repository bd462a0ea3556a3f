package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/rollups"
)

// aggRow is count, sum, min and max of a metric's points in a window.
type aggRow struct {
	n        uint64
	sum      float64
	min, max float64
}

// A tenant whose label explodes (500 new series a minute, the cap 100) and a tenant with a stable
// fleet: every point is stored raw; the first tenant's points past the cap are rolled up under the
// overflow series, which with its normal series adds up exactly to the raw points; the series
// admitted in one minute stay known in the next although their windows were shed; the other
// tenant is not touched; the overflow is counted and logged; a replay by a worker that remembers
// nothing changes no row.
func TestCardinalityGuardRollsNewSeriesPastTheCapIntoOverflow(t *testing.T) {
	const limit, exploding, stable = 100, 500, 50
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g")) // RollupMaxWindows 40: windows are shed all along
	cfg.RollupMaxNewSeries, cfg.RollupKnownSeries, cfg.RollupNewSeriesGrace = limit, 100000, 0
	a, b := uuid.NewString(), uuid.NewString()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := fleetMetrics(a, exploding, 0, at)
	ms = append(ms, fleetMetrics(a, exploding, 1, at.Add(time.Minute))...)
	ms = append(ms, fleetMetrics(b, stable, 0, at)...)
	ms = append(ms, fleetMetrics(b, stable, 1, at.Add(time.Minute))...)
	produceMetrics(t, e, ms)

	var logs testenv.SyncBuffer
	conn := testenv.OpenClickHouse(t, e.ch)
	w, reg := runGuarded(t, e, cfg, conn, &logs, len(ms))

	// Minute 1: 100 of tenant A's 500 series are admitted, 400 points overflow. Minute 2: those
	// 100 are known, 100 more are admitted, 300 overflow. Tenant B's 50 are admitted once.
	s := w.Stats()
	if s.OverflowPoints != 700 || s.NewSeries != 250 || s.CappedMinutes != 2 || s.Written != uint64(len(ms)) {
		t.Fatalf("stats %+v: want 700 overflow points, 250 new series, 2 capped minutes, %d written", s, len(ms))
	}
	if got := gauge(t, reg, "tributary_rollup_overflow_points_total"); got != 700 {
		t.Fatalf("tributary_rollup_overflow_points_total %v, want 700", got)
	}
	if n := strings.Count(logs.String(), "new-series cap"); n != 2 || !strings.Contains(logs.String(), "tenant="+a) || strings.Contains(logs.String(), "tenant="+b) {
		t.Fatalf("want two cap log lines, both for tenant %s:\n%s", a, logs.String())
	}

	db := e.ch.Database
	var raw uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".metrics FINAL").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != uint64(len(ms)) {
		t.Fatalf("raw metrics: %d rows, want all %d", raw, len(ms))
	}
	// Per metric and window, normal and overflow series together hold exactly the raw points.
	for _, tier := range []struct {
		seconds uint32
		floor   string
		windows int // tenants x aggregation types x windows
	}{{60, "toStartOfMinute", 2 * 3 * 2}, {3600, "toStartOfHour", 2 * 3}} {
		want := readAgg(t, conn, fmt.Sprintf("SELECT tenant, name, toString(aggregation_type), toUInt32(%s(timestamp)), count(), sum(value), min(value), max(value)"+
			" FROM %s.metrics FINAL GROUP BY tenant, name, aggregation_type, %s(timestamp)", tier.floor, db, tier.floor))
		got := readAgg(t, conn, fmt.Sprintf("SELECT tenant, name, toString(aggregation_type), toUInt32(window_start), sum(count), sum(sum), min(min), max(max)"+
			" FROM %s.rollups FINAL WHERE tier = %d GROUP BY tenant, name, aggregation_type, window_start", db, tier.seconds))
		if len(got) != len(want) || len(want) != tier.windows {
			t.Fatalf("tier %d: %d metric windows in rollups, raw has %d", tier.seconds, len(got), len(want))
		}
		for k, r := range want {
			if got[k] != r {
				t.Fatalf("tier %d, %s: rollups %+v, raw %+v", tier.seconds, k, got[k], r)
			}
		}
	}
	// Analysts see the overflow as the metric's series with attributes {"tributary.overflow":"true"}.
	rows, err := conn.Query(context.Background(), "SELECT tenant, series_id, toUInt32(window_start), sum(count) FROM "+db+
		".rollups FINAL WHERE tier = 60 AND has(attr_keys, 'tributary.overflow') GROUP BY tenant, series_id, window_start")
	if err != nil {
		t.Fatal(err)
	}
	overflowIDs := map[uint64]bool{}
	for i := range 3 { // the metric's three aggregation types are three metrics
		overflowIDs[rollups.SeriesOf(&ms[i]).Overflow().ID] = true
	}
	perMinute := map[uint32]uint64{}
	for rows.Next() {
		var tenant string
		var id uint64
		var start uint32
		var n uint64
		if err := rows.Scan(&tenant, &id, &start, &n); err != nil {
			t.Fatal(err)
		}
		if tenant != a || !overflowIDs[id] {
			t.Fatalf("overflow row of tenant %s, series %x: want only tenant A's overflow series", tenant, id)
		}
		perMinute[start] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if m0, m1 := uint32(at.Unix()), uint32(at.Unix()+60); len(perMinute) != 2 || perMinute[m0] != 400 || perMinute[m1] != 300 {
		t.Fatalf("overflow points per minute %v: want 400 at %d and 300 at %d", perMinute, m0, m1)
	}

	// Everything replayed (the group rewound, as after a crash before any commit) by a new worker
	// that knows no series: each point goes where it was counted, and no row changes.
	before := rollupRows(t, conn, db)
	rewind(t, e, cfg.Group)
	w2, _ := runGuarded(t, e, cfg, conn, io.Discard, len(ms))
	if s := w2.Stats(); s.Replayed == 0 || s.OverflowPoints != 0 || s.NewSeries != 0 {
		t.Fatalf("replay stats %+v: every point was counted already", s)
	}
	if after := rollupRows(t, conn, db); after != before {
		t.Fatalf("the replay changed the rollup rows:\nbefore %s\nafter  %s", before, after)
	}
}

// runGuarded runs a worker, registered with a new registry and logging to logs, until it has
// stored n records, and stops it.
func runGuarded(t *testing.T, e env, cfg consumer.Config, conn driver.Conn, logs io.Writer, n int) (*consumer.Worker, *prometheus.Registry) {
	t.Helper()
	store, err := consumer.NewClickHouseStore(conn, e.ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	w, err := consumer.New(cfg, store, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := w.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	testenv.Eventually(t, "every point to be stored", 90*time.Second, func() bool { return w.Stats().Written >= uint64(n) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return w, reg
}

// rewind commits offset 0 for every partition of the metrics topic: the group consumes it again.
func rewind(t *testing.T, e env, group string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offsets := kadm.Offsets{}
	for p := range int32(4) {
		offsets.Add(kadm.Offset{Topic: e.kcfg.MetricsTopic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	if _, err := kadm.NewClient(cl).CommitOffsets(context.Background(), group, offsets); err != nil {
		t.Fatal(err)
	}
}

// rollupRows renders every rollup row (latest version) in key order.
func rollupRows(t *testing.T, conn driver.Conn, db string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT series_id, tier, toUInt32(window_start), source_partition, last_offset, count, sum FROM "+
		db+".rollups FINAL ORDER BY series_id, tier, window_start, source_partition")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, last, n uint64
		var tier, start, part uint32
		var sum float64
		if err := rows.Scan(&id, &tier, &start, &part, &last, &n, &sum); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%x/%d/%d/%d:%d,%d,%v;", id, tier, start, part, last, n, sum)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readAgg reads rows of (tenant, name, type, window, count, sum, min, max), keyed by the first four.
func readAgg(t *testing.T, conn driver.Conn, sql string) map[string]aggRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]aggRow{}
	for rows.Next() {
		var tenant, name, typ string
		var start uint32
		var r aggRow
		if err := rows.Scan(&tenant, &name, &typ, &start, &r.n, &r.sum, &r.min, &r.max); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s/%s/%s/%d", tenant, name, typ, start)] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// gauge reads the value of an unlabelled counter or gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
