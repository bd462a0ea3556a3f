package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/chdb"
	"github.com/tributary/tributary/internal/kafka"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
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

type env struct {
	brokers []string
	kcfg    kafka.Config
	ch      chdb.Config
}

func newEnv(t *testing.T) env {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq")
	return env{brokers: brokers, ch: testenv.ClickHouse(t), kcfg: kafka.Config{
		Brokers: brokers, ClientID: "it", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 1,
	}}
}

func (e env) workerConfig(group string) consumer.Config {
	return consumer.Config{
		Kafka: e.kcfg, ClickHouse: e.ch, Group: group,
		BatchMaxRecords: 2500, BatchMaxBytes: 16 << 20, BatchInterval: 100 * time.Millisecond,
		RetryBackoffMax: 500 * time.Millisecond, ShutdownTimeout: 30 * time.Second,
		EnableRollups: true, RollupTiers: []time.Duration{time.Minute, time.Hour}, RollupLateness: 5 * time.Second,
		RollupIdleTimeout: time.Minute, RollupMaxWindows: 40, // small: forces shedding and reloading
	}
}

func startWorker(t *testing.T, e env, cfg consumer.Config) (*consumer.Worker, func()) {
	t.Helper()
	conn := testenv.OpenClickHouse(t, e.ch)
	sink, err := consumer.NewClickHouseSink(conn, e.ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	w, err := consumer.New(cfg, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return w, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// genMetrics makes a stream over 16 series of all three types; time moves ~10 ms a point, jittered
// back within the lateness, and 2% of points come minutes late.
func genMetrics(rng *rand.Rand, n int, lateness time.Duration) []schemas.Metric {
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	out := make([]schemas.Metric, n)
	for i := range out {
		s := rng.IntN(16)
		ts := base.Add(time.Duration(i)*10*time.Millisecond - time.Duration(rng.Int64N(int64(lateness))))
		if rng.IntN(50) == 0 {
			ts = ts.Add(-3 * time.Minute)
		}
		out[i] = schemas.Metric{
			MetricID: fmt.Sprintf("m%06d", i), Name: fmt.Sprintf("metric_%d", s%4), Unit: "s", AggregationType: types[s%3],
			Value: math.Round(rng.ExpFloat64()*1e4) / 1e3, Timestamp: ts.Truncate(time.Microsecond),
			Attributes: map[string]any{"host": fmt.Sprintf("h%d", s)},
		}
	}
	return out
}

func produceMetrics(t *testing.T, e env, ms []schemas.Metric) {
	t.Helper()
	codec, _ := schemas.NewCodec()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(ms))
	for i := range ms {
		v, err := codec.AppendMetric(nil, &ms[i])
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: e.kcfg.MetricsTopic, Key: producer.SeriesKey(&ms[i]), Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type wkey struct {
	series uint64
	tier   uint32
	start  uint32
}

type merged struct {
	n                 uint64
	sum, lo, hi, last float64
	lastTS            uint64
	sketch            rollups.Sketch
}

func readRollups(t *testing.T, e env) map[wkey]*merged {
	t.Helper()
	conn := testenv.OpenClickHouse(t, e.ch)
	rows, err := conn.Query(context.Background(), fmt.Sprintf(RollupMergeSQL, e.ch.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[wkey]*merged{}
	for rows.Next() {
		var k wkey
		var m merged
		var pos, neg []any
		if err := rows.Scan(&k.series, &k.tier, &k.start, &m.n, &m.sum, &m.lo, &m.hi, &m.last, &m.lastTS, &pos, &neg, &m.sketch.Zero); err != nil {
			t.Fatal(err)
		}
		m.sketch.Pos = rollups.FromArrays(pos[0].([]int32), pos[1].([]uint64))
		m.sketch.Neg = rollups.FromArrays(neg[0].([]int32), neg[1].([]uint64))
		out[k] = &m
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRollups compares the stored rollups with a brute-force computation over ms.
func checkRollups(t *testing.T, got map[wkey]*merged, ms []schemas.Metric, tiers []int64) {
	t.Helper()
	type acc struct {
		vals   []float64
		sum    float64
		last   float64
		lastTS int64
		typ    schemas.AggregationType
	}
	want := map[wkey]*acc{}
	for i := range ms {
		m := &ms[i]
		id := rollups.SeriesOf(m).ID
		for _, tier := range tiers {
			k := wkey{id, uint32(tier), uint32(m.Timestamp.Unix() / tier * tier)}
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
		if g.n != uint64(len(w.vals)) || g.lo != w.vals[0] || g.hi != w.vals[len(w.vals)-1] || g.last != w.last ||
			g.lastTS != uint64(w.lastTS) || math.Abs(g.sum-w.sum) > 1e-9*math.Max(1, math.Abs(w.sum)) {
			t.Fatalf("window %+v: got n=%d sum=%v min=%v max=%v last=%v, want n=%d sum=%v min=%v max=%v last=%v",
				k, g.n, g.sum, g.lo, g.hi, g.last, len(w.vals), w.sum, w.vals[0], w.vals[len(w.vals)-1], w.last)
		}
		if w.typ == schemas.Histogram {
			for _, q := range []float64{0.5, 0.9, 0.95, 0.99} {
				exact := w.vals[int(q*float64(len(w.vals)-1))]
				est := math.Max(g.lo, math.Min(g.hi, g.sketch.Quantile(q)))
				if math.Abs(est-exact) > rollups.RelativeAccuracy*math.Abs(exact)+1e-12 {
					t.Fatalf("window %+v p%v: %v, exact %v", k, q*100, est, exact)
				}
			}
		}
	}
}

func TestRollupsExactAfterReplay(t *testing.T) {
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g"))
	rng := rand.New(rand.NewPCG(11, 12))
	ms := genMetrics(rng, 30000, cfg.RollupLateness)
	produceMetrics(t, e, ms)

	// A first worker stops part-way through.
	w1, stop1 := startWorker(t, e, cfg)
	waitFor(t, "the first worker to store 10,000 points", 60*time.Second, func() bool { return w1.Stats().Written >= 10000 })
	stop1()

	// Rewind the group to the start: everything is replayed, as after a crash before any commit.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rewind := kadm.Offsets{}
	for p := range int32(4) {
		rewind.Add(kadm.Offset{Topic: e.kcfg.MetricsTopic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	if _, err := adm.CommitOffsets(context.Background(), cfg.Group, rewind); err != nil {
		t.Fatal(err)
	}

	w2, stop2 := startWorker(t, e, cfg)
	waitFor(t, "the second worker to store every point", 90*time.Second, func() bool { return w2.Stats().Written >= uint64(len(ms)) })
	stop2()
	s := w2.Stats()
	if s.Replayed == 0 || s.LatePoints == 0 {
		t.Fatalf("stats %+v: expected replayed and late points", s)
	}

	checkRollups(t, readRollups(t, e), ms, []int64{60, 3600})
	var rawCount uint64
	conn := testenv.OpenClickHouse(t, e.ch)
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+e.ch.Database+".metrics FINAL").Scan(&rawCount); err != nil {
		t.Fatal(err)
	}
	if rawCount != uint64(len(ms)) {
		t.Fatalf("raw metrics: %d rows with FINAL, want %d", rawCount, len(ms))
	}
}
