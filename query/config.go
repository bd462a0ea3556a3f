package query

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/envconf"
)

// Config configures the query service. DefaultConfig gives every default; the README's table lists
// the TRIBUTARY_* variable of each setting.
type Config struct {
	// ClickHouse should name a read-only user (deploy/clickhouse.sh creates tributary_ro).
	ClickHouse chdb.Config `envconfig:"CLICKHOUSE"`
	// Listen is the HTTP address.
	Listen string `envconfig:"QUERY_LISTEN" default:"127.0.0.1:8080"`
	// DefaultLimit applies when a request gives no limit; MaxLimit is the most rows one request may
	// ask for; MaxOffset the deepest page (paginate by time beyond it).
	DefaultLimit int `envconfig:"QUERY_DEFAULT_LIMIT" default:"100"`
	MaxLimit     int `envconfig:"QUERY_MAX_LIMIT" default:"10000"`
	MaxOffset    int `envconfig:"QUERY_MAX_OFFSET" default:"1000000"`
	// Timeout bounds each query, in ClickHouse (max_execution_time) and in the service.
	Timeout time.Duration `envconfig:"QUERY_TIMEOUT" default:"10s"`
	// MaxBuckets bounds the buckets of one aggregation; MaxSeriesRows the bucket x group cells.
	MaxBuckets    int `envconfig:"QUERY_MAX_BUCKETS" default:"10000"`
	MaxSeriesRows int `envconfig:"QUERY_MAX_SERIES_ROWS" default:"200000"`
	// RollupTiers are the consumer's rollup widths; a bucket that is a multiple of one (and a range
	// aligned to it) is answered from rollups.
	RollupTiers []time.Duration `envconfig:"QUERY_ROLLUP_TIERS" default:"1m,1h"`
	// Tokens maps bearer tokens to tenants ("token1:tenant1,..."). When set, every request needs a
	// token and sees only its tenant's rows; when empty, the service is open and sees every tenant.
	Tokens map[string]string `envconfig:"QUERY_TOKENS"`
}

// DefaultConfig returns the defaults of every setting (its fields' default tags, as the tributary
// command reads them), with no tokens.
func DefaultConfig() Config { return envconf.Default[Config]() }

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	errs := []error{c.ClickHouse.Validate()}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		bad("query listen: empty")
	}
	if c.MaxLimit < 1 {
		bad("query max limit %d: must be at least 1", c.MaxLimit)
	}
	if c.DefaultLimit < 1 || c.DefaultLimit > c.MaxLimit {
		bad("query default limit %d: must be between 1 and the max limit %d", c.DefaultLimit, c.MaxLimit)
	}
	if c.MaxOffset < 0 {
		bad("query max offset %d: must not be negative", c.MaxOffset)
	}
	if c.Timeout < time.Second {
		bad("query timeout %v: must be at least 1s", c.Timeout)
	}
	if c.MaxBuckets < 1 || c.MaxSeriesRows < 1 {
		bad("query max buckets %d / max series rows %d: must be positive", c.MaxBuckets, c.MaxSeriesRows)
	}
	for tok, tenant := range c.Tokens {
		if len(tok) < 8 || tenant == "" {
			bad("query token for tenant %q: tokens need 8 characters or more and a tenant", tenant)
		}
	}
	return errors.Join(errs...)
}
