package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// Store keeps batches durably: their raw rows (Write) and their rollup windows (rollups.Store).
// Each method returns nil only once what it was given is stored; the worker commits a batch's
// offsets after that and not before.
type Store interface {
	// Write stores the batch's raw events and metrics.
	Write(ctx context.Context, b *Batch) error
	rollups.Store
}

// Stats counts what a Worker did since it started.
type Stats struct {
	Consumed     uint64 // Kafka records polled
	Written      uint64 // raw records stored
	Poison       uint64 // records that did not decode or validate, sent to the dead-letter topic
	Batches      uint64 // batches stored and committed
	Retries      uint64 // failed batch attempts that were retried
	Commits      uint64 // successful offset commits
	Windows      uint64 // rollup window rows written
	Published    uint64 // rollup windows published on the rollups topic
	LatePoints   uint64 // metric points whose minute window had already closed (still counted)
	Replayed     uint64 // point contributions skipped because their window had counted them already
	OpenWindows  uint64 // rollup windows held in memory
	ClosedWindow uint64 // rollup windows closed by the watermark
	Refused      uint64 // decoded records ClickHouse refused for their content, sent to the dead-letter topic
	RollupSkip   uint64 // points stored raw but left out of the rollups, whose store refused them for good
	OutboxDrop   uint64 // dead-letter or rollup records Kafka refused even without their value
	Resent       uint64 // metric points skipped by the rollups because their id was counted already (re-sent)
	// DedupeHorizon is how long ago the oldest metric id the rollups remember was counted: a
	// re-send within it counts once.
	DedupeHorizon time.Duration
	// The label-cardinality guard (RollupMaxNewSeries): new series admitted against a tenant's
	// minute budget, points rolled up under an overflow series because their series was new past
	// the cap, tenant-minutes in which a tenant reached the cap, and series ids it remembers.
	NewSeries, OverflowPoints, CappedMinutes, KnownSeries uint64
}

// Dead-letter headers: why a record was refused and where it came from.
const (
	HeaderReason    = "tributary.reason"
	HeaderTopic     = "tributary.source.topic"
	HeaderPartition = "tributary.source.partition"
	HeaderOffset    = "tributary.source.offset"
)

// Worker consumes the events and metrics topics as a member of a consumer group, writes batches to
// a Store, rolls metrics up, and commits offsets only after all of it is stored: at-least-once
// delivery, made effectively-once in queries by the tables' deterministic row identity.
type Worker struct {
	cfg   Config
	store Store
	log   *slog.Logger
	codec *schemas.Codec
	// dec and series belong to the poll loop (add): decoding and series identity without the
	// attribute map.
	dec    *schemas.Decoder
	series *seriesCache
	opts   []kgo.Opt
	// engine is nil when rollups are off. One goroutine at a time uses it: the writer goroutine Run
	// starts, or Run's own in shutdown, once the writer is idle.
	engine *rollups.Engine
	inst   *instruments

	revokedMu sync.Mutex
	revoked   []int32 // metrics partitions taken away, for the engine to forget

	// storing is held from handing a batch to the writer until it is stored and committed; the
	// revoke callback takes it, so a partition never moves with an unstored batch.
	storing sync.Mutex

	consumed, written, poison, batches, retries, commits, windows, published atomic.Uint64
	late, replayed, open, closed, refused, rollupSkipped, outboxDropped      atomic.Uint64
	resent, newSeries, overflow, capped, known                               atomic.Uint64
	horizon                                                                  atomic.Int64 // nanoseconds
}

