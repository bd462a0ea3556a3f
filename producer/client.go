package producer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/schemas"
)

// Errors returned by Record*.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("producer: client closed")
	// ErrBufferFull is returned when MaxBufferedRecords records wait for Kafka and the call's context
	// ended before one was acknowledged.
	ErrBufferFull = errors.New("producer: buffer full")
)

// Event and Metric are the records a Client sends; see the schemas package. Fields the caller leaves
// empty are filled in: EventID/MetricID (a UUIDv7), Timestamp (now), and the Source from Config.
type (
	Event  = schemas.Event
	Metric = schemas.Metric
)

// Stats counts what a Client did since it was made.
type Stats struct {
	Accepted uint64 // records validated and handed to the Kafka client
	Sent     uint64 // records acknowledged by Kafka
	Failed   uint64 // records Kafka finally refused (reported by Flush)
	Disabled uint64 // records discarded because their kind is switched off
	Buffered int64  // records accepted and not yet acknowledged
}

// Client records events and metrics and sends them to Kafka asynchronously, batched per partition,
// with acks from all in-sync replicas and the idempotent producer. It is safe for concurrent use.
type Client struct {
	cfg   Config
	kc    *kgo.Client
	codec *schemas.Codec
	src   schemas.Source

	// closeMu is held shared by every Record call from its closed check until the record is in the
	// Kafka client, and exclusively by Close, so Close never flushes while a record is half-queued.
	closeMu sync.RWMutex
	closed  bool
	done    chan struct{} // closed when Close starts: wakes Record calls blocked on a full buffer
	once    sync.Once
	slots   chan struct{} // one per record accepted and not yet answered by Kafka

	accepted, sent, failed, disabled atomic.Uint64

	mu       sync.Mutex
	firstErr error // first delivery failure since the last Flush
	failures uint64
}

// New returns a Client for cfg. It connects lazily: a broker that is down shows up as records that
// wait in the buffer, not as an error here.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := schemas.NewCodec()
	if err != nil {
		return nil, err
	}
	comp, _ := compression(cfg.Compression)
	opts := append(cfg.Kafka.ClientOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords+1), // slots bound it first; kgo must never block
		kgo.ProduceRequestTimeout(30*time.Second),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(cfg.BatchMaxBytes),
		kgo.ProducerBatchCompression(comp),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // Kafka's murmur2 for keyed records
	)
	kc, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer: kafka client: %w", err)
	}
	host := cfg.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	return &Client{
		cfg: cfg, kc: kc, codec: codec, slots: make(chan struct{}, cfg.MaxBufferedRecords), done: make(chan struct{}),
		src: schemas.Source{Tenant: cfg.Tenant, Service: cfg.Service, Host: host},
	}, nil
}

