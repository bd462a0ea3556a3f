package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

type env struct {
	brokers []string
	kcfg    kafka.Config
	ch      chdb.Config
}

func newEnv(t testing.TB) env {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq")
	return env{brokers: brokers, ch: testenv.ClickHouse(t), kcfg: kafka.Config{
		Brokers: brokers, ClientID: "it", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 1,
	}}
}

func (e env) workerConfig(group string) consumer.Config {
	c := consumer.DefaultConfig()
	c.Kafka, c.ClickHouse, c.Group = e.kcfg, e.ch, group
	c.BatchMaxRecords, c.BatchMaxBytes, c.BatchInterval = 2500, 16<<20, 100*time.Millisecond
	c.RetryBackoffMax, c.RollupLateness, c.RollupDedupeIDs = 500*time.Millisecond, 5*time.Second, 100000
	c.RollupMaxWindows = 40  // small: forces shedding and reloading
	c.RollupMaxNewSeries = 0 // no cardinality guard unless a test turns it on
	return c
}

func startWorker(t testing.TB, e env, cfg consumer.Config) (*consumer.Worker, func()) {
	t.Helper()
	conn := testenv.OpenClickHouse(t, e.ch)
	store, err := consumer.NewClickHouseStore(conn, e.ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	w, err := consumer.New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

func TestRollupsExactAfterReplay(t *testing.T) {
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g"))
	rng := rand.New(rand.NewPCG(11, 12))
	ms := genMetrics(rng, 30000, cfg.RollupLateness)
	produceMetrics(t, e, ms)

	// A first worker stops part-way through.
	w1, stop1 := startWorker(t, e, cfg)
	testenv.Eventually(t, "the first worker to store 10,000 points", 60*time.Second, func() bool { return w1.Stats().Written >= 10000 })
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
	testenv.Eventually(t, "the second worker to store every point", 90*time.Second, func() bool { return w2.Stats().Written >= uint64(len(ms)) })
	stop2()
	s := w2.Stats()
	if s.Replayed == 0 || s.LatePoints == 0 {
		t.Fatalf("stats %+v: expected replayed and late points", s)
	}

	testenv.CheckRollups(t, testenv.ReadRollups(t, testenv.OpenClickHouse(t, e.ch), e.ch.Database), ms, []int64{60, 3600})
	checkPublished(t, e)
	var rawCount uint64
	conn := testenv.OpenClickHouse(t, e.ch)
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+e.ch.Database+".metrics FINAL").Scan(&rawCount); err != nil {
		t.Fatal(err)
	}
	if rawCount != uint64(len(ms)) {
		t.Fatalf("raw metrics: %d rows with FINAL, want %d", rawCount, len(ms))
	}
}

// Several workers in one group share the partitions; together they store everything exactly once.
func TestWorkersShareThePartitions(t *testing.T) {
	e := newEnv(t)
	cfg := e.workerConfig(testenv.Unique("g"))
	cfg.RollupMaxWindows = 100000
	ms := genMetrics(rand.New(rand.NewPCG(21, 22)), 20000, cfg.RollupLateness)
	w1, stop1 := startWorker(t, e, cfg)
	w2, stop2 := startWorker(t, e, cfg)
	w3, stop3 := startWorker(t, e, cfg)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	testenv.Eventually(t, "three group members with partitions", 60*time.Second, func() bool {
		groups, err := adm.DescribeGroups(context.Background(), cfg.Group)
		if err != nil {
			return false
		}
		g := groups[cfg.Group]
		if g.State != "Stable" || len(g.Members) != 3 {
			return false
		}
		withParts := 0
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				withParts++
			}
		}
		return withParts >= 2
	})
	produceMetrics(t, e, ms)
	total := func() uint64 { return w1.Stats().Written + w2.Stats().Written + w3.Stats().Written }
	testenv.Eventually(t, "the workers to store every point", 90*time.Second, func() bool { return total() >= uint64(len(ms)) })
	stop1()
	stop2()
	stop3()
	busy := 0
	for _, w := range []*consumer.Worker{w1, w2, w3} {
		if w.Stats().Consumed > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Fatalf("only %d of 3 workers consumed anything: partitions were not shared", busy)
	}
	testenv.CheckRollups(t, testenv.ReadRollups(t, testenv.OpenClickHouse(t, e.ch), e.ch.Database), ms, []int64{60, 3600})
}

// checkPublished reads the rollups topic: every message decodes, and for each window and partition
// the newest published version (highest last_offset) holds what the rollups table holds.
func checkPublished(t *testing.T, e env) {
	t.Helper()
	codec, _ := schemas.NewCodec()
	type key struct {
		series    uint64
		tier      int32
		start     int64
		partition int32
	}
	latest := map[key]schemas.Rollup{}
	for _, r := range testenv.ReadTopics(t, e.brokers, 30*time.Second, e.kcfg.RollupsTopic) {
		ro, err := codec.DecodeRollup(r.Value)
		if err != nil {
			t.Fatalf("a published rollup does not decode: %v", err)
		}
		k := key{ro.SeriesID, ro.TierSeconds, ro.WindowStart.Unix(), ro.SourcePartition}
		if old, ok := latest[k]; !ok || ro.LastOffset >= old.LastOffset {
			latest[k] = ro
		}
	}
	finals := 0
	conn := testenv.OpenClickHouse(t, e.ch)
	for k, ro := range latest {
		if !ro.Final {
			continue
		}
		finals++
		var count uint64
		var sum float64
		if err := conn.QueryRow(context.Background(), "SELECT count, sum FROM "+e.ch.Database+".rollups FINAL WHERE series_id = ? AND tier = ? AND window_start = toDateTime(?) AND source_partition = ?",
			k.series, uint32(k.tier), uint32(k.start), uint32(k.partition)).Scan(&count, &sum); err != nil {
			t.Fatalf("published window %+v has no row: %v", k, err)
		}
		if count != ro.Count || math.Abs(sum-ro.Sum) > 1e-9*math.Max(1, math.Abs(sum)) {
			t.Fatalf("published window %+v: count %d sum %v, the table has %d and %v", k, ro.Count, ro.Sum, count, sum)
		}
	}
	if finals == 0 {
		t.Fatal("no closed window was published on the rollups topic")
	}
}
