package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/schemas"
)

// offlineConfig points at a port where no broker listens: records are accepted into the buffer and
// wait there.
func offlineConfig() Config {
	cfg := DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "test", EventsTopic: "e", MetricsTopic: "m",
		TopicPartitions: 1, TopicReplication: 1}
	cfg.Service, cfg.MaxBufferedRecords, cfg.Linger, cfg.BufferFullTimeout = "svc", 100, time.Millisecond, 0
	return cfg
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
	// The record size limit must fit in a produce batch, or such a record is never delivered.
	f(func(c *Config) { c.MaxRecordBytes = c.BatchMaxBytes + 1 }, "max record bytes 1000001")
	f(func(c *Config) { c.BatchMaxBytes = 4096 }, "batch max bytes (4096)")
	f(func(c *Config) { c.MaxRecordBytes = RecordOverhead }, "max record bytes")
	f(func(c *Config) { c.MaxBufferedBytes = 0 }, "max buffered bytes")
	// A longer attribute string would be dead-lettered by the consumer's decoder.
	f(func(c *Config) { c.MaxAttributeValueBytes = schemas.MaxDecodedBytes + 1 }, "max attribute value bytes 1048577")
	atLimit := offlineConfig()
	atLimit.MaxAttributeValueBytes = schemas.MaxDecodedBytes
	if err := atLimit.Validate(); err != nil {
		t.Errorf("MaxAttributeValueBytes at the decoder's limit: %v", err)
	}
}

func TestSeriesKeyIgnoresAttributeOrder(t *testing.T) {
	a := Metric{Name: "m", Unit: "s", AggregationType: schemas.Gauge, Attributes: map[string]any{"a": "1", "b": int64(2)}}
	b := Metric{Name: "m", Unit: "s", AggregationType: schemas.Gauge, Attributes: map[string]any{"b": int64(2), "a": "1"}}
	c := Metric{Name: "m", Unit: "s", AggregationType: schemas.Gauge, Attributes: map[string]any{"a": "1", "b": int64(3)}}
	if string(SeriesKey(&a)) != string(SeriesKey(&b)) || string(SeriesKey(&a)) == string(SeriesKey(&c)) {
		t.Fatalf("series keys: %q %q %q", SeriesKey(&a), SeriesKey(&b), SeriesKey(&c))
	}
}

// The series key is what partitions metrics: a different key for the same series after an upgrade
// would send its points to another partition and consumer than its earlier ones. It stays the
// bytes it was (tenant, name, unit, type, then key=value in key order, values as
// FlattenAttributes gives them), checked against that definition on every kind of value, with
// more keys than SeriesKey sorts without allocating.
func TestSeriesKeyKeepsItsBytes(t *testing.T) {
	was := func(m *Metric) []byte {
		keys, values := schemas.FlattenAttributes(m.Attributes)
		b := []byte(m.Tenant + "\x00" + m.Name + "\x00" + m.Unit + "\x00" + string(m.AggregationType))
		for i, k := range keys {
			b = append(b, 0)
			b = append(b, k+"="+values[i]...)
		}
		return b
	}
	values := []any{nil, true, false, int64(-7), int64(math.MaxInt64), 2.0, -0.5, 1e21, "", "ü=\x00", []any{"a", int64(1)},
		map[string]any{"z": nil, "a": []any{}}}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		attrs := map[string]any{}
		for j := range rng.IntN(13) {
			attrs[fmt.Sprintf("k%d.%d", rng.IntN(100), j)] = values[rng.IntN(len(values))]
		}
		m := Metric{Name: "http.server.duration", Unit: "ms", AggregationType: schemas.Histogram, Attributes: attrs,
			Source: schemas.Source{Tenant: "4f9e2a1c-0b7d-4e3f-8a6c-5d2b1e0f9a87"}}
		if i%3 == 0 {
			m.Tenant, m.Unit = "", ""
		}
		if got, want := SeriesKey(&m), was(&m); !bytes.Equal(got, want) {
			t.Fatalf("attributes %v: series key %q, was %q", attrs, got, want)
		}
	}
}

