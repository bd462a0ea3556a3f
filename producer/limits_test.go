package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/schemas"
)

func randomText(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// A record of exactly MaxRecordBytes (key + value + RecordOverhead) with the default
// BatchMaxBytes is delivered by the real broker; one byte more is refused at the call.
func TestRecordSizeLimitOnRealBroker(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 1, "events", "metrics")
	cfg := DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "t", EventsTopic: topics[0], MetricsTopic: topics[1], TopicPartitions: 1, TopicReplication: 1}
	cfg.Service, cfg.Host, cfg.MaxAttributeValueBytes = "svc", "h", 1<<20
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	blob := randomText(900000)
	event := func(extra int) Event {
		return Event{EventID: "0190f3a2-5b1c-7def-8000-000000000001", TraceID: "trace-1", Type: "t", Name: "big",
			Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Attributes: map[string]any{"blob": blob + strings.Repeat("x", extra)}}
	}
	size := func(e Event) int64 {
		r, err := c.prepareEvent(ctx, &e)
		if err != nil {
			t.Fatal(err)
		}
		return recordSize(r)
	}
	extra := int(int64(cfg.MaxRecordBytes) - size(event(0)))
	if got := size(event(extra)); got != int64(cfg.MaxRecordBytes) {
		t.Fatalf("could not build a record of exactly %d bytes: %d", cfg.MaxRecordBytes, got)
	}
	if err := c.RecordEvent(ctx, event(extra)); err != nil {
		t.Fatalf("a record at the limit: %v", err)
	}
	err = c.RecordEvent(ctx, event(extra+1))
	limit := strconv.Itoa(int(cfg.MaxRecordBytes))
	if !errors.Is(err, ErrRecordTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(int(cfg.MaxRecordBytes)+1)+" bytes") || !strings.Contains(err.Error(), "at most "+limit) {
		t.Fatalf("one byte past the limit: got %v, want ErrRecordTooLarge naming the size and %s", err, limit)
	}
	_, err = c.RecordBatch(ctx, []Event{{Type: "t", Name: "small"}, event(extra + 1)}, nil)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("batch with a too large record: got %v, want a BatchError at index 1 wrapping ErrRecordTooLarge", err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("the record at the limit was not delivered: %v", err)
	}
	if s := c.Stats(); s.Sent != 1 || s.Accepted != 1 {
		t.Fatalf("stats %+v", s)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics[0]), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, _ := schemas.NewCodec()
	var got []schemas.Event
	for len(got) == 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			e, err := codec.DecodeEvent(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		})
	}
	if len(got) != 1 || got[0].Attributes["blob"] != event(extra).Attributes["blob"] {
		t.Fatalf("read back %d events; want the one at the limit, intact", len(got))
	}
}

// The byte bound is honoured by both policies, and a record bigger than the whole buffer is refused
// at once instead of waiting for room that can never come.
func TestBufferedBytesBound(t *testing.T) {
	pad := map[string]any{"pad": strings.Repeat("p", 800)}
	ev := Event{Type: "t", Name: "n", Attributes: pad}
	for _, policy := range []string{"block", "drop"} {
		c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedBytes, cfg.BufferFullPolicy = 2048, policy })
		ctx := context.Background()
		for i := range 2 {
			if err := c.RecordEvent(ctx, ev); err != nil {
				t.Fatalf("%s: record %d: %v", policy, i, err)
			}
		}
		if s := c.Stats(); s.BufferedBytes <= 1600 || s.BufferedBytes > 2048 {
			t.Fatalf("%s: buffered bytes %d after two 800-byte records", policy, s.BufferedBytes)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := c.RecordEvent(short, ev)
		cancel()
		switch policy {
		case "block":
			if !errors.Is(err, ErrBufferFull) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "of 2048 bytes") {
				t.Fatalf("block: got %v, want ErrBufferFull after the deadline, naming the byte bound", err)
			}
		case "drop":
			if !errors.Is(err, ErrBufferFull) || errors.Is(err, context.DeadlineExceeded) || c.Stats().DroppedBufferFull != 1 {
				t.Fatalf("drop: got %v (%+v), want ErrBufferFull at once, counted", err, c.Stats())
			}
		}
		if s := c.Stats(); s.Accepted != 2 || s.Buffered != 2 {
			t.Fatalf("%s: a refused record took room: %+v", policy, s)
		}
	}
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedBytes, cfg.MaxAttributeValueBytes = 2048, 1<<20 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.RecordEvent(ctx, Event{Type: "t", Name: "n", Attributes: map[string]any{"pad": strings.Repeat("p", 3000)}})
	if !errors.Is(err, ErrBufferFull) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "the buffer holds 2048") {
		t.Fatalf("a record over the byte bound: got %v, want ErrBufferFull at once", err)
	}
	if s := c.Stats(); s.Accepted != 0 || s.BufferedBytes != 0 {
		t.Fatalf("stats %+v", s)
	}

	// A record of exactly MaxBufferedBytes (key and value) fits an empty buffer; one byte more is
	// refused at once.
	padded := func(n int) Event { // n >= 128: the pad's length prefix stays 2 bytes
		return Event{EventID: "e1", Type: "t", Name: "n", Timestamp: time.Unix(1700000000, 0), Attributes: map[string]any{"pad": strings.Repeat("p", n)}}
	}
	for _, over := range []int{0, 1} {
		c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedBytes, cfg.BufferFullTimeout = 2048, 0 })
		e := padded(1000)
		r, err := c.prepareEvent(ctx, &e)
		if err != nil {
			t.Fatal(err)
		}
		n := 1000 + 2048 - int(bufferSize(r)) + over
		e = padded(n)
		if r, _ := c.prepareEvent(ctx, &e); bufferSize(r) != int64(2048+over) {
			t.Fatalf("could not build a record of %d bytes: %d", 2048+over, bufferSize(r))
		}
		err = c.RecordEvent(ctx, padded(n))
		if over == 0 && (err != nil || c.Stats().BufferedBytes != 2048) {
			t.Fatalf("a record of MaxBufferedBytes: %v, %+v", err, c.Stats())
		}
		if over == 1 && (!errors.Is(err, ErrBufferFull) || !strings.Contains(err.Error(), "2049 bytes in one call, the buffer holds 2048")) {
			t.Fatalf("a record one byte over MaxBufferedBytes: %v, want ErrBufferFull at once naming both sizes", err)
		}
	}
}
