package producer

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/schemas"
)

// Config configures a Client (the spec's TelemetryConfig). DefaultConfig gives every default; the
// README's table lists the TRIBUTARY_* variable of each setting, which Default reads.
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

	// MaxBufferedRecords bounds the records accepted but not yet acknowledged by Kafka, and
	// MaxBufferedBytes their encoded keys and values (default 64 MiB). What happens when either is
	// reached is the BufferFullPolicy; one call that needs more than the whole buffer is refused
	// with ErrBufferFull at once, under either policy.
	MaxBufferedRecords int   `envconfig:"MAX_BUFFERED_RECORDS" default:"100000"`
	MaxBufferedBytes   int64 `envconfig:"MAX_BUFFERED_BYTES" default:"67108864"`
	// BufferFullPolicy is "block" (wait up to BufferFullTimeout or the call's context, then
	// ErrBufferFull) or "drop" (discard the record at once and count it in Stats.DroppedBufferFull).
	BufferFullPolicy  string        `envconfig:"BUFFER_FULL_POLICY" default:"block"`
	BufferFullTimeout time.Duration `envconfig:"BUFFER_FULL_TIMEOUT" default:"5s"`

	// SampleRate keeps this fraction of traces (0 < rate <= 1). The choice hashes trace_id, so a
	// trace is kept or dropped whole, by every process. Records without a trace_id are always kept.
	SampleRate float64 `envconfig:"SAMPLE_RATE" default:"1"`

	// Attribute limits, checked when a record is made: at most MaxAttributes top-level keys, keys of
	// at most MaxAttributeKeyBytes, and each value at most MaxAttributeValueBytes (a string's own
	// bytes, a list's or map's JSON; at most schemas.MaxDecodedBytes, 1 MiB: the consumer's decoder
	// refuses longer strings).
	MaxAttributes          int `envconfig:"MAX_ATTRIBUTES" default:"128"`
	MaxAttributeKeyBytes   int `envconfig:"MAX_ATTRIBUTE_KEY_BYTES" default:"256"`
	MaxAttributeValueBytes int `envconfig:"MAX_ATTRIBUTE_VALUE_BYTES" default:"16384"`
	// Linger is how long a partition's batch waits for more records before it is sent.
	Linger time.Duration `envconfig:"LINGER" default:"5ms"`
	// BatchMaxBytes bounds one produce batch.
	BatchMaxBytes int32 `envconfig:"BATCH_MAX_BYTES" default:"1000000"`
	// MaxRecordBytes bounds one record's size in a produce batch of its own: key + value +
	// RecordOverhead bytes. It must not exceed BatchMaxBytes (a record that does not fit in a batch
	// is never delivered); a bigger record is refused at the call with ErrRecordTooLarge.
	MaxRecordBytes int32 `envconfig:"MAX_RECORD_BYTES" default:"1000000"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `envconfig:"COMPRESSION" default:"zstd"`
}

// DefaultConfig returns the defaults of every setting: its fields' default tags, as the tributary
// command and Default read them when no TRIBUTARY_* variable is set.
func DefaultConfig() Config { return envconf.Default[Config]() }

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	errs := []error{c.Kafka.Validate()}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxBufferedRecords < 1 {
		bad("producer max buffered records %d: must be at least 1", c.MaxBufferedRecords)
	}
	if c.MaxBufferedBytes < 1024 {
		bad("producer max buffered bytes %d: must be at least 1024", c.MaxBufferedBytes)
	}
	if c.BufferFullPolicy != "block" && c.BufferFullPolicy != "drop" {
		bad("producer buffer full policy %q: want block or drop", c.BufferFullPolicy)
	}
	if c.BufferFullTimeout < 0 {
		bad("producer buffer full timeout %v: must not be negative", c.BufferFullTimeout)
	}
	if !(c.SampleRate > 0 && c.SampleRate <= 1) {
		bad("producer sample rate %v: must be in (0, 1]", c.SampleRate)
	}
	if c.MaxAttributes < 1 || c.MaxAttributeKeyBytes < 1 || c.MaxAttributeValueBytes < 1 {
		bad("producer attribute limits (%d keys, %d key bytes, %d value bytes): must be positive",
			c.MaxAttributes, c.MaxAttributeKeyBytes, c.MaxAttributeValueBytes)
	}
	if c.MaxAttributeValueBytes > schemas.MaxDecodedBytes {
		bad("producer max attribute value bytes %d: at most %d, the longest string the consumer's decoder reads",
			c.MaxAttributeValueBytes, schemas.MaxDecodedBytes)
	}
	if c.Linger < 0 {
		bad("producer linger %v: must not be negative", c.Linger)
	}
	if c.BatchMaxBytes < 1024 {
		bad("producer batch max bytes %d: must be at least 1024", c.BatchMaxBytes)
	}
	if c.MaxRecordBytes < RecordOverhead+1 || c.MaxRecordBytes > c.BatchMaxBytes {
		bad("producer max record bytes %d: must be more than %d and at most the batch max bytes (%d), or such a record is never delivered",
			c.MaxRecordBytes, RecordOverhead, c.BatchMaxBytes)
	}
	if _, err := compression(c.Compression); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
