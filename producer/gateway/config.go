package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary/internal/envconf"
)

// Config configures the gateway. DefaultConfig gives every default; the README's table lists the
// TRIBUTARY_GATEWAY_* variable of each setting.
type Config struct {
	// Listen is the HTTP address.
	Listen string `envconfig:"GATEWAY_LISTEN" default:"127.0.0.1:8090"`
	// Tokens maps bearer tokens to tenants: "token1:tenant1,token2:tenant2". The tenant is stamped
	// on every record sent with the token; a body cannot set it.
	Tokens map[string]string `envconfig:"GATEWAY_TOKENS"`
	// MaxBodyBytes bounds a request body after decompression; MaxRecords the records in one request.
	MaxBodyBytes int64 `envconfig:"GATEWAY_MAX_BODY_BYTES" default:"8388608"`
	MaxRecords   int   `envconfig:"GATEWAY_MAX_RECORDS" default:"10000"`
	// BufferWait is how long a request waits for room in the producer's buffer before the gateway
	// answers 503 with Retry-After.
	BufferWait time.Duration `envconfig:"GATEWAY_BUFFER_WAIT" default:"1s"`
	// FlushTimeout bounds a request with ?wait=ack, which answers only once Kafka acknowledged its
	// records.
	FlushTimeout time.Duration `envconfig:"GATEWAY_FLUSH_TIMEOUT" default:"10s"`
	// MaxConcurrentRequests bounds the ingest requests served at once, and MaxInflightBytes the
	// (decompressed) body bytes they hold together; past either the gateway answers 503 with
	// Retry-After at once. MaxInflightBytes must be at least MaxBodyBytes. For these four settings,
	// zero in a Config given to New means the default.
	MaxConcurrentRequests int   `envconfig:"GATEWAY_MAX_CONCURRENT_REQUESTS" default:"16"`
	MaxInflightBytes      int64 `envconfig:"GATEWAY_MAX_INFLIGHT_BYTES" default:"67108864"`
	// ReadHeaderTimeout bounds reading a request's headers; BodyTimeout reading its body (408 past
	// it, and the connection is closed).
	ReadHeaderTimeout time.Duration `envconfig:"GATEWAY_READ_HEADER_TIMEOUT" default:"10s"`
	BodyTimeout       time.Duration `envconfig:"GATEWAY_BODY_TIMEOUT" default:"30s"`
	// A record with an id and no timestamp gets the same timestamp each time it is sent, so a
	// retry is stored once: a UUIDv7 id's own time, or else the time the id was first seen,
	// remembered for TimestampCacheTTL in a cache of at most TimestampCacheEntries ids (about 200
	// bytes each). Zero means the default.
	TimestampCacheTTL     time.Duration `envconfig:"GATEWAY_TIMESTAMP_CACHE_TTL" default:"10m"`
	TimestampCacheEntries int           `envconfig:"GATEWAY_TIMESTAMP_CACHE_ENTRIES" default:"100000"`
	// OTLPConfig holds the OTLP ingest settings (TRIBUTARY_GATEWAY_OTLP_*).
	OTLPConfig
}

// DefaultConfig returns the defaults of every setting (its fields' default tags, as the tributary
// command reads them), with no tokens.
func DefaultConfig() Config { return envconf.Default[Config]() }

// withDefaults fills the settings that zero means the default for.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = d.MaxConcurrentRequests
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = max(d.MaxInflightBytes, c.MaxBodyBytes)
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = d.BodyTimeout
	}
	if c.TimestampCacheTTL == 0 {
		c.TimestampCacheTTL = d.TimestampCacheTTL
	}
	if c.TimestampCacheEntries == 0 {
		c.TimestampCacheEntries = d.TimestampCacheEntries
	}
	c.OTLPConfig = c.OTLPConfig.withDefaults()
	return c
}

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		bad("gateway listen: empty")
	}
	if len(c.Tokens) == 0 {
		bad("gateway tokens: none (set TRIBUTARY_GATEWAY_TOKENS=token:tenant,...)")
	}
	if c.MaxBodyBytes < 1024 {
		bad("gateway max body bytes %d: must be at least 1024", c.MaxBodyBytes)
	}
	if c.MaxRecords < 1 {
		bad("gateway max records %d: must be at least 1", c.MaxRecords)
	}
	if c.BufferWait < 0 || c.FlushTimeout <= 0 {
		bad("gateway buffer wait %v / flush timeout %v: must not be negative / must be positive", c.BufferWait, c.FlushTimeout)
	}
	if c.MaxConcurrentRequests < 1 {
		bad("gateway max concurrent requests %d: must be at least 1", c.MaxConcurrentRequests)
	}
	if c.MaxInflightBytes < c.MaxBodyBytes {
		bad("gateway max inflight bytes %d: must be at least the max body bytes (%d), or a large request never passes", c.MaxInflightBytes, c.MaxBodyBytes)
	}
	if c.TimestampCacheTTL < 0 || c.TimestampCacheEntries < 1 {
		bad("gateway timestamp cache ttl %v / entries %d: must be positive", c.TimestampCacheTTL, c.TimestampCacheEntries)
	}
	if c.ReadHeaderTimeout <= 0 || c.BodyTimeout <= 0 {
		bad("gateway read header timeout %v / body timeout %v: must be positive", c.ReadHeaderTimeout, c.BodyTimeout)
	}
	errs = append(errs, c.OTLPConfig.Validate())
	for tok, tenant := range c.Tokens {
		if len(tok) < 8 || tenant == "" {
			bad("gateway token for tenant %q: tokens need 8 characters or more and a tenant", tenant)
		}
	}
	return errors.Join(errs...)
}
