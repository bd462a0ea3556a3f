package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/bench"
	"github.com/tributary/tributary/internal/testenv"
)

// The harness's short mode runs every scenario against the real servers, as make bench does, and
// writes a report whose every figure is a finite measurement; in CI this keeps the harness from
// rotting. (The figures themselves are make bench's business: timed assertions would be flaky.)
// The cluster scenario runs in internal/cluster (TestBenchClusterScenario), after the tests there
// that stop and start the clusters' servers, which it would otherwise meet half down.
func TestShortRunWritesTheReport(t *testing.T) {
	e := &bench.Env{Brokers: testenv.KafkaBrokers(t), ClickHouseAddr: testenv.ClickHouseAddr(t), Binary: testenv.Binary(t),
		Short: true, StateDir: filepath.Join(testenv.RepoRoot(t), ".state"), Log: testWriter{t}}
	var only []string
	for _, s := range bench.Scenarios() {
		if s.Name != "cluster" {
			only = append(only, s.Name)
		}
	}
	r, err := bench.Run(context.Background(), e, only, "go test ./internal/bench")
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, len(only))
}

// The cluster scenario refuses to run without the clusters, naming what to start.
func TestClusterScenarioNeedsTheClusters(t *testing.T) {
	e := &bench.Env{Brokers: []string{"127.0.0.1:1"}, ClickHouseAddr: "127.0.0.1:1", Short: true}
	r, err := bench.Run(context.Background(), e, []string{"cluster"}, "test")
	if err == nil || !strings.Contains(r.Sections[0].Error, "deploy/cluster.sh start") {
		t.Fatalf("cluster scenario without clusters: err %v, section %+v", err, r.Sections)
	}
}

// checkReport checks that r, written to files and read back, has sections sections, each with
// finite figures and in BENCHMARKS.md.
func checkReport(t *testing.T, r *bench.Report, sections int) {
	t.Helper()
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "BENCHMARKS.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got bench.Report
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sections) != sections || len(got.Machine) < 3 {
		t.Fatalf("report has %d sections (want %d) and machine %v", len(got.Sections), sections, got.Machine)
	}
	if err := got.Check(); err != nil {
		t.Error(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	for _, s := range got.Sections {
		if !strings.Contains(string(md), "## "+s.Title) {
			t.Errorf("BENCHMARKS.md has no section %q", s.Title)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
