package consumer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// memSink stores event and metric ids; it fails the first failFirst writes.
type memSink struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	events    []string
	metrics   []string
	windows   int
}

func (s *memSink) Write(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.failFirst {
		return errors.New("clickhouse is down")
	}
	s.events = append(s.events, b.Events.EventID...)
	s.metrics = append(s.metrics, b.Metrics.MetricID...)
	return nil
}

func (s *memSink) LoadWindows(context.Context, []rollups.Key) ([]*rollups.Window, error) {
	return nil, nil
}

// LatestWindows: a memSink never returns a stored window, so nothing is stored.
func (s *memSink) LatestWindows(context.Context, map[int32]int64) (map[int32]map[int32]int64, error) {
	return nil, nil
}

func (s *memSink) WriteWindows(_ context.Context, ws []*rollups.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows += len(ws)
	return nil
}

func (s *memSink) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events), len(s.metrics)
}

func testConfig(brokers []string) Config {
	c := DefaultConfig()
	c.Kafka = kafka.Config{Brokers: brokers, ClientID: "t", EventsTopic: "ev", MetricsTopic: "me", RollupsTopic: "ro", DLQTopic: "dlq",
		TopicPartitions: 3, TopicReplication: 1}
	c.Group, c.BatchMaxRecords, c.BatchMaxBytes, c.BatchInterval = "g", 50, 1<<20, 50*time.Millisecond
	c.RetryBackoffMax, c.ShutdownTimeout = 20*time.Millisecond, 5*time.Second
	c.RollupTiers, c.RollupLateness, c.RollupMaxWindows = []time.Duration{time.Minute}, time.Second, 1000
	c.RollupMaxNewSeries = 0 // no cardinality guard unless a test turns it on
	return c
}

func seed(t *testing.T, brokers []string, events, metrics int, poison [][]byte) {
	t.Helper()
	codec, _ := schemas.NewCodec()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	ts := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	for i := range events {
		e := schemas.Event{EventID: "e" + string(rune('a'+i%26)) + time.Duration(i).String(), Type: "t", Name: "n", Timestamp: ts}
		v, _ := codec.AppendEvent(nil, &e)
		recs = append(recs, &kgo.Record{Topic: "ev", Value: v})
		if i < len(poison) {
			recs = append(recs, &kgo.Record{Topic: "ev", Value: poison[i]})
		}
	}
	for i := range metrics {
		m := schemas.Metric{MetricID: "m" + time.Duration(i).String(), Name: "n", AggregationType: schemas.Gauge, Timestamp: ts}
		v, _ := codec.AppendMetric(nil, &m)
		recs = append(recs, &kgo.Record{Topic: "me", Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// deepEvent is valid Avro that another producer could write: an event whose attributes nest depth
// levels, deeper than the SDK allows. It must be dead-lettered at decode, not stored.
func deepEvent(t *testing.T, depth int) []byte {
	t.Helper()
	var v any = "leaf"
	for range depth - 1 {
		v = map[string]any{"k": v}
	}
	codec, _ := schemas.NewCodec()
	e := schemas.Event{EventID: "deep", Type: "t", Name: "n", Timestamp: time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC),
		Attributes: map[string]any{"d": v}}
	b, err := codec.AppendEvent(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readTopic(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("%s holds %d records, want %d", topic, len(out), n)
	}
	return out
}

func runUntil(t *testing.T, w *Worker, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	deadline := time.After(30 * time.Second)
	for !done() {
		select {
		case <-deadline:
			cancel()
			t.Fatalf("timed out; stats %+v", w.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestWorkerWritesEverythingSkipsPoisonAndCommitsAfterWrite(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "ev", "me", "ro", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	poison := [][]byte{nil, []byte("not avro"), {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 0, 0, 0, 7}, deepEvent(t, 20)}
	seed(t, brokers, 300, 200, poison)

	sink := &memSink{failFirst: 3} // ClickHouse refuses the first writes: nothing may be lost
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := New(testConfig(brokers), sink, log)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { e, m := sink.counts(); return e == 300 && m == 200 })
	s := w.Stats()
	if s.Poison != uint64(len(poison)) || s.Retries != 3 || s.Written != 500 || s.Consumed != uint64(500+len(poison)) {
		t.Fatalf("stats %+v", s)
	}
	// Every poison record is on the dead-letter topic, bytes intact, with its reason and origin.
	dl := readTopic(t, brokers, "dlq", len(poison))
	for _, r := range dl {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[HeaderReason] == "" || h[HeaderTopic] != "ev" || h[HeaderOffset] == "" || h[HeaderPartition] == "" {
			t.Fatalf("dead letter headers %v", h)
		}
	}
	if sink.windows == 0 {
		t.Fatal("no rollup windows were written")
	}
	seen := map[string]bool{}
	for _, id := range sink.events {
		if seen[id] {
			t.Fatalf("event %s written twice", id)
		}
		seen[id] = true
	}

	// Everything was committed: a new worker in the same group finds nothing to do.
	sink2 := &memSink{}
	w2, _ := New(testConfig(brokers), sink2, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if e, m := sink2.counts(); e+m != 0 || w2.Stats().Consumed != 0 {
		t.Fatalf("second worker re-read %d events, %d metrics: offsets were not committed", e, m)
	}
}

// A worker stopped while the sink refuses every write commits nothing: the next worker gets it all.
func TestWorkerCommitsNothingItCouldNotWrite(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "ev", "me", "ro", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	seed(t, brokers, 40, 10, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := testConfig(brokers)
	cfg.ShutdownTimeout = 100 * time.Millisecond
	down := &memSink{failFirst: 1 << 30}
	w, _ := New(cfg, down, log)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	for w.Stats().Retries < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("Run reported a clean stop although its batch was never written")
	}
	up := &memSink{}
	w2, _ := New(testConfig(brokers), up, log)
	runUntil(t, w2, func() bool { e, m := up.counts(); return e == 40 && m == 10 })
}
