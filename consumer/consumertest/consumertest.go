// Package consumertest fills a ClickHouse database's tables the way consumer workers do, without
// Kafka: for tests of what reads them (the query service, the documented SQL, retention,
// dashboards) and for the benchmark harness's data. It is not part of a running pipeline.
package consumertest

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// Write stores records in database's events and metrics tables as a worker does
// (consumer.ClickHouseStore), ingested now. The records must be valid with normalised attributes.
func Write(ctx context.Context, conn driver.Conn, database string, events []schemas.Event, metrics []schemas.Metric) error {
	st, err := consumer.NewClickHouseStore(conn, database)
	if err != nil {
		return err
	}
	return st.Write(ctx, consumer.NewBatch(events, metrics, time.Now()))
}

// RollUp rolls metrics up as a worker does, as partition 0 with offsets in slice order, and stores
// the windows of tiers in database's rollups table.
func RollUp(ctx context.Context, conn driver.Conn, database string, metrics []schemas.Metric, tiers []time.Duration) error {
	return RollUpFrom(ctx, conn, database, metrics, tiers, 0)
}

// RollUpFrom is RollUp for one of several successive slices of partition 0: the slice's first
// point has offset first, so that the windows a later slice adds to replace the rows an earlier
// one stored, as they would in a worker. The benchmark harness loads its data with it.
func RollUpFrom(ctx context.Context, conn driver.Conn, database string, metrics []schemas.Metric, tiers []time.Duration, first int64) error {
	st, err := consumer.NewClickHouseStore(conn, database)
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
	now := time.Now()
	if err := e.Ingest(ctx, st, pts, nil, now); err != nil {
		return err
	}
	_, err = e.Flush(ctx, st, now)
	return err
}
