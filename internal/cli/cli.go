// Package cli implements the subcommands of cmd/tributary. Every setting comes from the environment
// (prefix TRIBUTARY_, read by internal/envconf from the configurations' envconfig tags); the
// README's table lists them all.
//
// Exit codes: 0 success, 1 the command failed, 2 bad usage or configuration.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tributary/tributary/internal/envconf"
)

// Prefix is the environment prefix of every setting.
const Prefix = "TRIBUTARY"

type command struct {
	name, summary, usage string
	run                  func(ctx context.Context, env *Env, args []string) error
}

// Env is what a subcommand gets: output streams and a logger.
type Env struct {
	Stdout, Stderr io.Writer
	Log            *slog.Logger
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Format string `envconfig:"LOG_FORMAT" default:"text"` // text or json
	Level  string `envconfig:"LOG_LEVEL" default:"info"`  // debug, info, warn, error
}

func commands() []command {
	return []command{
		{"migrate", "create ClickHouse tables and Kafka topics (idempotent)", migrateUsage, runMigrate},
		{"consumer", "run a consumer worker: Kafka -> ClickHouse", consumerUsage, runConsumer},
		{"query", "run the query service (HTTP JSON API)", queryUsage, runQuery},
		{"gateway", "run the HTTP ingest gateway: JSON -> Kafka", gatewayUsage, runGateway},
		{"loadgen", "simulate a fleet sending events and metrics", loadgenUsage, runLoadgen},
		{"retention", "drop partitions older than each table's retention", retentionUsage, runRetention},
		{"events", "list events from the query service", eventsUsage, runEvents},
		{"metrics", "list raw metric points from the query service", metricsUsage, runMetrics},
		{"aggregate", "print a metric's time series from the query service", aggregateUsage, runAggregate},
		{"demo", "run the whole pipeline on a demo load and print query results", demoUsage, runDemo},
	}
}

// errUsage marks errors that exit with code 2.
var errUsage = errors.New("usage")

// Main runs the subcommand named by args[0] and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = &c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "tributary: unknown command %q\n\n", args[0])
		printHelp(stderr)
		return 2
	}
	if len(args) > 1 && (args[1] == "-h" || args[1] == "--help") {
		fmt.Fprint(stdout, cmd.usage)
		return 0
	}
	var lc LogConfig
	if err := envconf.Load(Prefix, &lc); err != nil {
		fmt.Fprintf(stderr, "tributary: %v\n", err)
		return 2
	}
	log, err := newLogger(lc, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tributary: %v\n", err)
		return 2
	}
	// The first SIGINT/SIGTERM stops gracefully; a second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()

	if err := cmd.run(ctx, &Env{Stdout: stdout, Stderr: stderr, Log: log}, args[1:]); err != nil {
		fmt.Fprintf(stderr, "tributary %s: %v\n", cmd.name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "Usage: tributary <command> [--help]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nSettings come from TRIBUTARY_* environment variables (see the README's table).")
	fmt.Fprintln(w, "Exit codes: 0 success, 1 failure, 2 bad usage or configuration.")
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func newLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("TRIBUTARY_LOG_LEVEL %q: want debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("TRIBUTARY_LOG_FORMAT %q: want text or json", c.Format)
}

// loadConfig reads cfg from the environment and validates it; errors are usage errors.
// loadConfig reads cfg from the TRIBUTARY_* environment and validates it; the error lists every
// bad setting on one line.
func loadConfig(cfg interface{ Validate() error }) error {
	if err := envconf.Load(Prefix, cfg); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.Validate(); err != nil {
		return configError(err)
	}
	return nil
}

// configError is a usage error listing every problem Validate found (joined) on one line.
func configError(err error) error {
	return fmt.Errorf("%w: configuration: %s", errUsage, strings.ReplaceAll(err.Error(), "\n", "; "))
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (settings come from TRIBUTARY_* variables)", errUsage, args)
	}
	return nil
}
