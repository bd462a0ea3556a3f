package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/rollups"
)

// Config configures a Worker. DefaultConfig gives every default; the README's table lists the
// TRIBUTARY_* variable of each setting.
type Config struct {
	Kafka      kafka.Config `envconfig:"KAFKA"`
	ClickHouse chdb.Config  `envconfig:"CLICKHOUSE"`

	// Group is the Kafka consumer group; workers in one group share the partitions.
	Group string `envconfig:"CONSUMER_GROUP" default:"tributary-consumer"`
	// A batch is written to ClickHouse when it holds BatchMaxRecords records or BatchMaxBytes bytes
	// of encoded input, or BatchInterval after its first record, whichever comes first; or sooner,
	// BatchLinger after its first record, if the previous batch is stored by then (the writer is
	// idle). At high rates the writer is busy and batches grow while it writes; at low rates
	// records wait about BatchLinger, not BatchInterval. BatchLinger 0 turns the early write off.
	BatchMaxRecords int           `envconfig:"CONSUMER_BATCH_MAX_RECORDS" default:"50000"`
	BatchMaxBytes   int           `envconfig:"CONSUMER_BATCH_MAX_BYTES" default:"33554432"`
	BatchInterval   time.Duration `envconfig:"CONSUMER_BATCH_INTERVAL" default:"1s"`
	BatchLinger     time.Duration `envconfig:"CONSUMER_BATCH_LINGER" default:"200ms"`
	// FetchMaxBytes bounds one fetch response from Kafka (compressed: telemetry often expands 5-10x
	// when decompressed, so this drives memory more than the batch size does).
	FetchMaxBytes int32 `envconfig:"CONSUMER_FETCH_MAX_BYTES" default:"4194304"`
	// RetryBackoffMax caps the wait between attempts to write a batch that ClickHouse refused.
	RetryBackoffMax time.Duration `envconfig:"CONSUMER_RETRY_BACKOFF_MAX" default:"10s"`
	// WriteTimeout bounds one attempt at storing a batch (raw insert, rollup reload and write,
	// outbox produce) and one offset commit; an attempt that times out is retried.
	WriteTimeout time.Duration `envconfig:"CONSUMER_WRITE_TIMEOUT" default:"60s"`
	// ShutdownTimeout bounds the final flush and commit when the worker stops.
	ShutdownTimeout time.Duration `envconfig:"CONSUMER_SHUTDOWN_TIMEOUT" default:"30s"`

	// EnableRollups computes rollup windows, writes them to the rollups table and publishes closed
	// windows on the rollups topic.
	EnableRollups bool `envconfig:"ROLLUPS_ENABLED" default:"true"`
	// RollupTiers are the window widths (comma-separated durations, whole seconds).
	RollupTiers []time.Duration `envconfig:"ROLLUP_TIERS" default:"1m,1h"`
	// RollupLateness: points this far behind their partition's newest event time still land in an
	// open window; later points reopen their stored window and are counted as late.
	RollupLateness time.Duration `envconfig:"ROLLUP_LATENESS" default:"30s"`
	// RollupIdleTimeout: a partition quiet this long closes windows by the wall clock.
	RollupIdleTimeout time.Duration `envconfig:"ROLLUP_IDLE_TIMEOUT" default:"1m"`
	// RollupMaxWindows bounds the windows held in memory (each a few hundred bytes, a histogram's up
	// to a few KiB); past it the oldest stored windows are published early and dropped.
	RollupMaxWindows int `envconfig:"ROLLUP_MAX_WINDOWS" default:"200000"`
	// RollupDedupeIDs is how many of the latest metric ids (tenant and metric_id) the rollups
	// remember, about 40 bytes each: a record re-sent with the same id (a client retry after a
	// timeout, 503 or 504) while its id is remembered is counted once. 0 turns it off.
	RollupDedupeIDs int `envconfig:"ROLLUP_DEDUPE_IDS" default:"1000000"`
	// RollupMaxNewSeries is the label-cardinality guard: how many new series one tenant may start
	// per minute of event time, in this consumer. The points of a new series past it are stored
	// raw as usual and rolled up under their metric's overflow series (attributes
	// {"tributary.overflow":"true"}), counted in tributary_rollup_overflow_points_total. 0 turns
	// the guard off.
	RollupMaxNewSeries int `envconfig:"ROLLUP_MAX_NEW_SERIES_PER_MINUTE" default:"10000"`
	// RollupKnownSeries bounds the series ids the guard remembers as not new (~40 bytes each); a
	// series not seen while half as many others were admitted is forgotten and new again.
	RollupKnownSeries int `envconfig:"ROLLUP_KNOWN_SERIES" default:"1000000"`
	// RollupNewSeriesGrace: for this long after the consumer takes a partition (at start or in a
	// rebalance) new series in it are not capped, so the series it already had are learnt.
	RollupNewSeriesGrace time.Duration `envconfig:"ROLLUP_NEW_SERIES_GRACE" default:"1m"`
}

// RollupConfig returns the rollup engine's configuration.
func (c Config) RollupConfig() rollups.Config {
	return rollups.Config{Tiers: c.RollupTiers, Lateness: c.RollupLateness, IdleTimeout: c.RollupIdleTimeout, MaxWindows: c.RollupMaxWindows,
		DedupeIDs: c.RollupDedupeIDs, MaxNewSeries: c.RollupMaxNewSeries, KnownSeries: c.RollupKnownSeries, NewSeriesGrace: c.RollupNewSeriesGrace}
}

// DefaultConfig returns the defaults of every setting: its fields' default tags, as the tributary
// command reads them when no TRIBUTARY_* variable is set.
func DefaultConfig() Config { return envconf.Default[Config]() }

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	errs := []error{c.Kafka.Validate()}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Kafka.DLQTopic == "" {
		bad("kafka dlq topic: empty (the consumer sends records it cannot decode there)")
	}
	if c.EnableRollups && c.Kafka.RollupsTopic == "" {
		bad("kafka rollups topic: empty (rollups are enabled)")
	}
	if c.Group == "" {
		bad("consumer group: empty")
	}
	if c.BatchMaxRecords < 1 {
		bad("consumer batch max records %d: must be at least 1", c.BatchMaxRecords)
	}
	if c.BatchMaxBytes < 1024 {
		bad("consumer batch max bytes %d: must be at least 1024", c.BatchMaxBytes)
	}
	if c.BatchInterval <= 0 {
		bad("consumer batch interval %v: must be positive", c.BatchInterval)
	}
	if c.BatchLinger < 0 {
		bad("consumer batch linger %v: must not be negative (0 turns it off)", c.BatchLinger)
	}
	if c.FetchMaxBytes < 1<<16 {
		bad("consumer fetch max bytes %d: must be at least 65536", c.FetchMaxBytes)
	}
	if c.RetryBackoffMax <= 0 {
		bad("consumer retry backoff max %v: must be positive", c.RetryBackoffMax)
	}
	if c.WriteTimeout <= 0 {
		bad("consumer write timeout %v: must be positive", c.WriteTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		bad("consumer shutdown timeout %v: must be positive", c.ShutdownTimeout)
	}
	if c.EnableRollups {
		errs = append(errs, c.RollupConfig().Validate())
	}
	return errors.Join(errs...)
}
