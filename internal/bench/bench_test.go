package bench_test

import (
	"context"
	"encoding/json"
	"math"
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
func TestShortRunWritesTheReport(t *testing.T) {
	e := &bench.Env{Brokers: testenv.KafkaBrokers(t), ClickHouseAddr: testenv.ClickHouseAddr(t), Binary: testenv.Binary(t),
		Short: true, StateDir: filepath.Join(testenv.RepoRoot(t), ".state"), Log: testWriter{t}}
	r, err := bench.Run(context.Background(), e, nil, "go test ./internal/bench")
	if err != nil {
		t.Fatal(err)
	}
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
	if len(got.Sections) != len(bench.Scenarios()) || len(got.Machine) < 3 {
		t.Fatalf("report has %d sections (want %d) and machine %v", len(got.Sections), len(bench.Scenarios()), got.Machine)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	for _, s := range got.Sections {
		if s.Error != "" || len(s.Figures) == 0 {
			t.Errorf("scenario %s: error %q, %d figures", s.Scenario, s.Error, len(s.Figures))
		}
		if !strings.Contains(string(md), "## "+s.Title) {
			t.Errorf("BENCHMARKS.md has no section %q", s.Title)
		}
		for _, f := range s.Figures {
			bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || v < 0 }
			if f.Name == "" || f.Unit == "" || f.Runs < 1 || bad(f.Value) || (f.Baseline != "" && (bad(f.BaselineValue) || bad(f.Ratio) || f.BaselineValue == 0)) {
				t.Errorf("scenario %s: bad figure %+v", s.Scenario, f)
			}
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
