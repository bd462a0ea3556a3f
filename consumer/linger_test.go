package consumer

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/testenv"
)

// With the writer idle, a batch far from full is stored CONSUMER_BATCH_LINGER after its first
// record, long before its CONSUMER_BATCH_INTERVAL: runUntil gives up after 30 s, the interval is
// a minute.
func TestIdleWriterStoresABatchAfterTheLinger(t *testing.T) {
	brokers := fakeBrokers(t)
	seed(t, brokers, 30, 20, nil)
	cfg := testConfig(brokers)
	cfg.BatchMaxRecords, cfg.BatchInterval, cfg.BatchLinger = 10_000, time.Minute, 50*time.Millisecond
	store := &memStore{}
	w, err := New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { e, m := store.counts(); return e == 30 && m == 20 && w.Stats().Commits > 0 })
}

// firstWaitStore's first Write waits until open is closed; it records the records of every write.
type firstWaitStore struct {
	memStore
	open    chan struct{}
	entered chan struct{}
	once    sync.Once

	sizesMu sync.Mutex
	sizes   []int
}

func (s *firstWaitStore) Write(ctx context.Context, b *Batch) error {
	s.sizesMu.Lock()
	s.sizes = append(s.sizes, len(b.Events.EventID)+len(b.Metrics.MetricID))
	s.sizesMu.Unlock()
	first := false
	s.once.Do(func() { first = true; close(s.entered) })
	if first {
		select {
		case <-s.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.memStore.Write(ctx, b)
}

func (s *firstWaitStore) writes() []int {
	s.sizesMu.Lock()
	defer s.sizesMu.Unlock()
	return slices.Clone(s.sizes)
}

// While the writer is busy, the next batch keeps gathering past the linger and is stored as one
// batch once the writer is free: the linger does not break the batches up at high rates.
func TestBusyWriterLetsTheNextBatchGrowPastTheLinger(t *testing.T) {
	brokers := fakeBrokers(t)
	cfg := testConfig(brokers)
	// Every batch has lingered as soon as it has a record: only the busy writer holds it back.
	cfg.BatchMaxRecords, cfg.BatchInterval, cfg.BatchLinger = 10_000, time.Minute, time.Nanosecond
	cfg.EnableRollups = false // no empty batches to close idle windows
	store := &firstWaitStore{open: make(chan struct{}), entered: make(chan struct{})}
	w, err := New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()

	seed(t, brokers, 10, 0, nil)
	testenv.Eventually(t, "the first batch to reach the store", 30*time.Second, func() bool {
		select {
		case <-store.entered:
			return true
		default:
			return false
		}
	})
	// The next records come in five polls; the poll loop keeps gathering them (a loop that handed
	// the batch over would wait for the writer and poll no more).
	for i := range 5 {
		seed(t, brokers, 0, 5, nil)
		testenv.Eventually(t, "the worker to poll the next records", 30*time.Second, func() bool { return w.Stats().Consumed == uint64(15+5*i) })
	}
	close(store.open)
	testenv.Eventually(t, "both batches to be stored", 30*time.Second, func() bool { e, m := store.counts(); return e == 10 && m == 25 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := store.writes(); !slices.Equal(got, []int{10, 25}) {
		t.Fatalf("writes of %v records, want [10 25]: the batch gathered while the writer was busy was split", got)
	}
}
