package producer_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// smallTopic creates a topic on the real broker whose max.message.bytes is 1024, so a batch bigger
// than that (a record with a few KiB of incompressible attributes) is refused with
// MESSAGE_TOO_LARGE while small records are delivered.
func smallTopic(t *testing.T, brokers []string) string {
	t.Helper()
	limit := "1024"
	return testenv.TopicsWithConfig(t, brokers, 1, map[string]*string{"max.message.bytes": &limit}, "small")[0]
}

// A Delivery reports its own records only: a batch Kafka refuses next to a good one, concurrently,
// fails alone; neither shows up in Flush, which keeps reporting untracked records.
func TestDeliveryReportsOnlyItsRecords(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	events := testenv.Topics(t, brokers, 1, "events")[0]
	cfg := producer.DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "t", EventsTopic: events, MetricsTopic: smallTopic(t, brokers), TopicPartitions: 1, TopicReplication: 1}
	cfg.Service = "svc"
	c, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	big := producer.Metric{Name: "m", Value: 1, AggregationType: schemas.Gauge, Attributes: map[string]any{"blob": randomHex(8000)}}
	bad, err := c.RecordBatchDelivery(ctx, nil, []producer.Metric{big})
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.RecordBatchDelivery(ctx, []producer.Event{{Type: "t", Name: "1"}, {Type: "t", Name: "2"}}, nil)
	if err != nil || good.Accepted() != 2 {
		t.Fatal(good, err)
	}
	if err := good.Wait(ctx); err != nil {
		t.Fatalf("good records: %v", err)
	}
	var de *producer.DeliveryError
	if err := bad.Wait(ctx); !errors.As(err, &de) || de.Failed != 1 || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("refused record: got %v, want a DeliveryError wrapping MESSAGE_TOO_LARGE", err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush reported a tracked record's failure: %v", err)
	}
	// Untracked records keep Flush's contract: the failure is reported once, then cleared.
	if err := c.RecordMetric(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("Flush after an untracked failure: %v", err)
	}
	if err := c.RecordEvent(ctx, producer.Event{Type: "t", Name: "3"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if s := c.Stats(); s.Sent != 3 || s.Failed != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
