package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tributary/tributary/internal/bench"
)

const benchUsage = `Usage: tributary bench [-short] [-only scenario,...] [-out DIR] [-state DIR]

Runs the benchmark harness against the real local servers (make servers) and writes
BENCHMARKS.md and BENCHMARKS.json into DIR. Scenarios: sdk, consumer, e2e, scaling, query.
Every figure is compared with a baseline measured in the same run. Services run as separate
tributary processes (this binary), so each one's memory and CPU are measured.

  -short   a few seconds per scenario: checks the harness works, measures little
  -only    run only these scenarios
  -out     where to write the report (default: the current directory)
  -state   deploy/*.sh's state directory, for the servers' pids (default: .state)

The servers are found with TRIBUTARY_TEST_KAFKA_BROKERS and TRIBUTARY_TEST_CLICKHOUSE_ADDR,
as the tests find them. make bench starts them, runs this and stops them.

Example:
  make servers
  TRIBUTARY_TEST_KAFKA_BROKERS=127.0.0.1:19092 TRIBUTARY_TEST_CLICKHOUSE_ADDR=127.0.0.1:19000 \
    tributary bench -only query -out /tmp
`

func runBench(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	short := fs.Bool("short", false, "a few seconds per scenario")
	only := fs.String("only", "", "comma-separated scenarios")
	out := fs.String("out", ".", "report directory")
	state := fs.String("state", ".state", "servers' state directory")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	brokers, ch := os.Getenv("TRIBUTARY_TEST_KAFKA_BROKERS"), os.Getenv("TRIBUTARY_TEST_CLICKHOUSE_ADDR")
	if brokers == "" || ch == "" {
		return fmt.Errorf("%w: set %s and %s (make servers starts the servers on 127.0.0.1:19092 and 127.0.0.1:19000)",
			errUsage, "TRIBUTARY_TEST_KAFKA_BROKERS", "TRIBUTARY_TEST_CLICKHOUSE_ADDR")
	}
	var names []string
	if *only != "" {
		known := map[string]bool{}
		for _, s := range bench.Scenarios() {
			known[s.Name] = true
		}
		for _, n := range strings.Split(*only, ",") {
			if !known[n] {
				return fmt.Errorf("%w: -only %q: no such scenario", errUsage, n)
			}
			names = append(names, n)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	stateDir, _ := filepath.Abs(*state)
	e := &bench.Env{Brokers: strings.Split(brokers, ","), ClickHouseAddr: strings.Split(ch, ",")[0], Binary: bin, Short: *short,
		StateDir: stateDir, Log: env.Stderr}
	cmd := "tributary bench" // as make bench runs it; where the files go is not part of the result
	if *short {
		cmd += " -short"
	}
	if *only != "" {
		cmd += " -only " + *only
	}
	r, runErr := bench.Run(ctx, e, names, strings.TrimSpace(cmd))
	if err := r.WriteFiles(*out); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(env.Stdout, "wrote %s and %s (%.0f s)\n", filepath.Join(*out, "BENCHMARKS.md"), filepath.Join(*out, "BENCHMARKS.json"), r.Seconds)
	return runErr
}
