package producer

import (
	"fmt"
	"sync"

	"github.com/tributary/tributary/internal/envconf"
)

// The process-wide default client: the spec's TelemetryManager.get_instance().
var (
	defaultMu     sync.Mutex
	defaultClient *Client
)

// Default returns the process-wide client: the one given to SetDefault, or else one made on first
// use from the TRIBUTARY_* environment (see the README's table). Safe for concurrent use.
func Default() (*Client, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultClient != nil {
		return defaultClient, nil
	}
	cfg := DefaultConfig()
	if err := envconf.Load("TRIBUTARY", &cfg); err != nil {
		return nil, fmt.Errorf("producer: default client configuration: %w", err)
	}
	c, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("producer: default client: %w", err)
	}
	defaultClient = c
	return c, nil
}

// SetDefault makes c the process-wide client and returns the previous one (nil if none); the
// caller closes it.
func SetDefault(c *Client) *Client {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	prev := defaultClient
	defaultClient = c
	return prev
}
