package query

import (
	"fmt"
	"time"

	"github.com/tributary/tributary/internal/chdb"
)

// Config configures the query service. Read it with envconfig.Process("TRIBUTARY", &cfg); the
// README's table lists every variable and default.
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
}

// Validate reports the first bad setting, naming it.
func (c Config) Validate() error {
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	switch {
	case c.Listen == "":
		return fmt.Errorf("query listen: empty")
	case c.MaxLimit < 1:
		return fmt.Errorf("query max limit %d: must be at least 1", c.MaxLimit)
	case c.DefaultLimit < 1 || c.DefaultLimit > c.MaxLimit:
		return fmt.Errorf("query default limit %d: must be between 1 and the max limit %d", c.DefaultLimit, c.MaxLimit)
	case c.MaxOffset < 0:
		return fmt.Errorf("query max offset %d: must not be negative", c.MaxOffset)
	case c.Timeout < time.Second:
		return fmt.Errorf("query timeout %v: must be at least 1s", c.Timeout)
	}
	return nil
}
