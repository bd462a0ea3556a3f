// Package testenv hands integration tests the real Kafka broker and ClickHouse server that the
// test command (make test, which runs deploy/kafka.sh and deploy/clickhouse.sh) started. A test that
// finds no server fails: integration tests are never skipped.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/query"
)

// Environment variables the test command sets.
const (
	KafkaEnv      = "TRIBUTARY_TEST_KAFKA_BROKERS"
	ClickHouseEnv = "TRIBUTARY_TEST_CLICKHOUSE_ADDR"
	KafkaSASLEnv  = "TRIBUTARY_TEST_KAFKA_SASL_BROKERS"
)

func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Fatalf("%s is not set: this integration test needs the real servers; run it with `make test`, "+
			"or start them with deploy/kafka.sh start && deploy/clickhouse.sh start and export "+
			"%s=127.0.0.1:19092 %s=127.0.0.1:19094 %s=127.0.0.1:19000", env, KafkaEnv, KafkaSASLEnv, ClickHouseEnv)
	}
	return v
}

// Unique returns prefix plus a random suffix, for databases, topics and groups that tests must not
// share.
func Unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// KafkaSASLBrokers returns the real broker's SASL_PLAINTEXT listener (user tributary, password
// tributary-secret; PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512).
func KafkaSASLBrokers(t testing.TB) []string {
	return strings.Split(need(t, KafkaSASLEnv), ",")
}

// KafkaBrokers returns the real broker's addresses.
func KafkaBrokers(t testing.TB) []string {
	return strings.Split(need(t, KafkaEnv), ",")
}

// ClickHouseAddr returns the real server's first native-protocol address, for code that makes its
// own databases (the benchmark harness).
func ClickHouseAddr(t testing.TB) string {
	return strings.Split(need(t, ClickHouseEnv), ",")[0]
}

// ClickHouse returns a config for the real server with a fresh, migrated database that is dropped
// when the test ends.
func ClickHouse(t testing.TB) chdb.Config {
	t.Helper()
	cfg := chdb.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns = strings.Split(need(t, ClickHouseEnv), ","), Unique("test"), 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chdb.Open(ctx, cfg, false)
	if err != nil {
		t.Fatalf("ClickHouse at %v: %v", cfg.Addr, err)
	}
	if _, err := chdb.Migrate(ctx, conn, cfg.Database); err != nil {
		t.Fatalf("migrate %s: %v", cfg.Database, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	return cfg
}

// OpenClickHouse opens cfg's database and closes it when the test ends.
func OpenClickHouse(t testing.TB, cfg chdb.Config) driver.Conn {
	t.Helper()
	conn, err := chdb.Open(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Topics creates fresh topics with the given partition count on the real broker and deletes them
// when the test ends. It returns their names in order.
func Topics(t testing.TB, brokers []string, partitions int32, prefixes ...string) []string {
	t.Helper()
	return TopicsWithConfig(t, brokers, partitions, nil, prefixes...)
}

// TopicsWithConfig is Topics with topic configs (for example max.message.bytes) set on each.
func TopicsWithConfig(t testing.TB, brokers []string, partitions int32, configs map[string]*string, prefixes ...string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	names := make([]string, len(prefixes))
	for i, p := range prefixes {
		names[i] = Unique(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, configs, names...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		cl.Close()
		t.Fatalf("create topics %v on %v: %v", names, brokers, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, names...)
		cl.Close()
	})
	return names
}

// ReadTopics reads every record of topics from the start up to their end offsets when it is
// called (everything produced so far) and returns them in the order fetched. It fails the test if
// they cannot all be read within timeout; it never waits for records produced later.
func ReadTopics(t testing.TB, brokers []string, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list the end offsets of %v: %v", topics, err)
	}
	type partition struct {
		topic string
		p     int32
	}
	unread := map[partition]int64{} // end offset of each partition not yet read to its end
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			unread[partition{o.Topic, o.Partition}] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(unread) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %v in %v; %d partitions not read to their end", len(out), topics, timeout, len(unread))
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := partition{r.Topic, r.Partition}
			end, ok := unread[k]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, r)
			if r.Offset == end-1 {
				delete(unread, k)
			}
		})
	}
	return out
}

// QueryServer serves a query service with cfg (its ClickHouse account opened for it) over HTTP
// until the test ends, and returns its URL.
func QueryServer(t testing.TB, cfg query.Config) string {
	t.Helper()
	s, err := query.New(cfg, OpenClickHouse(t, cfg.ClickHouse), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// RepoRoot is the repository's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Binary builds cmd/tributary into a temporary directory and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tributary")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tributary")
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
