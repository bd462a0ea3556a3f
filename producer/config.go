package producer

import (
	"fmt"
	"time"

	"github.com/tributary/tributary/internal/kafka"
)

// Config configures a Client (the spec's TelemetryConfig). Read it from the environment with
// envconfig.Process("TRIBUTARY", &cfg); the README's table lists every variable and default.
type Config struct {
	Kafka kafka.Config `envconfig:"KAFKA"`

	// Service, Host and Tenant are stamped on every record this client sends. Host defaults to the
	// machine's host name when empty.
	Service string `envconfig:"SERVICE" default:"unknown"`
	Host    string `envconfig:"HOST" default:""`
	Tenant  string `envconfig:"TENANT" default:""`

	// EnableEvents and EnableMetrics switch recording of each kind on or off; a switched-off kind is
	// accepted and discarded without error.
	EnableEvents  bool `envconfig:"ENABLE_EVENTS" default:"true"`
	EnableMetrics bool `envconfig:"ENABLE_METRICS" default:"true"`

	// MaxBufferedRecords bounds the records accepted but not yet acknowledged by Kafka. When it is
	// reached, RecordEvent/RecordMetric block until there is room or their context ends.
	MaxBufferedRecords int `envconfig:"MAX_BUFFERED_RECORDS" default:"100000"`
	// Linger is how long a partition's batch waits for more records before it is sent.
	Linger time.Duration `envconfig:"LINGER" default:"5ms"`
	// BatchMaxBytes bounds one produce batch.
	BatchMaxBytes int32 `envconfig:"BATCH_MAX_BYTES" default:"1000000"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `envconfig:"COMPRESSION" default:"zstd"`
}

// Validate reports the first bad setting, naming it.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	switch {
	case c.MaxBufferedRecords < 1:
		return fmt.Errorf("producer max buffered records %d: must be at least 1", c.MaxBufferedRecords)
	case c.Linger < 0:
		return fmt.Errorf("producer linger %v: must not be negative", c.Linger)
	case c.BatchMaxBytes < 1024:
		return fmt.Errorf("producer batch max bytes %d: must be at least 1024", c.BatchMaxBytes)
	}
	if _, err := compression(c.Compression); err != nil {
		return err
	}
	return nil
}
