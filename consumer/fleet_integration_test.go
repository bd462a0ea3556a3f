package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

// fleetMetrics makes one point for each of n series (a host per series, as a fleet has), all in
// one minute, with real UUIDs for ids and tenant.
func fleetMetrics(tenant string, n int, pass int, at time.Time) []schemas.Metric {
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	out := make([]schemas.Metric, n)
	for i := range out {
		out[i] = schemas.Metric{
			MetricID: uuid.Must(uuid.NewV7()).String(), Name: "fleet_metric", Unit: "ms", AggregationType: types[i%3],
			Value:     float64(i%1000) + float64(pass)/4,
			Timestamp: at.Add(time.Duration(i) * time.Microsecond),
			Attributes: map[string]any{
				"host": fmt.Sprintf("host-%06d-%s", i, uuid.NewSHA1(uuid.NameSpaceDNS, []byte(fmt.Sprint(i))).String()),
			},
			Source: schemas.Source{Tenant: tenant},
		}
	}
	return out
}

// A batch with more distinct series than fit in one statement's text (about 12,500 did not) must
// still reload its rollup windows: the worker sheds windows to a small in-memory bound, so the
// second pass over 30,000 series reloads 30,000 series' windows from ClickHouse in one batch.
func TestManySeriesInOneBatchDoNotWedgeThePartition(t *testing.T) {
	const series = 30000
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g"))
	cfg.BatchMaxRecords, cfg.BatchInterval = 2*series, 3*time.Second
	cfg.RollupMaxWindows = 1000 // sheds nearly every window: the second pass must load them back
	tenant := uuid.NewString()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	first := fleetMetrics(tenant, series, 0, at)
	produceMetrics(t, e, first)

	w, stop := startWorker(t, e, cfg)
	testenv.Eventually(t, "the first pass to be stored", 120*time.Second, func() bool { return w.Stats().Written >= series })
	second := fleetMetrics(tenant, series, 1, at.Add(time.Second))
	produceMetrics(t, e, second)
	testenv.Eventually(t, "the second pass to be stored (a wedged partition never stores it)", 120*time.Second,
		func() bool { return w.Stats().Written >= 2*series })
	stop()

	all := append(first, second...)
	conn := testenv.OpenClickHouse(t, e.ch)
	var raw uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+e.ch.Database+".metrics FINAL").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != uint64(len(all)) {
		t.Fatalf("raw metrics: %d rows, want %d", raw, len(all))
	}
	testenv.CheckRollups(t, testenv.ReadRollups(t, conn, e.ch.Database), all, []int64{60, 3600})
}

// Metrics re-sent with the same id (a client's retry after a timeout, 503 or 504, which the
// gateway stamps with the same timestamp) are counted once in raw rows and once in the rollups,
// whether the re-send arrives in the same batch or after the first copy was stored.
func TestResentMetricsCountOnceInRawAndRollups(t *testing.T) {
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g"))
	cfg.RollupMaxWindows = 100000
	tenant := uuid.NewString()
	ms := fleetMetrics(tenant, 10, 0, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	produceMetrics(t, e, ms)
	produceMetrics(t, e, ms) // re-sent before the worker saw the first copy: same batch
	w, stop := startWorker(t, e, cfg)
	testenv.Eventually(t, "both copies to be stored", 60*time.Second, func() bool { return w.Stats().Written >= 20 })
	produceMetrics(t, e, ms) // re-sent after the first copies were stored and committed
	testenv.Eventually(t, "the third copy to be stored", 60*time.Second, func() bool { return w.Stats().Written >= 30 })
	stop()
	if s := w.Stats(); s.Resent != 20 {
		t.Fatalf("stats %+v: want 20 re-sent points skipped by the rollups", s)
	}
	conn := testenv.OpenClickHouse(t, e.ch)
	var raw uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+e.ch.Database+".metrics FINAL").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != uint64(len(ms)) {
		t.Fatalf("raw metrics: %d rows, want %d", raw, len(ms))
	}
	testenv.CheckRollups(t, testenv.ReadRollups(t, conn, e.ch.Database), ms, []int64{60, 3600})
}
