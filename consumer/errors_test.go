package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary/tributary/rollups"
)

func TestIsPermanent(t *testing.T) {
	f := func(err error, want bool) {
		t.Helper()
		if got := IsPermanent(err); got != want {
			t.Fatalf("IsPermanent(%v) = %v, want %v", err, got, want)
		}
	}
	f(nil, false)
	f(errors.New("dial tcp 127.0.0.1:19000: connect: connection refused"), false)
	f(context.DeadlineExceeded, false)
	f(fmt.Errorf("load rollup windows: %w", &clickhouse.Exception{Code: 62, Message: "Max query size exceeded"}), true)
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 242, Message: "Table is in readonly mode"}), false)
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}), false)
	// What a replicated cluster answers while ZooKeeper or a shard is down: retried, never dead-lettered.
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 225, Message: "Cannot use ZooKeeper"}), false)                 // NO_ZOOKEEPER
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 999, Message: "Connection loss"}), false)                      // KEEPER_EXCEPTION
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 319, Message: "Unknown status of insert"}), false)             // UNKNOWN_STATUS_OF_INSERT
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 279, Message: "All connection tries failed"}), false)          // ALL_CONNECTION_TRIES_FAILED
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 210, Message: "Connection refused (127.0.0.1:31003)"}), false) // NETWORK_ERROR
	f(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 241, Message: "Memory limit exceeded"}), false)
	f(Permanent(errors.New("bad row")), true)
	f(errors.Join(errors.New("x"), Permanent(errors.New("bad row"))), true)
	f(fmt.Errorf("produce: %w", kerr.MessageTooLarge), true)
	f(fmt.Errorf("produce: %w", kerr.NotLeaderForPartition), false)
}

// chaosStore answers every call at random: success, a retryable failure before or after storing
// (an insert whose answer was lost), and a permanent refusal of any write holding a refused id, as
// ClickHouse refuses a whole block for one bad row.
type chaosStore struct {
	mu      sync.Mutex
	rng     *rand.Rand
	refuse  map[string]bool
	rows    map[string]int // id -> times stored
	windows map[rollups.Key]*rollups.Window
	calls   int
}

func (s *chaosStore) roll() (fail, afterStore bool) {
	s.calls++
	switch r := s.rng.IntN(10); {
	case r < 3:
		return true, false
	case r < 4:
		return true, true
	}
	return false, false
}

var errChaos = errors.New("chaos: connection reset by peer")

func (s *chaosStore) Write(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Like ClickHouseStore: events, then metrics, each kind once it is stored is not written again.
	for _, kind := range []struct {
		ids  []string
		done *bool
	}{{b.Events.EventID, &b.eventsWritten}, {b.Metrics.MetricID, &b.metricsWritten}} {
		if *kind.done || len(kind.ids) == 0 {
			continue
		}
		for _, id := range kind.ids {
			if s.refuse[id] {
				return Permanent(fmt.Errorf("insert: %w", &clickhouse.Exception{Code: 117, Message: "Incorrect data in row " + id}))
			}
		}
		fail, after := s.roll()
		if fail && !after {
			return errChaos
		}
		for _, id := range kind.ids {
			s.rows[id]++
		}
		if fail {
			return errChaos
		}
		*kind.done = true
	}
	return nil
}

func (s *chaosStore) LoadWindows(_ context.Context, keys []rollups.Key) ([]*rollups.Window, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fail, _ := s.roll(); fail {
		return nil, errChaos
	}
	var out []*rollups.Window
	for _, k := range keys {
		if w, ok := s.windows[k]; ok {
			c := *w
			out = append(out, &c)
		}
	}
	return out, nil
}

