package consumer

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
