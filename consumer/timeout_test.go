package consumer

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// hangStore's first Write hangs until its context ends, as a ClickHouse that stopped answering
// would; it records the deadline it was given.
type hangStore struct {
	memStore
	hung     chan struct{}
	deadline time.Duration // of the hung call, from when it started
	hadOne   bool
}

func (s *hangStore) Write(ctx context.Context, b *Batch) error {
	select {
	case <-s.hung:
	default:
		d, ok := ctx.Deadline()
		s.deadline, s.hadOne = time.Until(d), ok
		close(s.hung)
		<-ctx.Done()
		return ctx.Err()
	}
	return s.memStore.Write(ctx, b)
}

// An attempt to store a batch that hangs is cut off at CONSUMER_WRITE_TIMEOUT and retried:
// nothing is lost and the retry is counted.
func TestHungWriteIsCutAtWriteTimeoutAndRetried(t *testing.T) {
	brokers := fakeBrokers(t)
	seed(t, brokers, 30, 20, nil)
	cfg := testConfig(brokers)
	cfg.WriteTimeout = 300 * time.Millisecond
	store := &hangStore{hung: make(chan struct{})}
	w, err := New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { e, m := store.counts(); return e == 30 && m == 20 })
	if !store.hadOne || store.deadline > cfg.WriteTimeout {
		t.Fatalf("the hung write's deadline: %v (set: %v), want at most the write timeout %v", store.deadline, store.hadOne, cfg.WriteTimeout)
	}
	if s := w.Stats(); s.Retries == 0 || s.Written != 50 {
		t.Fatalf("stats %+v: want the cut-off attempt counted as a retry and all 50 records written", s)
	}
}