// New returns a worker. It starts nothing; Run does. extra options are appended to the Kafka
// client's (tests use them).
func New(cfg Config, store Store, log *slog.Logger, extra ...kgo.Opt) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := schemas.NewCodec()
	if err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, store: store, log: log, codec: codec, dec: codec.NewDecoder(), series: newSeriesCache(), inst: newInstruments()}
	if cfg.EnableRollups {
		if w.engine, err = rollups.New(cfg.RollupConfig()); err != nil {
			return nil, err
		}
	}
	// A partition moves only after the batch in flight (which may hold its records) is stored and
	// committed: the revoke callback waits for the writer. Lost partitions are gone already.
	revoked := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		w.storing.Lock()
		w.storing.Unlock() //nolint:staticcheck // waiting for the writer is the point
		w.forget(m)
	}
	lost := func(_ context.Context, _ *kgo.Client, m map[string][]int32) { w.forget(m) }
	w.opts = append(cfg.Kafka.ClientOpts(),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Kafka.EventsTopic, cfg.Kafka.MetricsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // partitions move only between batches, after their commit
		kgo.OnPartitionsRevoked(revoked),
		kgo.OnPartitionsLost(lost),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(cfg.FetchMaxBytes, 1<<20)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	w.opts = append(w.opts, extra...)
	return w, nil
}

func (w *Worker) forget(m map[string][]int32) {
	w.inst.dropLag(m)
	w.revokedMu.Lock()
	w.revoked = append(w.revoked, m[w.cfg.Kafka.MetricsTopic]...)
	w.revokedMu.Unlock()
}

// Stats returns the worker's counters. Safe to call concurrently with Run.
func (w *Worker) Stats() Stats {
	return Stats{
		Consumed: w.consumed.Load(), Written: w.written.Load(), Poison: w.poison.Load(),
		Batches: w.batches.Load(), Retries: w.retries.Load(), Commits: w.commits.Load(),
		Windows: w.windows.Load(), Published: w.published.Load(), LatePoints: w.late.Load(),
		Replayed: w.replayed.Load(), OpenWindows: w.open.Load(), ClosedWindow: w.closed.Load(),
		Refused: w.refused.Load(), RollupSkip: w.rollupSkipped.Load(), OutboxDrop: w.outboxDropped.Load(),
		Resent: w.resent.Load(), DedupeHorizon: time.Duration(w.horizon.Load()),
		NewSeries: w.newSeries.Load(), OverflowPoints: w.overflow.Load(), CappedMinutes: w.capped.Load(), KnownSeries: w.known.Load(),
	}
}

// Run consumes until ctx ends, then stores and commits what it holds (bounded by ShutdownTimeout),
// leaves the group and returns. While the store refuses a batch, it is retried with capped
// exponential backoff and Run gathers at most the next batch, then fetches nothing more until the
// first is stored, so memory stays bounded and nothing is lost.
//
// Decoding and storing overlap: while a writer goroutine stores batch N, the poll loop gathers and
// decodes batch N+1 (at most one batch in flight). Rebalances are allowed only while the poll loop
// holds no records, and the revoke callback waits until the batch in flight is stored and
// committed, so a partition changes owner only between committed batches.
func (w *Worker) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(w.opts...)
	if err != nil {
		return fmt.Errorf("consumer: kafka client: %w", err)
	}
	defer func() {
		cl.AllowRebalance() // leaving the group waits for a blocked rebalance
		cl.Close()
	}()

	jobs := make(chan *Batch)
	results := make(chan flushResult, 1)
	written := make(chan struct{}, 1) // a token each time the writer finishes a batch
	go func() {
		for b := range jobs {
			err := w.flush(ctx, cl, b)
			w.storing.Unlock() // taken by Run when it handed b over
			results <- flushResult{b, err}
			written <- struct{}{}
		}
	}()
	defer close(jobs)
	var inflight bool
	wait := func() (failed *Batch) {
		if inflight {
			inflight = false
			<-written
			if r := <-results; r.err != nil {
				return r.b
			}
		}
		return nil
	}
	// writerIdle says whether a batch handed over now would be stored at once.
	writerIdle := func() bool { return !inflight || len(results) > 0 }

	b := newBatch()
	var first, deadline time.Time // when the batch in hand got its first record, and must be stored
	for {
		pollCtx, cancel := w.pollContext(ctx, b, first, deadline, writerIdle(), written)
		fetches := cl.PollRecords(pollCtx, w.cfg.BatchMaxRecords-b.Len())
		cancel()
		if fetches.IsClientClosed() {
			return w.shutdown(cl, wait(), b)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				w.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		b.revoked = append(b.revoked, w.takeRevoked()...)
		now := time.Now().UTC().Truncate(time.Second)
		fetches.EachPartition(w.inst.noteLag)
		fetches.EachRecord(func(r *kgo.Record) {
			if b.Len() == 0 {
				first = time.Now()
				deadline = first.Add(w.cfg.BatchInterval)
			}
			w.add(b, r, now)
		})
		if ctx.Err() != nil {
			return w.shutdown(cl, wait(), b)
		}
		if b.Len() > 0 && w.due(b, first, deadline, writerIdle()) || b.Len() == 0 && w.engine != nil {
			// (An empty batch closes windows of idle partitions.)
			if failed := wait(); failed != nil {
				return w.shutdown(cl, failed, b)
			}
			next := newBatchAfter(b) // before b is the writer's
			w.storing.Lock()
			jobs <- b
			inflight = true
			b = next
		}
		if b.Len() == 0 {
			cl.AllowRebalance()
		}
	}
}

