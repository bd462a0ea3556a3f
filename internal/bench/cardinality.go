package bench

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/tributary/tributary/schemas"
)

// runCardinality: the same number of metric points through a worker (the consumer role's
// settings, rollups on) spread over 1,000, 100,000 and 1,000,000 active series, each point in a
// fresh topic and database, so the cost of cardinality is a ratio to the 1,000-series run. At a
// million series the rollups hold ROLLUP_MAX_WINDOWS windows and shed the rest to ClickHouse.
func runCardinality(ctx context.Context, e *Env, s *Section) error {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	points := pick(e, 1000000, 20000)
	counts := pick(e, []int{1000, 100000, 1000000}, []int{100, 2000, 20000})
	runs := pick(e, 2, 1)
	at := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Minute)
	rates := make([][]float64, len(counts))
	for run := range runs {
		for i := range counts {
			j := (i + run) % len(counts) // alternate the order between runs
			r, err := workerSide(ctx, e, nil, seriesPoints(counts[j], points, at))
			if err != nil {
				return fmt.Errorf("%d series: %w", counts[j], err)
			}
			rates[j] = append(rates[j], r)
			e.cleanup()
			e.logf("cardinality run %d: %d series, %.0f points/s", run+1, counts[j], r)
		}
	}
	base := fmt.Sprintf("%s active series", thousands(int64(counts[0])))
	s.Figures = append(s.Figures, measure("worker points/s at "+base, "points/s", rates[0]))
	for i := 1; i < len(counts); i++ {
		s.Figures = append(s.Figures, compare(fmt.Sprintf("worker points/s at %s active series", thousands(int64(counts[i]))),
			"points/s", rates[i], base, rates[0]))
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Each run pre-loads %s metric points (a third each counters, gauges, histograms; "+
		"UUID ids; 100 tenants) into a fresh 4-partition topic and database and times a worker with the consumer role's "+
		"settings from its start until every point is stored. The points cycle through the series in order, all within one "+
		"minute of event time, so every series has one 1 m and one 1 h window; past ROLLUP_MAX_WINDOWS (200,000) the worker "+
		"sheds the oldest windows to ClickHouse (and publishes them) as new series arrive.", thousands(int64(points))))
	return nil
}

// seriesPoints returns n metric points cycling through series distinct series (100 tenants,
// hosts × 100 metric names), within the minute starting at at.
func seriesPoints(series, n int, at time.Time) []schemas.Metric {
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	tenants := make([]string, 100)
	for i := range tenants {
		tenants[i] = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("bench-tenant", i))).String()
	}
	out := make([]schemas.Metric, n)
	for i := range out {
		sr := i % series
		out[i] = schemas.Metric{
			MetricID: uuid.Must(uuid.NewV7()).String(), Name: fmt.Sprintf("fleet_metric_%02d", sr%100), Unit: "ms",
			AggregationType: types[sr%3], Value: float64((i*7919)%10007) / 8,
			Timestamp:  at.Add(time.Duration(i) * 50 * time.Second / time.Duration(n)),
			Attributes: map[string]any{"host": fmt.Sprintf("host-%06d.fleet.example", sr/100), "region": fmt.Sprintf("r%d", sr%7)},
			Source:     schemas.Source{Tenant: tenants[sr%100]},
		}
	}
	return out
}