func (s *chaosStore) LatestWindows(_ context.Context, since map[int32]int64) (map[int32]map[int32]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fail, _ := s.roll(); fail {
		return nil, errChaos
	}
	out := map[int32]map[int32]int64{}
	for k := range s.windows {
		if t, ok := since[k.Partition]; ok && k.Start >= t {
			if out[k.Partition] == nil {
				out[k.Partition] = map[int32]int64{}
			}
			if l, ok := out[k.Partition][k.Tier]; !ok || k.Start > l {
				out[k.Partition][k.Tier] = k.Start
			}
		}
	}
	return out, nil
}

func (s *chaosStore) WriteWindows(_ context.Context, ws []*rollups.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail, after := s.roll()
	if fail && !after {
		return errChaos
	}
	for _, w := range ws {
		c := *w
		s.windows[w.Key] = &c
	}
	if fail {
		return errChaos
	}
	return nil
}

// Random answers from the store never stop the partition: every record is stored, the ones the
// store refuses for their content are dead-lettered with the reason (and only they), and rollups
// count every point once.
func TestRandomStoreFailuresLoseNothingAndStopNothing(t *testing.T) {
	brokers := fakeBrokers(t)
	const events, metrics = 600, 400
	seed(t, brokers, events, metrics, nil)

	// seed's ids: events "e<letter><i as duration>", metrics "m<i as duration>".
	refuse := map[string]bool{}
	for _, i := range []int{3, 77, 78, 401, 599} {
		refuse["e"+string(rune('a'+i%26))+time.Duration(i).String()] = true
	}
	for _, i := range []int{0, 250, 399} {
		refuse["m"+time.Duration(i).String()] = true
	}
	store := &chaosStore{rng: rand.New(rand.NewPCG(7, 8)), refuse: refuse, rows: map[string]int{}, windows: map[rollups.Key]*rollups.Window{}}
	cfg := testConfig(brokers)
	w, err := New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stored := func() int {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.rows)
	}
	// Written counts stored rows only: with the refused ones it adds up to the records (counting a
	// refused row as written overshoots and never matches).
	runUntil(t, w, func() bool {
		s := w.Stats()
		return stored() == events+metrics-len(refuse) && s.Refused == uint64(len(refuse)) && s.Written+s.Refused == uint64(events+metrics)
	})

	store.mu.Lock()
	defer store.mu.Unlock()
	for id := range store.rows {
		if refuse[id] {
			t.Fatalf("refused row %s was stored", id)
		}
	}
	dl := readTopic(t, brokers, "dlq", len(refuse))
	for _, r := range dl {
		reason := ""
		for _, h := range r.Headers {
			if h.Key == HeaderReason {
				reason = string(h.Value)
			}
		}
		if !strings.Contains(reason, "clickhouse refused the row") || !strings.Contains(reason, "Incorrect data") {
			t.Fatalf("dead letter reason %q", reason)
		}
	}
	var counted uint64
	for _, win := range store.windows {
		counted += win.Agg.Count
	}
	if counted != metrics { // one tier: each point once (metric rows refused raw still count in rollups)
		t.Fatalf("rollups counted %d points, want %d", counted, metrics)
	}
	if store.calls < 20 || w.Stats().Retries == 0 {
		t.Fatalf("the store was hardly exercised: %d calls, stats %+v", store.calls, w.Stats())
	}
}

// A batch whose rollups the store refuses for good is stored raw, left out of the rollups and
// counted; the partition goes on.
func TestPermanentRollupFailureSkipsTheBatchesRollups(t *testing.T) {
	brokers := fakeBrokers(t)
	seed(t, brokers, 0, 120, nil)
	store := &refuseWindows{}
	w, err := New(testConfig(brokers), store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runUntil(t, w, func() bool { return w.Stats().Written == 120 })
	if s := w.Stats(); s.RollupSkip != 120 || s.Windows != 0 {
		t.Fatalf("stats %+v: want every point skipped and no window written", s)
	}
}

type refuseWindows struct{ memStore }

func (s *refuseWindows) WriteWindows(context.Context, []*rollups.Window) error {
	return Permanent(errors.New("rollups: refused"))
}
