package producer_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary/tributary/producer"
)

// BenchmarkRecordEvent: RecordEvent's cost per event (validation, encoding, queueing), on an
// embedded broker; its allocations per event are what make bench's SDK figure compares with a
// bare franz-go producer's. Run with -benchmem.
func BenchmarkRecordEvent(b *testing.B) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events", "metrics"))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	cfg := producer.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Kafka.EventsTopic, cfg.Kafka.MetricsTopic = cluster.ListenAddrs(), "events", "metrics"
	c, err := producer.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := context.Background()
	attrs := map[string]any{"node_id": "transform_1", "region": "eu-west", "execution_count": 7}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.RecordEvent(ctx, producer.Event{Type: producer.EventNodeStarted, Name: "transform_1 node_started", TraceID: "t1", Attributes: attrs}); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
