package deploycheck

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
)

// examples/ is a module of its own that requires this one through a replace directive: a program
// outside the module, which can import only exported packages. It must build from the main
// module's checksums (no entry of its go.sum is missing from ours, so building it needs nothing
// that building this module did not already verify) and run against the real servers: it makes a
// producer, a consumer worker, the query service and a query client, and reads back what it sent.
func TestExampleOutsideTheModule(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "examples")
	ours, theirs := sumLines(t, filepath.Join(dir, "..", "go.sum")), sumLines(t, filepath.Join(dir, "go.sum"))
	for line := range theirs {
		if !ours[line] {
			t.Errorf("examples/go.sum has %q, which go.sum lacks: run go mod tidy in examples/ after go mod tidy here", line)
		}
	}
	bin := filepath.Join(t.TempDir(), "pipeline")
	build := exec.Command("go", "build", "-mod=readonly", "-o", bin, "./pipeline")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/: %v\n%s\n(after a change of go.mod: cd examples && go mod tidy)", err, out)
	}

	brokers, ch := testenv.KafkaBrokers(t), testenv.ClickHouse(t) // a fresh database, dropped after the test
	prefix := testenv.Unique("example")
	t.Cleanup(func() {
		deleteTopics(t, brokers, prefix+".events", prefix+".metrics", prefix+".rollups", prefix+".dlq")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, bin, "-brokers", strings.Join(brokers, ","), "-clickhouse", ch.Addr[0],
		"-database", ch.Database, "-topics", prefix)
	var stderr strings.Builder
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil || !strings.Contains(string(out), "the query service returns it with attributes map[rows:1000]") {
		t.Fatalf("examples/pipeline: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
}

func sumLines(t *testing.T, path string) map[string]bool {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]bool{}
	for s := bufio.NewScanner(f); s.Scan(); {
		lines[s.Text()] = true
	}
	if len(lines) < 10 {
		t.Fatalf("%s: %d lines", path, len(lines))
	}
	return lines
}

func deleteTopics(t *testing.T, brokers []string, topics ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topics...); err != nil {
		t.Errorf("delete topics %v: %v", topics, err)
	}
}
