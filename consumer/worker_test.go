package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// memStore stores event and metric ids; it fails the first failFirst writes.
type memStore struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	events    []string
	metrics   []string
	windows   int
}

func (s *memStore) Write(_ context.Context, b *Batch) error {
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

func (s *memStore) LoadWindows(context.Context, []rollups.Key) ([]*rollups.Window, error) {
	return nil, nil
}

// LatestWindows: a memStore never returns a stored window, so nothing is stored.
func (s *memStore) LatestWindows(context.Context, map[int32]int64) (map[int32]map[int32]int64, error) {
	return nil, nil
}

func (s *memStore) WriteWindows(_ context.Context, ws []*rollups.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows += len(ws)
	return nil
}

func (s *memStore) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events), len(s.metrics)
}

// fakeBrokers starts a kfake cluster with the topics ev, me, ro and dlq (3 partitions each) for
// the test and returns its addresses; it is closed when the test ends.
func fakeBrokers(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "ev", "me", "ro", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
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

// readTopic reads everything on topic, which must be n records.
func readTopic(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	out := testenv.ReadTopics(t, brokers, 10*time.Second, topic)
	if len(out) != n {
		t.Fatalf("%s holds %d records, want %d", topic, len(out), n)
	}
	return out
}

// runUntil runs w until done holds (within 30 s) and then stops it.
func runUntil(t *testing.T, w *Worker, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	testenv.EventuallyNil(t, "the worker to do its work", 30*time.Second, func() error {
		if done() {
			return nil
		}
		return fmt.Errorf("stats %+v", w.Stats())
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestWorkerWritesEverythingSkipsPoisonAndCommitsAfterWrite(t *testing.T) {
	brokers := fakeBrokers(t)
	poison := [][]byte{nil, []byte("not avro"), {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 0, 0, 0, 7}, deepEvent(t, 20)}
	seed(t, brokers, 300, 200, poison)

	store := &memStore{failFirst: 3} // ClickHouse refuses the first writes: nothing may be lost
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := New(testConfig(brokers), store, log)
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { e, m := store.counts(); return e == 300 && m == 200 })
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
	if store.windows == 0 {
		t.Fatal("no rollup windows were written")
	}
	seen := map[string]bool{}
	for _, id := range store.events {
		if seen[id] {
			t.Fatalf("event %s written twice", id)
		}
		seen[id] = true
	}

	// Everything was committed: a new worker in the same group finds nothing to do.
	nextStore := &memStore{}
	w2, _ := New(testConfig(brokers), nextStore, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w2.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if e, m := nextStore.counts(); e+m != 0 || w2.Stats().Consumed != 0 {
		t.Fatalf("second worker re-read %d events, %d metrics: offsets were not committed", e, m)
	}
}

// A worker stopped while the store refuses every write commits nothing: the next worker gets it all.
func TestWorkerCommitsNothingItCouldNotWrite(t *testing.T) {
	brokers := fakeBrokers(t)
	seed(t, brokers, 40, 10, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := testConfig(brokers)
	cfg.ShutdownTimeout = 100 * time.Millisecond
	down := &memStore{failFirst: 1 << 30}
	w, _ := New(cfg, down, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	testenv.Eventually(t, "two failed attempts", 30*time.Second, func() bool { return w.Stats().Retries >= 2 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("Run reported a clean stop although its batch was never written")
	}
	up := &memStore{}
	w2, _ := New(testConfig(brokers), up, log)
	runUntil(t, w2, func() bool { e, m := up.counts(); return e == 40 && m == 10 })
}