// due says whether b, holding records since first, is to be stored now: it is full, its
// BatchInterval is up, or it has lingered BatchLinger and the writer is idle (idle).
func (w *Worker) due(b *Batch, first, deadline time.Time, idle bool) bool {
	now := time.Now()
	if b.Len() >= w.cfg.BatchMaxRecords || b.bytes >= w.cfg.BatchMaxBytes || !now.Before(deadline) {
		return true
	}
	return w.cfg.BatchLinger > 0 && idle && !now.Before(first.Add(w.cfg.BatchLinger))
}

// pollContext bounds the next poll. With records in hand, it ends when the batch is due: at its
// deadline, or when it has lingered BatchLinger and the writer is idle (if the writer is busy by
// then, when it finishes: the written token, put back for Run to take). With no records in hand,
// it ends only to close windows of idle partitions now and then, when rollups are on.
func (w *Worker) pollContext(ctx context.Context, b *Batch, first, deadline time.Time, idle bool, written chan struct{}) (context.Context, context.CancelFunc) {
	switch {
	case b.Len() == 0 && w.engine != nil:
		return context.WithTimeout(ctx, w.cfg.RollupIdleTimeout/2)
	case b.Len() == 0:
		return ctx, func() {}
	case w.cfg.BatchLinger <= 0:
		return context.WithDeadline(ctx, deadline)
	}
	linger := first.Add(w.cfg.BatchLinger)
	if time.Now().Before(linger) || idle {
		return context.WithDeadline(ctx, minTime(deadline, linger))
	}
	// Lingered, but the writer is busy: wake when it finishes.
	pollCtx, cancel := context.WithDeadline(ctx, deadline)
	go func() {
		select {
		case <-written:
			written <- struct{}{} // for wait
			cancel()
		case <-pollCtx.Done():
		}
	}()
	return pollCtx, cancel
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

type flushResult struct {
	b   *Batch
	err error
}

func (w *Worker) takeRevoked() []int32 {
	w.revokedMu.Lock()
	defer w.revokedMu.Unlock()
	revoked := w.revoked
	w.revoked = nil
	return revoked
}

// add decodes r into b. A record that does not decode or validate goes to the dead-letter topic
// with the reason; its offset is still covered by the batch so the partition keeps moving.
func (w *Worker) add(b *Batch, r *kgo.Record, now time.Time) {
	w.consumed.Add(1)
	b.track(r)
	var err error
	switch r.Topic {
	case w.cfg.Kafka.EventsTopic:
		var e schemas.Event
		if err = w.dec.DecodeEvent(r.Value, &e); err == nil {
			if err = e.Validate(); err == nil {
				attrJSON, keys, values := w.dec.AttrColumns()
				b.addEventRow(&e, attrJSON, keys, values, now)
				b.eventSrc = append(b.eventSrc, r)
			}
		}
	case w.cfg.Kafka.MetricsTopic:
		var m schemas.Metric
		if err = w.dec.DecodeMetric(r.Value, &m); err == nil {
			if err = m.Validate(); err == nil {
				b.addMetricRow(&m, w.series.of(&m, w.dec), now, r)
				b.metricSrc = append(b.metricSrc, r)
			}
		}
	default:
		err = fmt.Errorf("record from unexpected topic %q", r.Topic)
	}
	if err != nil {
		w.poison.Add(1)
		w.log.Warn("dead-lettering a record that does not decode or validate", "topic", r.Topic,
			"partition", r.Partition, "offset", r.Offset, "bytes", len(r.Value), "reason", err)
		b.outbox = append(b.outbox, w.deadLetter(r, err.Error()))
	}
}

// deadLetter returns r as a record for the dead-letter topic, with the reason and r's origin in
// headers.
func (w *Worker) deadLetter(r *kgo.Record, reason string) *kgo.Record {
	return &kgo.Record{
		Topic: w.cfg.Kafka.DLQTopic, Key: r.Key, Value: r.Value,
		Headers: append([]kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderTopic, Value: []byte(r.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		}, r.Headers...),
	}
}

// flush stores b until it succeeds or ctx ends, then commits b's offsets. A retryable failure
// is retried with capped exponential backoff, each attempt bounded by WriteTimeout. A permanent
// one (see IsPermanent) is not retried as it was: raw rows are written in halves and a row refused
// alone is dead-lettered; a batch whose rollups cannot be stored is left out of the rollups, and
// both are counted and logged, so no input stops the partition.
func (w *Worker) flush(ctx context.Context, cl *kgo.Client, b *Batch) error {
	backoff := 100 * time.Millisecond
	for {
		rawErr, rollErr := w.attempt(ctx, cl, b)
		if rawErr == nil && rollErr == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("store batch of %d records: %w", b.Len(), ctx.Err())
		}
		if IsPermanent(rawErr) {
			rawErr = w.isolateRaw(ctx, b, rawErr)
		}
		if IsPermanent(rollErr) {
			w.skipRollups(b, rollErr)
			rollErr = nil
		}
		if rawErr == nil && rollErr == nil {
			continue // what is left (the outbox, the commit) goes at once
		}
		w.retries.Add(1)
		w.log.Error("storing a batch failed; retrying, fetching paused", "records", b.Len(), "backoff", backoff,
			"err", errors.Join(rawErr, rollErr))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("store batch of %d records: %w", b.Len(), ctx.Err())
		}
		backoff = min(backoff*2, w.cfg.RetryBackoffMax)
	}
	if b.Len() == 0 {
		return nil
	}
	w.written.Add(uint64(len(b.Events.EventID) + len(b.Metrics.MetricID) - b.refusedRows))
	w.batches.Add(1)
	w.inst.batchRecords.Observe(float64(b.Len()))
	defer w.inst.observeStage("commit", time.Now())
	cctx, cancel := context.WithTimeout(ctx, w.cfg.WriteTimeout)
	defer cancel()
	if err := cl.CommitRecords(cctx, b.commitList()...); err != nil {
		// Everything is stored; a replay would write rows with the same identity, which the tables
		// collapse, and rollup windows skip points they counted. Log and go on.
		w.log.Warn("commit offsets failed; records may be replayed", "records", b.Len(), "err", err)
		return nil
	}
	w.commits.Add(1)
	return nil
}

