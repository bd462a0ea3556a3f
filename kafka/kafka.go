// Package kafka holds the Kafka settings shared by producers, consumers and migrate (brokers, topic
// names, TLS and SASL) and the creation of topics. Config is embedded in producer.Config and
// consumer.Config as their Kafka field.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tributary/tributary/internal/envconf"
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
	// TLS turns on TLS to the brokers; TLSCAFile (PEM) replaces the system roots; TLSCertFile and
	// TLSKeyFile give a client certificate; TLSServerName overrides the name checked.
	TLS           bool   `envconfig:"TLS" default:"false"`
	TLSCAFile     string `envconfig:"TLS_CA_FILE" default:""`
	TLSCertFile   string `envconfig:"TLS_CERT_FILE" default:""`
	TLSKeyFile    string `envconfig:"TLS_KEY_FILE" default:""`
	TLSServerName string `envconfig:"TLS_SERVER_NAME" default:""`
	// SASLMechanism is empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with SASLUser and
	// SASLPassword.
	SASLMechanism string `envconfig:"SASL_MECHANISM" default:""`
	SASLUser      string `envconfig:"SASL_USER" default:""`
	SASLPassword  string `envconfig:"SASL_PASSWORD" default:""`
	// TopicPartitions and TopicReplication are used when migrate creates missing topics.
	TopicPartitions  int32 `envconfig:"TOPIC_PARTITIONS" default:"8"`
	TopicReplication int16 `envconfig:"TOPIC_REPLICATION" default:"1"`
}

// DefaultConfig returns the defaults of every setting: its fields' default tags, as the tributary
// command reads them when no TRIBUTARY_KAFKA_* variable is set.
func DefaultConfig() Config { return envconf.Default[Config]() }

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Brokers) == 0 || c.Brokers[0] == "" {
		bad("kafka brokers: empty")
	}
	for _, b := range c.Brokers {
		if b != "" && !strings.Contains(b, ":") {
			bad("kafka broker %q: want host:port", b)
		}
	}
	if c.EventsTopic == "" || c.MetricsTopic == "" {
		bad("kafka topics: events and metrics topic names must be set")
	}
	seen := map[string]string{}
	for _, t := range [][2]string{{"events", c.EventsTopic}, {"metrics", c.MetricsTopic}, {"rollups", c.RollupsTopic}, {"dlq", c.DLQTopic}} {
		if t[1] == "" {
			continue
		}
		if other, ok := seen[t[1]]; ok {
			bad("kafka topics: %s and %s share the topic %q", other, t[0], t[1])
		}
		seen[t[1]] = t[0]
	}
	if c.TopicPartitions < 1 {
		bad("kafka topic partitions %d: must be at least 1", c.TopicPartitions)
	}
	if c.TopicReplication < 1 {
		bad("kafka topic replication %d: must be at least 1", c.TopicReplication)
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASLUser == "" {
			bad("kafka sasl user: empty with mechanism %s", c.SASLMechanism)
		}
	default:
		bad("kafka sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if _, err := c.tlsConfig(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ClientOpts returns the connection options common to every client: brokers, client id, TLS and
// SASL. Call Validate first; a TLS file that cannot be read is reported by Validate.
func (c Config) ClientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	if tc, err := c.tlsConfig(); err == nil && tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls ca file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca file %s: no PEM certificates", c.TLSCAFile)
		}
	}
	if c.TLSCertFile != "" || c.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c Config) saslMechanism() sasl.Mechanism {
	auth := scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		return plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()
	case "SCRAM-SHA-256":
		return auth.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return auth.AsSha512Mechanism()
	}
	return nil
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
