package query_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// Metrics whose rows hold many values (OTLP histogram points, exponential buckets of scale 4)
// aggregate over their values, not their rows: count, sum, min and max from raw rows and from
// rollups are exact; percentiles come from the rollups within the stated error, and raw rows,
// which know the values only by bucket, refuse them naming the remedy.
func TestAggregateOverHistogramRows(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	rng := rand.New(rand.NewPCG(7, 8))
	const scale = 4
	var ms []schemas.Metric
	perMinute := map[int64][]float64{}
	for i := range 600 {
		m := schemas.Metric{MetricID: fmt.Sprintf("h%04d", i), Name: "rpc_latency", Unit: "ms", AggregationType: schemas.Histogram,
			Timestamp: t0.Add(time.Duration(i) * time.Second), Source: schemas.Source{Tenant: "acme"}}
		e := &schemas.ExponentialBuckets{Scale: scale}
		h := &schemas.Distribution{Exponential: e, Min: math.Inf(1), Max: math.Inf(-1)}
		var idx []int64
		for range 1 + rng.IntN(30) {
			v := 1 + math.Round(rng.ExpFloat64()*5000)/100
			h.Count++
			h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
			m.Value += v
			idx = append(idx, int64(math.Ceil(math.Log2(v)*(1<<scale)))-1)
			perMinute[m.Timestamp.Unix()/60*60] = append(perMinute[m.Timestamp.Unix()/60*60], v)
		}
		lo := idx[0]
		for _, i := range idx {
			lo = min(lo, i)
		}
		e.PositiveOffset = int32(lo)
		for _, i := range idx {
			for int(i-lo) >= len(e.PositiveCounts) {
				e.PositiveCounts = append(e.PositiveCounts, 0)
			}
			e.PositiveCounts[i-lo]++
		}
		m.Histogram = h
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, nil, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute}); err != nil {
		t.Fatal(err)
	}
	qcfg := query.Config{ClickHouse: cfg, Listen: "x", DefaultLimit: 100, MaxLimit: 10000, MaxOffset: 100000, Timeout: 10 * time.Second,
		MaxBuckets: 5000, MaxSeriesRows: 100000, RollupTiers: []time.Duration{time.Minute}}
	c := query.NewClient(testenv.QueryServer(t, qcfg), nil)
	q := query.AggregateQuery{Name: "rpc_latency", Bucket: time.Minute, Start: t0, End: t0.Add(10 * time.Minute),
		Aggregates: []string{"count", "sum", "min", "max"}}
	base := 1 << scale
	eps := (math.Exp2(1/float64(base)) - 1) / (math.Exp2(1/float64(base)) + 1)
	bound := eps + rollups.RelativeAccuracy + eps*rollups.RelativeAccuracy
	for _, source := range []string{"raw", "rollups"} {
		q.Source = source
		if source == "rollups" {
			q.Aggregates = append(q.Aggregates, "p50", "p95", "p99")
		}
		a, err := c.Aggregate(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if len(a.Series) != 1 || len(a.Series[0].Points) != 10 {
			t.Fatalf("%s: %+v", source, a.Series)
		}
		for _, p := range a.Series[0].Points {
			vals := append([]float64(nil), perMinute[p.Time.Unix()]...)
			sort.Float64s(vals)
			var sum float64
			for _, v := range vals {
				sum += v
			}
			got := p.Values
			if got["count"] != float64(len(vals)) || math.Abs(got["sum"]-sum) > 1e-9*sum || got["min"] != vals[0] || got["max"] != vals[len(vals)-1] {
				t.Errorf("%s %v: count %v sum %v min %v max %v; want %d %v %v %v", source, p.Time, got["count"], got["sum"], got["min"],
					got["max"], len(vals), sum, vals[0], vals[len(vals)-1])
			}
			for name, q := range map[string]float64{"p50": 0.5, "p95": 0.95, "p99": 0.99} {
				if source == "raw" {
					continue
				}
				want := vals[min(int(q*float64(len(vals))), len(vals)-1)]
				if math.Abs(got[name]-want) > bound*want {
					t.Errorf("%v %s: %v, exact %v: off by %.4f, bound %.4f", p.Time, name, got[name], want, math.Abs(got[name]-want)/want, bound)
				}
			}
		}
	}
	q.Source, q.Aggregates = "raw", []string{"p95"}
	_, err := c.Aggregate(ctx, q)
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "rollups") {
		t.Fatalf("raw percentiles of histogram rows: %v, want a 400 naming the rollups", err)
	}
}
