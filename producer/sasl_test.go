package producer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
)

// The SASL options work against the real broker's SASL listener, and a wrong password fails.
func TestSASL(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 1, "events", "metrics")
	sasl := testenv.KafkaSASLBrokers(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		for _, pass := range []string{"tributary-secret", "wrong"} {
			cfg := producer.DefaultConfig()
			cfg.Kafka = kafka.Config{Brokers: sasl, ClientID: "sasl", EventsTopic: topics[0], MetricsTopic: topics[1],
				SASLMechanism: mech, SASLUser: "tributary", SASLPassword: pass, TopicPartitions: 1, TopicReplication: 1}
			c, err := producer.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wait := 10 * time.Second
			if pass == "wrong" {
				wait = 1500 * time.Millisecond // the failure shows as a flush that never completes
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			if err := c.RecordEvent(ctx, producer.Event{Type: "t", Name: mech}); err != nil {
				t.Fatal(err)
			}
			err = c.Flush(ctx)
			cancel()
			if pass == "tributary-secret" && err != nil {
				t.Errorf("%s: flush with the right password: %v", mech, err)
			}
			if pass == "wrong" && err == nil {
				t.Errorf("%s: flush with a wrong password succeeded", mech)
			}
			short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_ = c.Close(short)
			cancel2()
		}
	}
}

func TestKafkaConfigRejectsBadSecurity(t *testing.T) {
	base := kafka.Config{Brokers: []string{"h:1"}, EventsTopic: "e", MetricsTopic: "m", TopicPartitions: 1, TopicReplication: 1}
	f := func(mod func(*kafka.Config), want string) {
		t.Helper()
		c := base
		mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %q", err, want)
		}
	}
	f(func(c *kafka.Config) { c.SASLMechanism = "GSSAPI" }, "sasl mechanism")
	f(func(c *kafka.Config) { c.SASLMechanism = "PLAIN" }, "sasl user")
	f(func(c *kafka.Config) { c.TLS, c.TLSCAFile = true, "/nonexistent.pem" }, "tls ca file")
	f(func(c *kafka.Config) { c.TLS, c.TLSCertFile = true, "/nonexistent.pem" }, "client certificate")
}
