// Package kafka holds the Kafka settings shared by producers, consumers and migrate: brokers, topic
// names, and the creation of topics.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config says how to reach Kafka and which topics carry records. Read from the environment with the
// component's prefix (TRIBUTARY_KAFKA_BROKERS and so on).
type Config struct {
	// Brokers lists seed brokers, host:port, comma-separated in the environment.
	Brokers []string `envconfig:"BROKERS" default:"127.0.0.1:19092"`
	// ClientID names this process to the brokers.
	ClientID string `envconfig:"CLIENT_ID" default:"tributary"`
	// EventsTopic and MetricsTopic carry raw records (Avro single-object encoding).
	EventsTopic  string `envconfig:"EVENTS_TOPIC" default:"tributary.events.v1"`
	MetricsTopic string `envconfig:"METRICS_TOPIC" default:"tributary.metrics.v1"`
	// RollupsTopic carries rollup windows for downstream consumers; DLQTopic the records that did
	// not decode or validate, with the reason in headers.
	RollupsTopic string `envconfig:"ROLLUPS_TOPIC" default:"tributary.rollups.v1"`
	DLQTopic     string `envconfig:"DLQ_TOPIC" default:"tributary.dlq.v1"`
	// TopicPartitions and TopicReplication are used when migrate creates missing topics.
	TopicPartitions  int32 `envconfig:"TOPIC_PARTITIONS" default:"8"`
	TopicReplication int16 `envconfig:"TOPIC_REPLICATION" default:"1"`
}

// Validate reports the first bad setting, naming it.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0 || c.Brokers[0] == "":
		return errors.New("kafka brokers: empty")
	case c.EventsTopic == "" || c.MetricsTopic == "":
		return errors.New("kafka topics: events and metrics topic names must be set")
	case c.TopicPartitions < 1:
		return fmt.Errorf("kafka topic partitions %d: must be at least 1", c.TopicPartitions)
	case c.TopicReplication < 1:
		return fmt.Errorf("kafka topic replication %d: must be at least 1", c.TopicReplication)
	}
	seen := map[string]string{}
	for _, t := range [][2]string{{"events", c.EventsTopic}, {"metrics", c.MetricsTopic}, {"rollups", c.RollupsTopic}, {"dlq", c.DLQTopic}} {
		if t[1] == "" {
			continue
		}
		if other, ok := seen[t[1]]; ok {
			return fmt.Errorf("kafka topics: %s and %s share the topic %q", other, t[0], t[1])
		}
		seen[t[1]] = t[0]
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("kafka broker %q: want host:port", b)
		}
	}
	return nil
}

// ClientOpts returns the connection options common to every client.
func (c Config) ClientOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
}

// Topics returns every topic Tributary uses that is named.
func (c Config) Topics() []string {
	var out []string
	for _, t := range []string{c.EventsTopic, c.MetricsTopic, c.RollupsTopic, c.DLQTopic} {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// EnsureTopics creates the events, metrics, rollups and dead-letter topics if they are missing.
// Existing topics are left as they are.
func EnsureTopics(ctx context.Context, c Config) error {
	cl, err := kgo.NewClient(c.ClientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, c.TopicPartitions, c.TopicReplication, nil, c.Topics()...)
	if err != nil {
		return fmt.Errorf("create topics on %v: %w", c.Brokers, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