// attempt makes one attempt, bounded by WriteTimeout, at every stage of storing b not yet done.
// The raw rows go in concurrently with the rollup chain (load and write windows, then produce dead
// letters and published rollups): they touch different tables and different parts of b, and both
// must succeed before the commit.
func (w *Worker) attempt(ctx context.Context, cl *kgo.Client, b *Batch) (rawErr, rollErr error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WriteTimeout)
	defer cancel()
	raw := make(chan error, 1)
	go func() {
		if b.isolating() {
			raw <- errResumeIsolation // flush resumes writing the refused rows in parts
			return
		}
		start := time.Now()
		err := w.store.Write(ctx, b)
		if err == nil && b.Len() > 0 {
			w.inst.observeStage("raw", start)
		}
		raw <- err
	}()
	rollErr = w.rollUpAndPublish(ctx, cl, b)
	return <-raw, rollErr
}

// skipRollups leaves b's points out of the rollups after storing them failed permanently (cause):
// the engine forgets b's partitions, so their windows are loaded again, as stored, by the next
// batch. Raw rows are stored as usual; the points left out are counted.
func (w *Worker) skipRollups(b *Batch, cause error) {
	w.log.Error("rolling up a batch failed permanently; its points are stored raw but left out of the rollups",
		"points", len(b.Points), "err", cause)
	for _, p := range b.partitions() {
		w.engine.Forget(p)
	}
	w.rollupSkipped.Add(uint64(len(b.Points)))
	w.open.Store(uint64(w.engine.Len()))
	b.rollupsApplied, b.rollupsWritten = true, true
}