func compression(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("producer compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// RecordEvent validates e, fills in what is missing and queues it for Kafka. It returns an error
// naming the field for a bad event (empty type or name, attributes that cannot be carried), and
// ErrClosed after Close. It blocks while MaxBufferedRecords are in flight, until ctx ends. The
// caller's Attributes map is not modified or retained.
func (c *Client) RecordEvent(ctx context.Context, e Event) error {
	if !c.cfg.EnableEvents {
		c.disabled.Add(1)
		return nil
	}
	if e.EventID == "" {
		e.EventID = newID()
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	c.stamp(&e.Source)
	var err error
	if e.Attributes, err = schemas.NormalizeAttributes(e.Attributes); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	value, err := c.codec.AppendEvent(nil, &e)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	var key []byte
	if e.TraceID != "" {
		key = []byte(e.TraceID) // a trace stays on one partition, in order
	}
	return c.produce(ctx, &kgo.Record{Topic: c.cfg.Kafka.EventsTopic, Key: key, Value: value})
}

// RecordMetric validates m, fills in what is missing and queues it for Kafka. It returns an error
// naming the field for a bad metric (empty name, NaN or infinite value, unknown aggregation_type,
// attributes that cannot be carried), and ErrClosed after Close. It blocks like RecordEvent.
func (c *Client) RecordMetric(ctx context.Context, m Metric) error {
	if !c.cfg.EnableMetrics {
		c.disabled.Add(1)
		return nil
	}
	if m.MetricID == "" {
		m.MetricID = newID()
	}
	if m.Timestamp.IsZero() {
		m.Timestamp = time.Now()
	}
	c.stamp(&m.Source)
	var err error
	if m.Attributes, err = schemas.NormalizeAttributes(m.Attributes); err != nil {
		return fmt.Errorf("record metric: %w", err)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("record metric: %w", err)
	}
	value, err := c.codec.AppendMetric(nil, &m)
	if err != nil {
		return fmt.Errorf("record metric: %w", err)
	}
	return c.produce(ctx, &kgo.Record{Topic: c.cfg.Kafka.MetricsTopic, Key: SeriesKey(&m), Value: value})
}

// SeriesKey is a metric's partition key: tenant, name, unit, aggregation type and the sorted
// attributes, so every point of a series lands on one partition and one consumer owns its windows.
func SeriesKey(m *Metric) []byte {
	keys, values := schemas.FlattenAttributes(m.Attributes)
	var b []byte
	b = append(b, m.Tenant...)
	b = append(b, 0)
	b = append(b, m.Name...)
	b = append(b, 0)
	b = append(b, m.Unit...)
	b = append(b, 0)
	b = append(b, m.AggregationType...)
	for i, k := range keys {
		b = append(b, 0)
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, values[i]...)
	}
	return b
}

func (c *Client) stamp(s *schemas.Source) {
	if c.src.Tenant != "" || s.Tenant == "" {
		s.Tenant = c.src.Tenant // a configured tenant always wins
	}
	if s.Service == "" {
		s.Service = c.src.Service
	}
	if s.Host == "" {
		s.Host = c.src.Host
	}
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// produce waits for a buffer slot, then hands r to the Kafka client. The slot is released when Kafka
// answers, so the buffer never holds more than MaxBufferedRecords.
func (c *Client) produce(ctx context.Context, r *kgo.Record) error {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	select {
	case c.slots <- struct{}{}:
	default:
		select {
		case c.slots <- struct{}{}:
		case <-c.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("record: %w (%d records waiting for Kafka): %w", ErrBufferFull, c.cfg.MaxBufferedRecords, ctx.Err())
		}
	}
	c.accepted.Add(1)
	c.kc.Produce(context.Background(), r, c.delivered)
	return nil
}

// delivered is the promise of every record: Kafka's final answer.
func (c *Client) delivered(_ *kgo.Record, err error) {
	<-c.slots
	if err == nil {
		c.sent.Add(1)
		return
	}
	c.failed.Add(1)
	c.mu.Lock()
	c.failures++
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.mu.Unlock()
}

// Flush blocks until Kafka has acknowledged every record accepted before the call, or ctx ends. It
// returns an error if any record accepted since the previous Flush was finally refused by Kafka.
func (c *Client) Flush(ctx context.Context) error {
	if err := c.kc.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	c.mu.Lock()
	n, err := c.failures, c.firstErr
	c.failures, c.firstErr = 0, nil
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("flush: %d records were not delivered, first: %w", n, err)
	}
	return nil
}

// Close refuses new records (ErrClosed), flushes what was accepted until ctx ends, and closes the
// Kafka client. It is idempotent; only the first call flushes and reports.
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		close(c.done)
		c.closeMu.Lock()
		c.closed = true
		c.closeMu.Unlock()
		err = c.Flush(ctx)
		c.kc.Close()
	})
	return err
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Accepted: c.accepted.Load(), Sent: c.sent.Load(), Failed: c.failed.Load(),
		Disabled: c.disabled.Load(), Buffered: int64(len(c.slots)),
	}
}
