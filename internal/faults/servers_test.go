package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/testenv"
)

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a private instance of a deploy/ script's server.
type server struct {
	t      testing.TB
	script string
	env    []string
	Addr   string
}

func (s *server) run(verb string) {
	s.t.Helper()
	cmd := exec.Command("bash", s.script, verb)
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s %s: %v\n%s", filepath.Base(s.script), verb, err, out)
	}
}

func (s *server) Start() { s.run("start") }
func (s *server) Stop()  { s.run("stop") }

// privateClickHouse starts a ClickHouse server of our own, with a migrated database, and stops it
// when the test ends.
func privateClickHouse(t *testing.T) (*server, chdb.Config) {
	root := testenv.RepoRoot(t)
	tcp, http := freePort(t), freePort(t)
	s := &server{t: t, script: filepath.Join(root, "deploy/clickhouse.sh"), Addr: fmt.Sprintf("127.0.0.1:%d", tcp), env: []string{
		fmt.Sprintf("CLICKHOUSE_TCP_PORT=%d", tcp), fmt.Sprintf("CLICKHOUSE_HTTP_PORT=%d", http), "TRIBUTARY_STATE_DIR=" + t.TempDir(),
	}}
	s.Start()
	t.Cleanup(s.Stop)
	cfg := chdb.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns = []string{s.Addr}, testenv.Unique("faults"), 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chdb.Open(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := chdb.Migrate(ctx, conn, cfg.Database); err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

// privateKafka starts a broker of our own (sharing the downloaded jars) and stops it when the test
// ends.
func privateKafka(t *testing.T) *server {
	root := testenv.RepoRoot(t)
	state := os.Getenv("TRIBUTARY_STATE_DIR")
	if state == "" {
		state = filepath.Join(root, ".state")
	}
	port, ctrl, saslPort := freePort(t), freePort(t), freePort(t)
	s := &server{t: t, script: filepath.Join(root, "deploy/kafka.sh"), Addr: fmt.Sprintf("127.0.0.1:%d", port), env: []string{
		fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", ctrl), fmt.Sprintf("KAFKA_SASL_PORT=%d", saslPort), "KAFKA_HEAP=512m",
		"TRIBUTARY_STATE_DIR=" + t.TempDir(), "KAFKA_LIBS=" + filepath.Join(state, "kafka/libs"),
	}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}
