package cluster_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/bench"
	"github.com/tributary/tributary/internal/testenv"
)

// The benchmark harness's cluster scenario, in short mode, measures draining on one server and on
// the clusters (1 and 4 consumers each) and writes finite figures with their baselines. It runs
// here rather than in internal/bench so that it never runs during the tests of this package that
// stop and start the clusters' servers (a package's tests run one after another; packages run in
// parallel). The figures are make bench's business.
func TestBenchClusterScenario(t *testing.T) {
	clusterUp(t)
	root := testenv.RepoRoot(t)
	e := &bench.Env{Brokers: testenv.KafkaBrokers(t), ClickHouseAddr: testenv.ClickHouseAddr(t), Binary: testenv.Binary(t),
		Short: true, StateDir: root + "/.state", Log: logWriter{t},
		Cluster: &bench.Cluster{Brokers: clusterKafka, ClickHouseAddr: clusterCH, Name: clusterName}}
	r, err := bench.Run(context.Background(), e, []string{"cluster"}, "go test ./internal/cluster")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	s := r.Sections[0]
	if len(s.Figures) != 4 || !strings.Contains(strings.Join(s.Notes, "\n"), "| cluster | 4 partitions, 4 consumers |") || !strings.Contains(strings.Join(s.Notes, "\n"), "The write path:") {
		t.Fatalf("cluster section: %d figures, notes %q", len(s.Figures), s.Notes)
	}
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
