package gateway

import (
	"fmt"

	"github.com/tributary/tributary/internal/envconf"
)

// OTLPConfig configures OTLP ingest. OTLP/HTTP (POST /v1/logs, POST /v1/metrics) is served on
// Config.Listen beside the JSON API; OTLP/gRPC on its own address. It is embedded in Config, so
// its settings read as TRIBUTARY_GATEWAY_OTLP_*.
type OTLPConfig struct {
	// GRPCListen is the OTLP/gRPC address (the logs and metrics services); "off" (or empty, in a
	// Config given to New) serves none.
	GRPCListen string `envconfig:"GATEWAY_OTLP_GRPC_LISTEN" default:"127.0.0.1:4317"`
	// CumulativeStreams bounds the cumulative OTLP streams (monotonic sums, histograms, summaries)
	// whose last point this gateway process remembers to turn their values into increases: about
	// 200 bytes plus 8 per histogram bucket each, least recently seen dropped first (counted). Zero
	// in a Config given to New means the default.
	CumulativeStreams int `envconfig:"GATEWAY_OTLP_CUMULATIVE_STREAMS" default:"100000"`
}

// DefaultOTLPConfig returns the defaults of the OTLP settings: its fields' default tags.
func DefaultOTLPConfig() OTLPConfig { return envconf.Default[OTLPConfig]() }

func (c OTLPConfig) withDefaults() OTLPConfig {
	if c.CumulativeStreams == 0 {
		c.CumulativeStreams = DefaultOTLPConfig().CumulativeStreams
	}
	return c
}

// Validate reports every bad OTLP setting, naming it.
func (c OTLPConfig) Validate() error {
	if c.CumulativeStreams < 1 {
		return fmt.Errorf("gateway otlp cumulative streams %d: must be at least 1", c.CumulativeStreams)
	}
	return nil
}

// grpcOn reports whether OTLP/gRPC is served.
func (c OTLPConfig) grpcOn() bool { return c.GRPCListen != "off" && c.GRPCListen != "" }
