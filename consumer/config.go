package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary/internal/chdb"
	"github.com/tributary/tributary/internal/kafka"
)

// Config configures a Worker. Read it with envconfig.Process("TRIBUTARY", &cfg); the README's table
// lists every variable and default.
type Config struct {
	Kafka      kafka.Config `envconfig:"KAFKA"`
	ClickHouse chdb.Config  `envconfig:"CLICKHOUSE"`

	// Group is the Kafka consumer group; workers in one group share the partitions.
	Group string `envconfig:"CONSUMER_GROUP" default:"tributary-consumer"`
	// A batch is written to ClickHouse when it holds BatchMaxRecords records or BatchMaxBytes bytes
	// of encoded input, or BatchInterval after its first record, whichever comes first.
	BatchMaxRecords int           `envconfig:"CONSUMER_BATCH_MAX_RECORDS" default:"50000"`
	BatchMaxBytes   int           `envconfig:"CONSUMER_BATCH_MAX_BYTES" default:"33554432"`
	BatchInterval   time.Duration `envconfig:"CONSUMER_BATCH_INTERVAL" default:"1s"`
	// RetryBackoffMax caps the wait between attempts to write a batch that ClickHouse refused.
	RetryBackoffMax time.Duration `envconfig:"CONSUMER_RETRY_BACKOFF_MAX" default:"10s"`
	// ShutdownTimeout bounds the final flush and commit when the worker stops.
	ShutdownTimeout time.Duration `envconfig:"CONSUMER_SHUTDOWN_TIMEOUT" default:"30s"`
}

// Validate reports the first bad setting, naming it.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	switch {
	case c.Group == "":
		return errors.New("consumer group: empty")
	case c.BatchMaxRecords < 1:
		return fmt.Errorf("consumer batch max records %d: must be at least 1", c.BatchMaxRecords)
	case c.BatchMaxBytes < 1024:
		return fmt.Errorf("consumer batch max bytes %d: must be at least 1024", c.BatchMaxBytes)
	case c.BatchInterval <= 0:
		return fmt.Errorf("consumer batch interval %v: must be positive", c.BatchInterval)
	case c.RetryBackoffMax <= 0:
		return fmt.Errorf("consumer retry backoff max %v: must be positive", c.RetryBackoffMax)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("consumer shutdown timeout %v: must be positive", c.ShutdownTimeout)
	}
	return nil
}