func TestAttributeLimits(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxAttributes, cfg.MaxAttributeKeyBytes, cfg.MaxAttributeValueBytes = 3, 8, 20 })
	ctx := context.Background()
	f := func(attrs map[string]any, want string) {
		t.Helper()
		err := c.RecordEvent(ctx, Event{Type: "t", Name: "n", Attributes: attrs})
		if want == "" {
			if err != nil {
				t.Errorf("%v: %v", attrs, err)
			}
			return
		}
		if !errors.Is(err, ErrAttributeLimit) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want ErrAttributeLimit naming %q", attrs, err, want)
		}
	}
	// Each limit at its value, then one past it.
	f(map[string]any{"a": 1, "b": 2, "c": 3}, "")
	f(map[string]any{"a": 1, "b": 2, "c": 3, "d": 4}, "4 keys")
	f(map[string]any{"exactly8": 1}, "")
	f(map[string]any{"ninechars": 1}, "key of 9 bytes, at most 8")
	f(map[string]any{"s": strings.Repeat("x", 20)}, "")
	f(map[string]any{"s": strings.Repeat("x", 21)}, "value of 21 bytes, at most 20")
	f(map[string]any{"l": []any{"aaaaaaa", "bbbbbb"}}, "")                           // ["aaaaaaa","bbbbbb"]: 20 bytes
	f(map[string]any{"l": []any{"aaaaaaa", "bbbbbbb"}}, "value of 21 bytes as JSON") // 21 bytes
	if s := c.Stats(); s.Invalid != 4 || s.Accepted != 4 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRecordBatchIsAllOrNothing(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedRecords = 5 })
	ctx := context.Background()
	good := []Event{{Type: "t", Name: "1"}, {Type: "t", Name: "2"}}
	_, err := c.RecordBatch(ctx, append(good, Event{Type: "t"}), nil)
	var be *BatchError
	if !errors.As(err, &be) || be.Kind != "event" || be.Index != 2 || !strings.Contains(err.Error(), "name") {
		t.Fatalf("got %v, want a BatchError for event 2 naming the field", err)
	}
	if c.Stats().Accepted != 0 {
		t.Fatal("a refused batch accepted records")
	}
	if n, err := c.RecordBatch(ctx, good, []Metric{{Name: "m", AggregationType: schemas.Counter}}); n != 3 || err != nil {
		t.Fatalf("good batch: %d, %v", n, err)
	}
	// 3 of 5 slots are taken: a batch of 3 does not fit and takes nothing.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.RecordBatch(short, good[:1], []Metric{{Name: "m", AggregationType: schemas.Gauge}, {Name: "m", AggregationType: schemas.Gauge}}); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("got %v, want ErrBufferFull", err)
	}
	if s := c.Stats(); s.Accepted != 3 || s.Buffered != 3 {
		t.Fatalf("a batch that did not fit took room: %+v", s)
	}
}

func TestDropPolicyDropsAndCounts(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedRecords, cfg.BufferFullPolicy = 2, "drop" })
	ctx := context.Background()
	for i := range 5 {
		err := c.RecordEvent(ctx, Event{Type: "t", Name: "n"})
		if i < 2 && err != nil || i >= 2 && !errors.Is(err, ErrBufferFull) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if s := c.Stats(); s.Accepted != 2 || s.DroppedBufferFull != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBlockPolicyTimeout(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedRecords, cfg.BufferFullTimeout = 1, 50*time.Millisecond })
	ctx := context.Background()
	_ = c.RecordEvent(ctx, Event{Type: "t", Name: "n"})
	if err := c.RecordEvent(ctx, Event{Type: "t", Name: "n"}); !errors.Is(err, ErrBufferFull) || !strings.Contains(err.Error(), "50ms") {
		t.Fatalf("got %v, want ErrBufferFull after the 50ms timeout", err)
	}
}

func TestDefaultClient(t *testing.T) {
	t.Setenv("TRIBUTARY_KAFKA_BROKERS", "127.0.0.1:1")
	t.Setenv("TRIBUTARY_SERVICE", "from-env")
	prev := SetDefault(nil)
	defer SetDefault(prev)
	a, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if b, _ := Default(); b != a || a.src.Service != "from-env" {
		t.Fatal("Default must return one client made from the environment")
	}
	mine := newOffline(t, nil)
	if SetDefault(mine) != a {
		t.Fatal("SetDefault must return the previous client")
	}
	if d, _ := Default(); d != mine {
		t.Fatal("Default must return the client given to SetDefault")
	}
}

