package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/producer"
)

const loadgenUsage = `Usage: tributary loadgen

Simulates TRIBUTARY_LOADGEN_HOSTS fleet hosts sending TRIBUTARY_LOADGEN_RATE records a second
(node lifecycle events, node_duration histograms, request counters, CPU gauges; attribute
cardinality: hosts x 20 nodes x 16 endpoints x 4 statuses x 4 regions) for
TRIBUTARY_LOADGEN_DURATION, through the SDK (TRIBUTARY_LOADGEN_TARGET=sdk, TRIBUTARY_KAFKA_*) or
the gateway (=gateway, TRIBUTARY_LOADGEN_GATEWAY_URL and _TOKEN), in batches of
TRIBUTARY_LOADGEN_BATCH. Shows progress every second on stderr, then a summary on stdout.
Exits 1 if any record failed.

Examples:
  TRIBUTARY_LOADGEN_RATE=20000 TRIBUTARY_LOADGEN_DURATION=1m tributary loadgen
  TRIBUTARY_LOADGEN_TARGET=gateway TRIBUTARY_LOADGEN_GATEWAY_TOKEN=s3cret-token tributary loadgen
`

func runLoadgen(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var cfg loadgen.Config
	if err := loadConfig(&cfg); err != nil {
		return err
	}
	var sink loadgen.Sink
	var p *producer.Client
	if cfg.Target == "sdk" {
		pcfg := producer.DefaultConfig()
		if err := envconf.Load(Prefix, &pcfg); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		var err error
		if p, err = producer.New(pcfg); err != nil {
			return err
		}
		sink = loadgen.SDKSink{Client: p}
	} else {
		sink = loadgen.GatewaySink{URL: cfg.GatewayURL, Token: cfg.GatewayToken, HTTP: &http.Client{Timeout: 30 * time.Second}}
	}
	tty := isTerminal(env.Stderr)
	fmt.Fprintf(env.Stderr, "loadgen: %d hosts, %d records/s for %v via %s\n", cfg.Hosts, cfg.Rate, cfg.Duration, cfg.Target)
	final := loadgen.Run(ctx, cfg, sink, func(pr loadgen.Progress) {
		line := fmt.Sprintf("%6.1fs  sent %10d  rate %8.0f/s  errors %d", pr.Elapsed.Seconds(), pr.Sent, float64(pr.Sent)/pr.Elapsed.Seconds(), pr.Errors)
		if p != nil {
			line += fmt.Sprintf("  buffered %d", p.Stats().Buffered)
		}
		if tty {
			fmt.Fprintf(env.Stderr, "\r%s", line)
		} else {
			fmt.Fprintln(env.Stderr, line)
		}
	})
	if tty {
		fmt.Fprintln(env.Stderr)
	}
	var flushErr error
	if p != nil {
		fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		flushErr = p.Close(fctx)
		cancel()
	}
	fmt.Fprintf(env.Stdout, "sent %d records in %v (%.0f records/s), %d failed\n", final.Sent, final.Elapsed.Round(time.Millisecond),
		float64(final.Sent)/final.Elapsed.Seconds(), final.Errors)
	if final.LastError != "" {
		fmt.Fprintf(env.Stdout, "last error: %s\n", final.LastError)
	}
	if flushErr != nil {
		return fmt.Errorf("flush: %w", flushErr)
	}
	if final.Errors > 0 {
		return fmt.Errorf("%d records failed", final.Errors)
	}
	return nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
