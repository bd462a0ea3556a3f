package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// flakyStore refuses for their content the writes holding a row whose id is in refuse (the whole
// write, as ClickHouse refuses a block for one row), and fails every failEvery-th write (0: none)
// with a retryable error, as a flaky connection does.
type flakyStore struct {
	memStore
	refuse    map[string]bool
	failEvery int
	writes    int
}

func (s *flakyStore) Write(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failEvery > 0 && s.writes%s.failEvery == 0 {
		return errors.New("read tcp: connection reset by peer")
	}
	// Like ClickHouseStore: events, then metrics, a kind stored is not written again.
	for _, kind := range []struct {
		ids    []string
		done   *bool
		stored *[]string
	}{{b.Events.EventID, &b.eventsWritten, &s.events}, {b.Metrics.MetricID, &b.metricsWritten, &s.metrics}} {
		if *kind.done || len(kind.ids) == 0 {
			continue
		}
		for _, id := range kind.ids {
			if s.refuse[id] {
				return Permanent(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 6, Message: "Cannot parse " + id}))
			}
		}
		*kind.stored = append(*kind.stored, kind.ids...)
		*kind.done = true
	}
	return nil
}

func (s *flakyStore) stored() (events, metrics map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, metrics = map[string]int{}, map[string]int{}
	for _, id := range s.events {
		events[id]++
	}
	for _, id := range s.metrics {
		metrics[id]++
	}
	return events, metrics
}

// Writing a refused batch in parts survives retryable failures on the way: it resumes where it
// stopped. It used to start over, so a connection failing every fourth write (each attempt got
// three writes, the parts of a 50-row batch need about a dozen) stopped the partition for good.
func TestRefusedBatchIsolationResumesAfterRetryableFailures(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ev", "me", "ro", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	seed(t, brokers, 200, 0, nil)
	bad := "e" + string(rune('a'+77%26)) + time.Duration(77).String() // seed's id of event 77
	store := &flakyStore{refuse: map[string]bool{bad: true}, failEvery: 4}
	w, err := New(testConfig(brokers), store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { e, _ := store.stored(); return len(e) == 199 && w.Stats().Refused == 1 })
	events, _ := store.stored()
	if events[bad] != 0 {
		t.Fatal("the refused row was stored")
	}
	if dl := readTopic(t, brokers, "dlq", 1); len(dl) != 1 {
		t.Fatalf("%d dead letters", len(dl))
	}
}

// When a batch's events are refused, its metrics (not yet tried) are written, not dead-lettered
// with the events' reason: a batch with one metric used to dead-letter it untried.
func TestRefusedEventsDoNotDeadLetterTheBatchsMetrics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ev", "me", "ro", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	seed(t, brokers, 1, 1, nil)
	codecIDs := [2]string{"ea0s", "m0s"} // seed's ids of event 0 and metric 0
	store := &flakyStore{refuse: map[string]bool{codecIDs[0]: true}}
	cfg := testConfig(brokers)
	cfg.BatchMaxRecords, cfg.BatchInterval = 2, 10*time.Second // one batch holds both records
	w, err := New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { return w.Stats().Batches == 1 })
	_, metrics := store.stored()
	if s := w.Stats(); metrics[codecIDs[1]] != 1 || s.Refused != 1 {
		t.Fatalf("stats %+v, metrics stored %v: want the metric stored and only the event refused", s, metrics)
	}
}