func TestSpanFromContext(t *testing.T) {
	c := newOffline(t, nil)
	ctx, sp := StartSpan(context.Background())
	if len(sp.TraceID) != 32 || len(sp.SpanID) != 16 {
		t.Fatalf("ids %+v", sp)
	}
	child, sp2 := StartSpan(ctx)
	if sp2.TraceID != sp.TraceID || sp2.SpanID == sp.SpanID {
		t.Fatalf("child span %+v of %+v", sp2, sp)
	}
	e := Event{Type: "t", Name: "n"}
	if _, err := c.prepareEvent(child, &e); err != nil || e.TraceID != sp.TraceID || e.SpanID != sp2.SpanID {
		t.Fatalf("event %+v, %v", e, err)
	}
}

// Many goroutines contend for a small buffer that Kafka never drains: exactly MaxBufferedRecords are
// accepted, the rest time out with ErrBufferFull, and Close wakes anyone still waiting.
func TestSlotsUnderContention(t *testing.T) {
	c := newOffline(t, func(cfg *Config) { cfg.MaxBufferedRecords, cfg.BufferFullTimeout = 7, 20*time.Millisecond })
	var wg sync.WaitGroup
	var ok, full atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				switch err := c.RecordEvent(context.Background(), Event{Type: "t", Name: "n"}); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrBufferFull):
					full.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 7 || full.Load() != 33 || c.Stats().Buffered != 7 {
		t.Fatalf("accepted %d, refused %d, buffered %d", ok.Load(), full.Load(), c.Stats().Buffered)
	}
}

// An int attribute (Go's default integer) takes the one-pass check as it is: the record it makes
// decodes as the one its int64 makes, with the same series key byte for byte, so neither what consumers
// decode nor a series' partition depends on which of the two the caller used. The caller's map is
// left as it was.
func TestIntAttributesRecordAsTheirInt64(t *testing.T) {
	c := newOffline(t, nil)
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	dec := codec.NewDecoder()
	ctx := context.Background()
	ts := time.Date(2026, 12, 4, 10, 0, 0, 123456000, time.UTC)
	values := []any{0, 7, -7, math.MaxInt, math.MinInt, int64(3), "x", true, nil, 2.5}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		attrs, as64 := map[string]any{}, map[string]any{}
		for j := range 1 + rng.IntN(8) {
			k, v := fmt.Sprintf("k%d", j), values[rng.IntN(len(values))]
			attrs[k], as64[k] = v, v
			if n, ok := v.(int); ok {
				as64[k] = int64(n)
			}
		}
		before := maps.Clone(attrs)
		ev := func(a map[string]any) Event {
			return Event{EventID: "e1", Type: "t", Name: "n", TraceID: "tr", Timestamp: ts, Attributes: a}
		}
		e1, e2 := ev(attrs), ev(as64)
		r1, err1 := c.prepareEvent(ctx, &e1)
		r2, err2 := c.prepareEvent(ctx, &e2)
		if err1 != nil || err2 != nil {
			t.Fatalf("event of %v: %v, %v", attrs, err1, err2)
		}
		var d1, d2 schemas.Event
		if err1, err2 = dec.DecodeEvent(r1.Value, &d1), dec.DecodeEvent(r2.Value, &d2); err1 != nil || err2 != nil || !reflect.DeepEqual(d1, d2) {
			t.Fatalf("event of %v: %v, %v; decoded %#v, with int64s %#v", attrs, err1, err2, d1, d2)
		}
		me := func(a map[string]any) Metric {
			return Metric{MetricID: "m1", Name: "m", Value: 1, Unit: "s", AggregationType: schemas.Gauge, Timestamp: ts, Attributes: a}
		}
		m1, m2 := me(attrs), me(as64)
		q1, err1 := c.prepareMetric(ctx, &m1)
		q2, err2 := c.prepareMetric(ctx, &m2)
		if err1 != nil || err2 != nil || !bytes.Equal(q1.Key, q2.Key) {
			t.Fatalf("metric of %v: %v, %v; key %q, with int64s %q", attrs, err1, err2, q1.Key, q2.Key)
		}
		var n1, n2 schemas.Metric
		if err1, err2 = dec.DecodeMetric(q1.Value, &n1), dec.DecodeMetric(q2.Value, &n2); err1 != nil || err2 != nil || !reflect.DeepEqual(n1, n2) {
			t.Fatalf("metric of %v: %v, %v; decoded %#v, with int64s %#v", attrs, err1, err2, n1, n2)
		}
		if !reflect.DeepEqual(attrs, before) {
			t.Fatalf("the caller's map changed: %#v, was %#v", attrs, before)
		}
	}
	if !c.plainAndWithinLimits(map[string]any{"n": 7}) {
		t.Fatal("an int attribute took the full path")
	}
}
