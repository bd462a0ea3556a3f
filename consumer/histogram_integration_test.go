package consumer_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

// genHistograms makes histogram points (as the gateway makes of OTLP histogram data points:
// explicit and exponential buckets) and points of one value of the same two series, over three
// minutes, with what they hold in total.
func genHistograms(rng *rand.Rand, n int) (ms []schemas.Metric, count uint64, sum, lo, hi float64) {
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range n {
		m := schemas.Metric{MetricID: fmt.Sprintf("h%05d", i), Name: "latency", Unit: "ms", AggregationType: schemas.Histogram,
			Timestamp: base.Add(time.Duration(i) * 180 * time.Second / time.Duration(n)), Attributes: map[string]any{"host": fmt.Sprintf("h%d", i%2)}}
		vals := make([]float64, 1+rng.IntN(20))
		for j := range vals {
			vals[j] = 0.1 + math.Round(rng.ExpFloat64()*4000)/100
		}
		h := &schemas.Distribution{Min: math.Inf(1), Max: math.Inf(-1)}
		switch i % 3 {
		case 0:
			h.Bounds, h.Counts = []float64{1, 5, 10, 50}, make([]uint64, 5)
		case 1:
			h.Exponential = &schemas.ExponentialBuckets{Scale: 2, PositiveOffset: -20, PositiveCounts: make([]uint64, 60)}
		default:
			vals = vals[:1] // a point of one value
		}
		for _, v := range vals {
			m.Value += v
			h.Count++
			h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
			switch {
			case h.Counts != nil:
				k := 0
				for k < len(h.Bounds) && v > h.Bounds[k] {
					k++
				}
				h.Counts[k]++
			case h.Exponential != nil:
				idx := int(math.Ceil(math.Log2(v)*4)) - 1
				h.Exponential.PositiveCounts[idx+20]++
			}
		}
		if i%3 != 2 {
			m.Histogram = h
		}
		count += h.Count
		sum += m.Value
		lo, hi = math.Min(lo, h.Min), math.Max(hi, h.Max)
		ms = append(ms, m)
	}
	return ms, count, sum, lo, hi
}

// Histogram points go through the consumer into their raw columns and into the rollups exactly:
// each value once through a crash-like replay from offset 0 and records re-sent with the same ids.
func TestHistogramsStoredRawAndRolledUpOnce(t *testing.T) {
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g"))
	cfg.RollupMaxWindows = 100000
	ms, count, sum, lo, hi := genHistograms(rand.New(rand.NewPCG(5, 6)), 3000)
	produceMetrics(t, e, ms)
	produceMetrics(t, e, ms[:500]) // re-sent: the same records again

	w1, stop1 := startWorker(t, e, cfg)
	testenv.Eventually(t, "the first worker to store 1,000 records", 60*time.Second, func() bool { return w1.Stats().Written >= 1000 })
	stop1()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rewind := kadm.Offsets{}
	for p := range int32(4) {
		rewind.Add(kadm.Offset{Topic: e.kcfg.MetricsTopic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	if _, err := kadm.NewClient(cl).CommitOffsets(context.Background(), cfg.Group, rewind); err != nil {
		t.Fatal(err)
	}
	w2, stop2 := startWorker(t, e, cfg)
	defer stop2()
	testenv.Eventually(t, "the second worker to store every record", 90*time.Second, func() bool { return w2.Stats().Written >= uint64(len(ms)+500) })

	conn := testenv.OpenClickHouse(t, e.ch)
	ctx := context.Background()
	var rows, gotCount uint64
	var gotSum, gotLo, gotHi float64
	if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(), sum(value_count), sum(value), min(value_min), max(value_max)
		FROM %s.metrics FINAL WHERE name = 'latency'`, e.ch.Database)).Scan(&rows, &gotCount, &gotSum, &gotLo, &gotHi); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(len(ms)) || gotCount != count || math.Abs(gotSum-sum) > 1e-9*sum || gotLo != lo || gotHi != hi {
		t.Fatalf("raw rows %d values %d sum %v min %v max %v; want %d, %d, %v, %v, %v", rows, gotCount, gotSum, gotLo, gotHi, len(ms), count, sum, lo, hi)
	}
	// Each shape's columns hold what the record held.
	for _, m := range ms[:3] {
		var vc, zero uint64
		var vmin, vmax, zt float64
		var bounds []float64
		var counts, pos, neg []uint64
		var scale, posOff, negOff int32
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT value_count, value_min, value_max, bucket_bounds, bucket_counts, exp_scale,
			exp_zero_count, exp_zero_threshold, exp_positive_offset, exp_positive_counts, exp_negative_offset, exp_negative_counts
			FROM %s.metrics FINAL WHERE metric_id = ?`, e.ch.Database), m.MetricID).Scan(&vc, &vmin, &vmax, &bounds, &counts, &scale,
			&zero, &zt, &posOff, &pos, &negOff, &neg); err != nil {
			t.Fatal(err)
		}
		want := m.Histogram
		if want == nil {
			want = &schemas.Distribution{Count: 1, Min: m.Value, Max: m.Value}
		}
		got := &schemas.Distribution{Count: vc, Min: vmin, Max: vmax, Bounds: nilIfEmpty(bounds), Counts: nilIfEmpty(counts)}
		if want.Exponential != nil {
			got.Exponential = &schemas.ExponentialBuckets{Scale: scale, ZeroCount: zero, ZeroThreshold: zt, PositiveOffset: posOff,
				PositiveCounts: nilIfEmpty(pos), NegativeOffset: negOff, NegativeCounts: nilIfEmpty(neg)}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("row of %s: %+v %+v, want %+v %+v", m.MetricID, got, got.Exponential, want, want.Exponential)
		}
	}

	// The 1-minute windows hold every value once, and their sketches as many values.
	testenv.Eventually(t, "the rollups to hold every value", 30*time.Second, func() bool {
		var c, sketched uint64
		var s, l, h float64
		err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT sum(count), sum(arraySum(sketch_pos_counts) + arraySum(sketch_neg_counts) + sketch_zero),
			sum(sum), min(min), max(max) FROM %s.rollups FINAL WHERE name = 'latency' AND tier = 60`, e.ch.Database)).Scan(&c, &sketched, &s, &l, &h)
		if err != nil {
			t.Fatal(err)
		}
		if c > count || sketched > count {
			t.Fatalf("rollups count %d (sketch %d) values of %d: counted twice", c, sketched, count)
		}
		return c == count && sketched == count && math.Abs(s-sum) <= 1e-9*sum && l == lo && h == hi
	})
	if st := w2.Stats(); st.Poison != 0 {
		t.Fatalf("%d records dead-lettered", st.Poison)
	}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