func (w *Worker) rollUpAndPublish(ctx context.Context, cl *kgo.Client, b *Batch) error {
	if w.engine != nil && !b.rollupsWritten {
		start := time.Now()
		if err := w.rollUp(ctx, b); err != nil {
			return err
		}
		w.inst.observeStage("rollups", start)
	}
	if len(b.outbox) > 0 && !b.outboxSent {
		defer w.inst.observeStage("outbox", time.Now())
		if err := w.sendOutbox(ctx, cl, b); err != nil {
			return err
		}
		b.outboxSent = true
	}
	return nil
}

// HeaderValueDropped is set on a dead-letter or rollup record that Kafka refused with its value
// (too large): it is sent again without the value, saying why.
const HeaderValueDropped = "tributary.value.dropped"

// sendOutbox produces b's dead letters and published rollups. What fails stays in the outbox for
// the next attempt; a record Kafka refuses for good (too large, invalid) is sent again without its
// value, and dropped, logged and counted if even that is refused, so the outbox cannot stop the
// partition.
func (w *Worker) sendOutbox(ctx context.Context, cl *kgo.Client, b *Batch) error {
	var failed []*kgo.Record
	var first error
	for _, res := range cl.ProduceSync(ctx, b.outbox...) {
		r := res.Record
		switch {
		case res.Err == nil:
			if r.Topic == w.cfg.Kafka.RollupsTopic {
				w.published.Add(1)
			}
			continue
		case !IsPermanent(res.Err):
		case r.Value != nil:
			w.log.Error("Kafka refused an outbox record; sending it without its value", "topic", r.Topic, "bytes", len(r.Value), "err", res.Err)
			r = &kgo.Record{Topic: r.Topic, Key: r.Key, Headers: append(slices.Clip(r.Headers),
				kgo.RecordHeader{Key: HeaderValueDropped, Value: []byte(res.Err.Error())})}
		default:
			w.log.Error("Kafka refused an outbox record even without its value; dropping it", "topic", r.Topic, "err", res.Err)
			w.outboxDropped.Add(1)
			continue
		}
		failed = append(failed, r)
		if first == nil {
			first = res.Err
		}
	}
	b.outbox = failed
	if first != nil {
		// %v, not %w: a refused record was replaced above, so the retry is not permanent.
		return fmt.Errorf("produce %d dead-letter and rollup records: %v", len(failed), first)
	}
	return nil
}

