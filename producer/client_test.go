package producer

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/kafka"
	"github.com/tributary/tributary/schemas"
)

// offlineConfig points at a port where no broker listens: records are accepted into the buffer and
// wait there.
func offlineConfig() Config {
	return Config{
		Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "test", EventsTopic: "e", MetricsTopic: "m",
			TopicPartitions: 1, TopicReplication: 1},
		Service: "svc", EnableEvents: true, EnableMetrics: true,
		MaxBufferedRecords: 100, Linger: time.Millisecond, BatchMaxBytes: 1 << 20, Compression: "zstd",
	}
}

func newOffline(t *testing.T, mod func(*Config)) *Client {
	t.Helper()
	cfg := offlineConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func TestRecordValidation(t *testing.T) {
	c := newOffline(t, nil)
	ctx := context.Background()
	f := func(name string, err error, want error, field string) {
		t.Helper()
		if !errors.Is(err, want) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want %v naming %q", name, err, want, field)
		}
	}
	f("empty event name", c.RecordEvent(ctx, Event{Type: "checkpoint"}), schemas.ErrEmptyField, "name")
	f("empty event type", c.RecordEvent(ctx, Event{Name: "x"}), schemas.ErrEmptyField, "type")
	f("empty metric name", c.RecordMetric(ctx, Metric{Value: 1, AggregationType: schemas.Counter}), schemas.ErrEmptyField, "name")
	f("unknown aggregation", c.RecordMetric(ctx, Metric{Name: "m", Value: 1, AggregationType: "summary"}),
		schemas.ErrUnknownAggregation, "summary")
	f("NaN", c.RecordMetric(ctx, Metric{Name: "m", Value: math.NaN(), AggregationType: schemas.Gauge}), schemas.ErrBadValue, "value")
	f("Inf", c.RecordMetric(ctx, Metric{Name: "m", Value: math.Inf(1), AggregationType: schemas.Gauge}), schemas.ErrBadValue, "value")
	f("bad attribute", c.RecordEvent(ctx, Event{Type: "t", Name: "n", Attributes: map[string]any{"ch": make(chan int)}}),
		schemas.ErrBadAttribute, `"ch"`)
	if s := c.Stats(); s.Accepted != 0 {
		t.Fatalf("bad records were accepted: %+v", s)
	}
}

func TestBufferFullBlocksUntilContextEnds(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedRecords = 3 })
	ctx := context.Background()
	for i := range 3 {
		if err := c.RecordEvent(ctx, Event{Type: "t", Name: "n"}); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := c.RecordEvent(short, Event{Type: "t", Name: "n"})
	if !errors.Is(err, ErrBufferFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrBufferFull wrapping the deadline", err)
	}
	if s := c.Stats(); s.Accepted != 3 || s.Buffered != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCloseWakesBlockedRecordAndRefusesNew(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedRecords = 1 })
	ctx := context.Background()
	if err := c.RecordEvent(ctx, Event{Type: "t", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error)
	go func() { blocked <- c.RecordEvent(ctx, Event{Type: "t", Name: "n"}) }()
	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := c.Close(closeCtx); err == nil {
		t.Fatal("Close reported success with an unacknowledged record")
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked record: got %v, want ErrClosed", err)
	}
	if err := c.RecordMetric(ctx, Metric{Name: "m", AggregationType: schemas.Counter}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: got %v, want ErrClosed", err)
	}
}

func TestDisabledKindsAreDiscarded(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.EnableEvents, cfg.EnableMetrics = false, false })
	ctx := context.Background()
	if err := c.RecordEvent(ctx, Event{Type: "t", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordMetric(ctx, Metric{Name: "m", AggregationType: schemas.Counter}); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Accepted != 0 || s.Disabled != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		cfg := offlineConfig()
		mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %q", err, want)
		}
	}
	f(func(c *Config) { c.MaxBufferedRecords = 0 }, "max buffered records")
	f(func(c *Config) { c.Compression = "brotli" }, "compression")
	f(func(c *Config) { c.Kafka.Brokers = nil }, "brokers")
	f(func(c *Config) { c.Kafka.MetricsTopic = c.Kafka.EventsTopic }, "topics")
}

func TestSeriesKeyIgnoresAttributeOrder(t *testing.T) {
	a := Metric{Name: "m", Unit: "s", AggregationType: schemas.Gauge, Attributes: map[string]any{"a": "1", "b": int64(2)}}
	b := Metric{Name: "m", Unit: "s", AggregationType: schemas.Gauge, Attributes: map[string]any{"b": int64(2), "a": "1"}}
	c := Metric{Name: "m", Unit: "s", AggregationType: schemas.Gauge, Attributes: map[string]any{"a": "1", "b": int64(3)}}
	if string(SeriesKey(&a)) != string(SeriesKey(&b)) || string(SeriesKey(&a)) == string(SeriesKey(&c)) {
		t.Fatalf("series keys: %q %q %q", SeriesKey(&a), SeriesKey(&b), SeriesKey(&c))
	}
}
