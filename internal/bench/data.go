package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// fleetRecords makes records of the load generator's fleet (hosts hosts), ready to store: ids
// set, attributes normalised, timestamps spread evenly over [start, start+span).
func fleetRecords(f *loadgen.Fleet, events, metrics int, start time.Time, span time.Duration) ([]schemas.Event, []schemas.Metric, error) {
	es := make([]schemas.Event, events)
	ms := make([]schemas.Metric, metrics)
	var err error
	for i := range es {
		es[i] = f.Event(start.Add(time.Duration(float64(span) * float64(i) / float64(events))))
		es[i].EventID = producer.NewID()
		if es[i].Attributes, err = schemas.NormalizeAttributes(es[i].Attributes); err != nil {
			return nil, nil, err
		}
	}
	for i := range ms {
		ms[i] = f.Metric(start.Add(time.Duration(float64(span) * float64(i) / float64(metrics))))
		ms[i].MetricID = producer.NewID()
		if ms[i].Attributes, err = schemas.NormalizeAttributes(ms[i].Attributes); err != nil {
			return nil, nil, err
		}
	}
	return es, ms, nil
}

// load stores events and metrics of the fleet, spread over [start, start+span), in chunks as a
// worker would (raw rows, and rollup windows when tiers are given), generating the next chunk
// while the last one is written. It returns the trace ids it made, for lookups.
func load(ctx context.Context, conn driver.Conn, database string, f *loadgen.Fleet, events, metrics int, start time.Time, span time.Duration,
	tiers []time.Duration, progress func(done int)) ([]string, error) {
	const chunk = 200000
	type part struct {
		es  []schemas.Event
		ms  []schemas.Metric
		err error
	}
	parts := make(chan part, 1)
	go func() {
		defer close(parts)
		steps := max((events+chunk-1)/chunk, (metrics+chunk-1)/chunk)
		for i := range steps {
			ne := min(chunk, events-i*chunk)
			nm := min(chunk, metrics-i*chunk)
			ne, nm = max(ne, 0), max(nm, 0)
			t0 := start.Add(span * time.Duration(i) / time.Duration(steps))
			es, ms, err := fleetRecords(f, ne, nm, t0, span/time.Duration(steps))
			select {
			case parts <- part{es, ms, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var traces []string
	done, offset := 0, int64(0)
	for p := range parts {
		if p.err != nil {
			return nil, p.err
		}
		if err := consumertest.Write(ctx, conn, database, p.es, p.ms); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if len(tiers) > 0 && len(p.ms) > 0 {
			if err := consumertest.RollUpFrom(ctx, conn, database, p.ms, tiers, offset); err != nil {
				return nil, fmt.Errorf("load rollups: %w", err)
			}
			offset += int64(len(p.ms))
		}
		for i := 0; i < len(p.es); i += 997 {
			traces = append(traces, p.es[i].TraceID)
		}
		done += len(p.es) + len(p.ms)
		if progress != nil {
			progress(done)
		}
	}
	return traces, ctx.Err()
}