// rollUp counts b's points into the rollup windows once (rollupsApplied), then stores the windows
// and queues the closed and shed ones for publishing (rollupsWritten). A retry after a failure
// repeats only the step that failed.
func (w *Worker) rollUp(ctx context.Context, b *Batch) error {
	e := w.engine
	now := time.Now()
	if !b.rollupsApplied {
		// b.revoked were taken away before this batch's records were polled.
		if err := e.Ingest(ctx, w.store, b.Points, b.revoked, now); err != nil {
			return err
		}
		for _, c := range e.TakeCapped() {
			w.log.Warn("tenant reached the new-series cap for a minute; its further new series of that minute roll up under their metric's overflow series, stored raw as usual",
				"tenant", c.Tenant, "minute", c.Minute, "late", c.Late, "cap", w.cfg.RollupMaxNewSeries)
		}
		b.rollupsApplied = true
	}
	f, err := e.Flush(ctx, w.store, now)
	if err != nil {
		return err
	}
	w.windows.Add(uint64(f.Written))
	for _, win := range f.Closed {
		b.outbox = append(b.outbox, w.rollupRecord(win, true))
	}
	for _, win := range f.Shed {
		b.outbox = append(b.outbox, w.rollupRecord(win, false))
	}
	s := e.Stats()
	w.late.Store(s.Late)
	w.replayed.Store(s.Replayed)
	w.closed.Store(s.Closed)
	w.resent.Store(s.Resent)
	w.horizon.Store(int64(e.DedupeHorizon(now)))
	w.newSeries.Store(s.NewSeries)
	w.overflow.Store(s.Overflow)
	w.capped.Store(s.Capped)
	w.known.Store(uint64(e.KnownSeries()))
	w.open.Store(uint64(e.Len()))
	b.rollupsWritten = true
	return nil
}

func (w *Worker) rollupRecord(win *rollups.Window, final bool) *kgo.Record {
	sr, a := win.Series, &win.Agg
	attrs, err := schemas.ParseAttributesJSON([]byte(sr.AttrJSON))
	if err != nil { // only a bug can get here: the JSON was written from decoded, checked attributes
		w.log.Error("publishing a rollup without its attributes", "series", sr.ID, "reason", err)
	}
	r := schemas.Rollup{
		Tenant: sr.Tenant, Name: sr.Name, Unit: sr.Unit, AggregationType: sr.Type, SeriesID: sr.ID, Attributes: attrs,
		TierSeconds: win.Tier, WindowStart: time.Unix(win.Start, 0).UTC(), SourcePartition: win.Partition,
		LastOffset: a.LastOffset, Count: a.Count, Sum: a.Sum, Min: a.Min, Max: a.Max, Last: a.Last,
		LastTimestamp: time.UnixMicro(a.LastTS).UTC(), Final: final,
	}
	if a.Sketch != nil {
		pk, pc := rollups.Arrays(a.Sketch.Pos)
		nk, nc := rollups.Arrays(a.Sketch.Neg)
		r.Sketch = &schemas.RollupSketch{RelativeAccuracy: rollups.RelativeAccuracy, PositiveKeys: pk, PositiveCounts: pc,
			NegativeKeys: nk, NegativeCounts: nc, ZeroCount: a.Sketch.Zero}
	}
	value, err := w.codec.AppendRollup(nil, &r)
	if err != nil { // only a bug can get here: the series' attributes were normalised when decoded
		panic(fmt.Sprintf("encode rollup: %v", err))
	}
	key := strconv.AppendUint(nil, sr.ID, 16)
	key = strconv.AppendInt(append(key, '/'), int64(win.Tier), 10)
	key = strconv.AppendInt(append(key, '/'), win.Start, 10)
	return &kgo.Record{Topic: w.cfg.Kafka.RollupsTopic, Key: key, Value: value}
}

// shutdown stores and commits the batches still held, in order, bounded by ShutdownTimeout. What
// it cannot store stays uncommitted and is consumed again by the next owner of the partitions.
func (w *Worker) shutdown(cl *kgo.Client, batches ...*Batch) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	for _, b := range batches {
		if b == nil || b.Len() == 0 {
			continue
		}
		if err := w.flush(ctx, cl, b); err != nil {
			return fmt.Errorf("consumer shutdown: %w (left uncommitted, will be consumed again)", err)
		}
	}
	return nil
}
