package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// gateStore stores event ids; its first Write blocks until release is closed.
type gateStore struct {
	mu       sync.Mutex
	ids      map[string]int
	entered  chan struct{}
	release  chan struct{}
	gated    bool
	gateOnce sync.Once
}

func (s *gateStore) Write(_ context.Context, b *Batch) error {
	if s.gated && len(b.Events.EventID) > 0 {
		s.gateOnce.Do(func() { close(s.entered); <-s.release })
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range b.Events.EventID {
		s.ids[id]++
	}
	return nil
}

func (s *gateStore) LoadWindows(context.Context, []rollups.Key) ([]*rollups.Window, error) {
	return nil, nil
}
func (s *gateStore) LatestWindows(context.Context, map[int32]int64) (map[int32]map[int32]int64, error) {
	return nil, nil
}
func (s *gateStore) WriteWindows(context.Context, []*rollups.Window) error { return nil }

// A rebalance forced while a batch is being written does not move its partitions until the batch
// is stored and committed: the new member gets nothing meanwhile, and afterwards every record is
// stored exactly once (a partition moved early is consumed again by its new owner from the last
// commit: duplicates).
func TestRebalanceWaitsForTheBatchInFlight(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 4, "ev", "me", "ro", "dlq")
	const n = 2000
	codec, _ := schemas.NewCodec()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		e := schemas.Event{EventID: uuid.NewString(), TraceID: uuid.NewString(), Type: "t", Name: "n",
			Timestamp: time.Date(2025, 1, 15, 10, 0, 0, i, time.UTC)}
		v, _ := codec.AppendEvent(nil, &e)
		recs = append(recs, &kgo.Record{Topic: topics[0], Key: []byte(e.TraceID), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "rb", EventsTopic: topics[0], MetricsTopic: topics[1], RollupsTopic: topics[2],
		DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 1}
	cfg.Group, cfg.BatchMaxRecords, cfg.BatchMaxBytes, cfg.BatchInterval = testenv.Unique("g"), 5000, 16<<20, 200*time.Millisecond
	cfg.RetryBackoffMax, cfg.ShutdownTimeout, cfg.EnableRollups = 100*time.Millisecond, 10*time.Second, false
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s1 := &gateStore{ids: map[string]int{}, entered: make(chan struct{}), release: make(chan struct{}), gated: true}
	s2 := &gateStore{ids: map[string]int{}}
	w1, _ := New(cfg, s1, log)
	w2, _ := New(cfg, s2, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // on a failure: Run stores what it holds once the gate opens, and returns
	release := sync.OnceFunc(func() { close(s1.release) })
	defer release()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, w := range []*Worker{w1, w2} {
		if i == 1 {
			select { // the second member joins while the first one's batch is being written
			case <-s1.entered:
			case <-time.After(60 * time.Second):
				t.Fatal("the first worker never wrote a batch")
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = w.Run(ctx) }()
	}
	// While the batch is held, the new member must get no record (it would be a duplicate). Once it
	// is a member of the group, only the old owner's revoke, waiting for the batch, keeps its
	// partitions; a revoke that did not wait would hand them over within a heartbeat or two (3 s).
	adm := kadm.NewClient(cl)
	testenv.Eventually(t, "the new member to join the group", 30*time.Second, func() bool {
		groups, err := adm.DescribeGroups(context.Background(), cfg.Group)
		return err == nil && len(groups[cfg.Group].Members) == 2
	})
	testenv.Never(t, "the new member consumed records while the old owner's batch was still being written", 10*time.Second,
		func() bool { return w2.Stats().Consumed > 0 })
	release()
	stored := func() int {
		s1.mu.Lock()
		s2.mu.Lock()
		defer s1.mu.Unlock()
		defer s2.mu.Unlock()
		seen := map[string]bool{}
		for id := range s1.ids {
			seen[id] = true
		}
		for id := range s2.ids {
			seen[id] = true
		}
		return len(seen)
	}
	testenv.EventuallyNil(t, "every record to be stored", 60*time.Second, func() error {
		if got := stored(); got < n {
			return fmt.Errorf("%d of %d stored", got, n)
		}
		return nil
	})
	cancel()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i+1, err)
		}
	}
	if got := stored(); got != n {
		t.Fatalf("%d of %d records stored", got, n)
	}
	var dups []string
	for id, c := range s1.ids {
		if c+s2.ids[id] > 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", id, c+s2.ids[id]))
		}
	}
	for id, c := range s2.ids {
		if s1.ids[id] == 0 && c > 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", id, c))
		}
	}
	if len(dups) > 0 {
		t.Fatalf("%d records stored more than once, e.g. %v", len(dups), dups[:min(3, len(dups))])
	}
}
