package producer_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// Flush really waits for acks: right after it returns, every record is readable from the real broker.
func TestFlushWaitsForAcks(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 4, "events", "metrics")
	cfg := producer.DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "test", EventsTopic: topics[0], MetricsTopic: topics[1], TopicPartitions: 4, TopicReplication: 1}
	cfg.Service, cfg.Host, cfg.MaxBufferedRecords = "svc", "h1", 10000
	c, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 2000
	for i := range n {
		e := producer.Event{
			TraceID: fmt.Sprintf("trace-%d", i%37), Type: "checkpoint", Name: "Data Loaded",
			Attributes: map[string]any{"rows": i, "nested": map[string]any{"ok": i%2 == 0, "ratio": float64(i) / 4}},
		}
		if err := c.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := c.RecordMetric(ctx, producer.Metric{Name: "rows", Value: float64(i), Unit: "count", AggregationType: schemas.Counter}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Sent != 2*n || s.Buffered != 0 || s.Failed != 0 {
		t.Fatalf("after Flush: %+v", s)
	}

	// Read back with a fresh client, ending at the high watermarks observed now.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, _ := schemas.NewCodec()
	var events, metrics int
	perTrace := map[string]int{}
	for events+metrics < 2*n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == topics[0] {
				e, err := codec.DecodeEvent(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				if string(r.Key) != e.TraceID {
					t.Fatalf("event key %q, trace %q", r.Key, e.TraceID)
				}
				// Events of one trace are on one partition and in order.
				if last, ok := perTrace[e.TraceID]; ok && int(e.Attributes["rows"].(int64)) <= last {
					t.Fatalf("trace %s out of order", e.TraceID)
				}
				perTrace[e.TraceID] = int(e.Attributes["rows"].(int64))
				if e.Host != "h1" || e.Service != "svc" || e.EventID == "" || !reflect.DeepEqual(e.Attributes["nested"].(map[string]any)["ok"], e.Attributes["rows"].(int64)%2 == 0) {
					t.Fatalf("decoded %#v", e)
				}
				events++
			} else {
				metrics++
			}
		})
	}
	if events != n || metrics != n {
		t.Fatalf("read %d events and %d metrics right after Flush, want %d each", events, metrics, n)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
