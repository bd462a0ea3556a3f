package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
)

// Each full-buffer policy behaves as documented while the broker is stopped, and once it is back
// every accepted record is delivered.
func TestBufferPoliciesWhileBrokerStopped(t *testing.T) {
	srv := privateKafka(t)
	brokers := []string{srv.Addr}
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 2, "events", "metrics", "rollups", "dlq"))
	mk := func(policy string) *producer.Client {
		cfg := producer.DefaultConfig()
		cfg.Kafka, cfg.MaxBufferedRecords, cfg.BufferFullPolicy, cfg.BufferFullTimeout = k, 50, policy, 300*time.Millisecond
		p, err := producer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	block, drop := mk("block"), mk("drop")
	ctx := context.Background()
	// Warm both clients up, so they know the partitions' leader before it goes away.
	for _, p := range []*producer.Client{block, drop} {
		if err := p.RecordEvent(ctx, producer.Event{Type: "t", Name: "warm-up"}); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.Stop()

	var blockErr, dropErr error
	for i := range 80 {
		if err := block.RecordEvent(ctx, producer.Event{Type: "t", Name: "b"}); err != nil && blockErr == nil {
			blockErr = err
			if i != 50 {
				t.Errorf("block policy refused record %d; the buffer holds 50", i)
			}
			break
		}
	}
	if !errors.Is(blockErr, producer.ErrBufferFull) {
		t.Fatalf("block policy: got %v, want ErrBufferFull after the timeout", blockErr)
	}
	for range 80 {
		if err := drop.RecordEvent(ctx, producer.Event{Type: "t", Name: "d"}); err != nil && dropErr == nil {
			dropErr = err
		}
	}
	if !errors.Is(dropErr, producer.ErrBufferFull) || drop.Stats().DroppedBufferFull != 30 || drop.Stats().Accepted != 51 {
		t.Fatalf("drop policy: %v, stats %+v (want 30 dropped, 51 accepted)", dropErr, drop.Stats())
	}

	srv.Start()
	fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for _, p := range []*producer.Client{block, drop} {
		if err := p.Close(fctx); err != nil {
			t.Fatalf("after the broker came back: %v", err)
		}
		if s := p.Stats(); s.Sent != s.Accepted || s.Failed != 0 {
			t.Fatalf("accepted records were not all delivered: %+v", s)
		}
	}
}
