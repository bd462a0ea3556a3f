package consumer

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// WriteForTest writes records to database's tables the way a worker does, for tests of what reads
// them. The records must be valid with normalised attributes.
func WriteForTest(ctx context.Context, conn driver.Conn, database string, events []schemas.Event, metrics []schemas.Metric) error {
	sink, err := NewClickHouseSink(conn, database)
	if err != nil {
		return err
	}
	b := newBatch()
	now := time.Now().UTC().Truncate(time.Second)
	for i := range events {
		b.addEvent(&events[i], now)
	}
	for i := range metrics {
		b.addMetric(&metrics[i], now, nil)
	}
	return sink.Write(ctx, b)
}

// RollUpForTest rolls metrics up as a worker does (partition 0, offsets in slice order) and writes
// the windows, for tests of what reads the rollups table.
func RollUpForTest(ctx context.Context, conn driver.Conn, database string, metrics []schemas.Metric, tiers []time.Duration) error {
	return RollUpFrom(ctx, conn, database, metrics, tiers, 0)
}

// RollUpFrom is RollUpForTest for one of several successive slices of partition 0: the slice's
// first point has offset first, so that windows rewritten by a later slice replace earlier rows.
// The benchmark harness loads its data with it.
func RollUpFrom(ctx context.Context, conn driver.Conn, database string, metrics []schemas.Metric, tiers []time.Duration, first int64) error {
	sink, err := NewClickHouseSink(conn, database)
	if err != nil {
		return err
	}
	cfg := rollups.DefaultConfig()
	cfg.Tiers = tiers
	e, err := rollups.New(cfg)
	if err != nil {
		return err
	}
	pts := make([]rollups.Point, len(metrics))
	for i := range metrics {
		pts[i] = rollups.Point{Series: rollups.SeriesOf(&metrics[i]), Value: metrics[i].Value, TS: metrics[i].Timestamp.UnixMicro(), Offset: first + int64(i),
			Hist: metrics[i].Histogram}
	}
	missing := e.Missing(pts)
	found, err := sink.LoadWindows(ctx, missing)
	if err != nil {
		return err
	}
	e.Resolve(missing, found)
	if err := e.Apply(pts); err != nil {
		return err
	}
	return sink.WriteWindows(ctx, e.Dirty())
}
