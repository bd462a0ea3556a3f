package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/schemas"
)

// Sink stores a batch durably. Write returns nil only once every record of the batch is stored; the
// worker commits the batch's offsets after that and not before.
type Sink interface {
	Write(ctx context.Context, b *Batch) error
}

// Stats counts what a Worker did since it started.
type Stats struct {
	Consumed uint64 // Kafka records polled
	Written  uint64 // records stored by the sink
	Poison   uint64 // records that did not decode or validate, logged and skipped
	Batches  uint64 // batches written
	Retries  uint64 // failed sink writes that were retried
	Commits  uint64 // successful offset commits
}

// Worker consumes the events and metrics topics as a member of a consumer group and writes batches
// to a Sink, committing offsets only after the sink stored them: at-least-once delivery, made
// effectively-once in queries by the tables' deterministic row identity.
type Worker struct {
	cfg   Config
	sink  Sink
	log   *slog.Logger
	codec *schemas.Codec
	opts  []kgo.Opt

	consumed, written, poison, batches, retries, commits atomic.Uint64
}

// New returns a worker. It starts nothing; Run does. extra options are appended to the Kafka
// client's (tests use them).
func New(cfg Config, sink Sink, log *slog.Logger, extra ...kgo.Opt) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := schemas.NewCodec()
	if err != nil {
		return nil, err
	}
	opts := append(cfg.Kafka.ClientOpts(),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Kafka.EventsTopic, cfg.Kafka.MetricsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // partitions move only between batches, after their commit
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	return &Worker{cfg: cfg, sink: sink, log: log, codec: codec, opts: append(opts, extra...)}, nil
}

// Stats returns the worker's counters. Safe to call concurrently with Run.
func (w *Worker) Stats() Stats {
	return Stats{
		Consumed: w.consumed.Load(), Written: w.written.Load(), Poison: w.poison.Load(),
		Batches: w.batches.Load(), Retries: w.retries.Load(), Commits: w.commits.Load(),
	}
}

// Run consumes until ctx ends, then writes and commits the batch in hand (bounded by
// ShutdownTimeout), leaves the group and returns. While the sink refuses a batch, Run retries with
// capped exponential backoff and fetches nothing more, so memory stays bounded and nothing is lost.
func (w *Worker) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(w.opts...)
	if err != nil {
		return fmt.Errorf("consumer: kafka client: %w", err)
	}
	defer func() {
		cl.AllowRebalance() // leaving the group waits for a blocked rebalance
		cl.Close()
	}()

	b := newBatch()
	var deadline time.Time // when the batch in hand must be written
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if b.Len() > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		fetches := cl.PollRecords(pollCtx, w.cfg.BatchMaxRecords-b.Len())
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				w.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		now := time.Now().UTC().Truncate(time.Second)
		fetches.EachRecord(func(r *kgo.Record) {
			if b.Len() == 0 {
				deadline = time.Now().Add(w.cfg.BatchInterval)
			}
			w.add(b, r, now)
		})
		if ctx.Err() != nil {
			return w.shutdown(cl, b)
		}
		if b.Len() > 0 && (b.Len() >= w.cfg.BatchMaxRecords || b.bytes >= w.cfg.BatchMaxBytes || !time.Now().Before(deadline)) {
			if err := w.flush(ctx, cl, b); err != nil {
				return w.shutdown(cl, b)
			}
			b = newBatch()
		}
		if b.Len() == 0 {
			cl.AllowRebalance()
		}
	}
}

// add decodes r into b. A record that does not decode or validate is logged and counted; its offset
// is still covered by the batch so the partition keeps moving.
func (w *Worker) add(b *Batch, r *kgo.Record, now time.Time) {
	w.consumed.Add(1)
	b.track(r)
	var err error
	switch r.Topic {
	case w.cfg.Kafka.EventsTopic:
		var e schemas.Event
		if e, err = w.codec.DecodeEvent(r.Value); err == nil {
			if err = e.Validate(); err == nil {
				b.addEvent(&e, now)
			}
		}
	case w.cfg.Kafka.MetricsTopic:
		var m schemas.Metric
		if m, err = w.codec.DecodeMetric(r.Value); err == nil {
			if err = m.Validate(); err == nil {
				b.addMetric(&m, now)
			}
		}
	default:
		err = fmt.Errorf("record from unexpected topic %q", r.Topic)
	}
	if err != nil {
		w.poison.Add(1)
		w.log.Warn("skipping record that does not decode", "topic", r.Topic, "partition", r.Partition,
			"offset", r.Offset, "bytes", len(r.Value), "reason", err)
	}
}

// flush writes b until the sink accepts it or ctx ends, then commits b's offsets.
func (w *Worker) flush(ctx context.Context, cl *kgo.Client, b *Batch) error {
	backoff := 100 * time.Millisecond
	for {
		err := w.sink.Write(ctx, b)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write batch of %d records: %w", b.Len(), ctx.Err())
		}
		w.retries.Add(1)
		w.log.Error("write batch failed; retrying, fetching paused", "records", b.Len(), "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("write batch of %d records: %w", b.Len(), ctx.Err())
		}
		backoff = min(backoff*2, w.cfg.RetryBackoffMax)
	}
	w.written.Add(uint64(len(b.Events.EventID) + len(b.Metrics.MetricID)))
	w.batches.Add(1)
	if err := cl.CommitRecords(ctx, b.commitList()...); err != nil {
		// The rows are stored; a replay after this would write rows with the same identity, which the
		// tables collapse. Log and go on.
		w.log.Warn("commit offsets failed; records may be replayed", "records", b.Len(), "err", err)
		return nil
	}
	w.commits.Add(1)
	return nil
}

// shutdown writes and commits what b holds, bounded by ShutdownTimeout. What it cannot write stays
// uncommitted and is consumed again by the next owner of the partitions.
func (w *Worker) shutdown(cl *kgo.Client, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	if err := w.flush(ctx, cl, b); err != nil {
		return fmt.Errorf("consumer shutdown: %w (left uncommitted, will be consumed again)", err)
	}
	return nil
}
