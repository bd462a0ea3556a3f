package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

const usage = `Usage: tributary-bench [-short] [-only scenario,...] [-out DIR] [-state DIR] [-tributary PATH]

Runs the benchmark harness against the real local servers (make servers) and writes
BENCHMARKS.md and BENCHMARKS.json into DIR. Scenarios: sdk, gateway, consumer, cardinality, e2e, scaling, cluster, query.
Every figure is compared with a baseline measured in the same run. Services run as separate
tributary processes (the -tributary binary), so each one's memory and CPU are measured.

  -short      a few seconds per scenario: checks the harness works, measures little
  -only       run only these scenarios
  -out        where to write the report (default: the current directory)
  -state      deploy/*.sh's state directory, for the servers' pids (default: .state)
  -tributary  the tributary binary (default: tributary beside this program)
  -cluster-script
              deploy/cluster.sh: without the TRIBUTARY_TEST_CLUSTER_* addresses, the cluster
              scenario starts the local clusters with it (if they are down), reads their
              addresses from its env subcommand, and stops them when the scenario ends

The servers are found with TRIBUTARY_TEST_KAFKA_BROKERS and TRIBUTARY_TEST_CLICKHOUSE_ADDR,
as the tests find them; the cluster scenario's clusters with TRIBUTARY_TEST_CLUSTER_CLICKHOUSE_ADDR,
TRIBUTARY_TEST_CLUSTER_KAFKA_BROKERS and TRIBUTARY_TEST_CLUSTER_NAME, as deploy/cluster.sh env prints
them, or with -cluster-script. make bench starts the one server and broker, builds both binaries and
runs this with -cluster-script (so the clusters run only during the cluster scenario), then stops
the servers.

Example:
  make servers
  go build -o bin/tributary ./cmd/tributary && go build -o bin/tributary-bench ./cmd/tributary-bench
  TRIBUTARY_TEST_KAFKA_BROKERS=127.0.0.1:19092 TRIBUTARY_TEST_CLICKHOUSE_ADDR=127.0.0.1:19000 \
    bin/tributary-bench -only query -out /tmp
`

// errUsage marks errors that exit with code 2.
var errUsage = errors.New("usage")

// Main runs the tributary-bench command and returns its exit code: 0 success, 1 a scenario or the
// report failed, 2 bad usage. The first SIGINT/SIGTERM stops the run; a second kills the process.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	err := command(ctx, args, stdout, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tributary-bench: %v\n\n%s", err, usage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "tributary-bench: %v\n", err)
		return 1
	}
	return 0
}

func command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tributary-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stdout, usage) }
	short := fs.Bool("short", false, "a few seconds per scenario")
	only := fs.String("only", "", "comma-separated scenarios")
	out := fs.String("out", ".", "report directory")
	state := fs.String("state", ".state", "servers' state directory")
	bin := fs.String("tributary", "", "the tributary binary")
	clusterSh := fs.String("cluster-script", "", "deploy/cluster.sh, to start the local clusters for the cluster scenario")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
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
		for _, s := range Scenarios() {
			known[s.Name] = true
		}
		for _, n := range strings.Split(*only, ",") {
			if !known[n] {
				return fmt.Errorf("%w: -only %q: no such scenario", errUsage, n)
			}
			names = append(names, n)
		}
	}
	binary, err := tributaryBinary(*bin)
	if err != nil {
		return err
	}
	stateDir, _ := filepath.Abs(*state)
	e := &Env{Brokers: strings.Split(brokers, ","), ClickHouseAddr: strings.Split(ch, ",")[0], Binary: binary, Short: *short,
		StateDir: stateDir, Log: stderr, ClusterScript: *clusterSh}
	if addr, brokers := os.Getenv("TRIBUTARY_TEST_CLUSTER_CLICKHOUSE_ADDR"), os.Getenv("TRIBUTARY_TEST_CLUSTER_KAFKA_BROKERS"); addr != "" && brokers != "" {
		e.Cluster = &Cluster{ClickHouseAddr: strings.Split(addr, ","), Brokers: strings.Split(brokers, ","),
			Name: os.Getenv("TRIBUTARY_TEST_CLUSTER_NAME")}
	}
	cmd := "tributary-bench" // as make bench runs it; where the files and binaries are is not part of the result
	if *short {
		cmd += " -short"
	}
	if *only != "" {
		cmd += " -only " + *only
	}
	r, runErr := Run(ctx, e, names, cmd)
	if err := r.WriteFiles(*out); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s (%.0f s)\n", filepath.Join(*out, "BENCHMARKS.md"), filepath.Join(*out, "BENCHMARKS.json"), r.Seconds)
	return runErr
}

// tributaryBinary is path, or else the tributary binary beside this program's own.
func tributaryBinary(path string) (string, error) {
	if path == "" {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		path = filepath.Join(filepath.Dir(self), "tributary")
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return "", fmt.Errorf("%w: no tributary binary at %s (build it: go build -o %s ./cmd/tributary, or pass -tributary)", errUsage, path, path)
	}
	return filepath.Abs(path)
}
