package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/internal/testenv/chaosproxy"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The consumer role serves /metrics (its own and franz-go's), /healthz and /readyz reflecting
// Kafka and ClickHouse, logs JSON when asked, and exits 0 on SIGTERM.
func TestConsumerRoleOperations(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 1, "events", "metrics", "rollups", "dlq")
	ch := testenv.ClickHouse(t)
	bin := testenv.Binary(t)
	addr := freeAddr(t)
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "consumer")
	cmd.Env = append(os.Environ(), "TRIBUTARY_KAFKA_BROKERS="+brokers[0], "TRIBUTARY_KAFKA_EVENTS_TOPIC="+topics[0],
		"TRIBUTARY_KAFKA_METRICS_TOPIC="+topics[1], "TRIBUTARY_KAFKA_ROLLUPS_TOPIC="+topics[2], "TRIBUTARY_KAFKA_DLQ_TOPIC="+topics[3],
		"TRIBUTARY_CLICKHOUSE_ADDR="+ch.Addr[0], "TRIBUTARY_CLICKHOUSE_DATABASE="+ch.Database,
		"TRIBUTARY_CONSUMER_GROUP="+testenv.Unique("g"), "TRIBUTARY_CONSUMER_METRICS_LISTEN="+addr, "TRIBUTARY_LOG_FORMAT=json")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.EventuallyNil(t, "the consumer to be ready", 30*time.Second, func() error {
		if code, body := get("/readyz"); code != 200 {
			return fmt.Errorf("/readyz %d %s; logs:\n%s", code, body, logs.String())
		}
		return nil
	})
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %s", code, body)
	}
	// franz-go's metrics exist once the client has talked to the broker.
	testenv.EventuallyNil(t, "/metrics to show the consumer's, the rollups' and franz-go's metrics", 30*time.Second, func() error {
		code, body := get("/metrics")
		var lacks []string
		for _, want := range []string{"tributary_consumer_records_consumed_total", "tributary_rollup_windows_open", "tributary_kafka_"} {
			if code != 200 || !strings.Contains(body, want) {
				lacks = append(lacks, want)
			}
		}
		if len(lacks) > 0 {
			return fmt.Errorf("/metrics (%d) lacks %v", code, lacks)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consumer exited with %v; logs:\n%s", err, logs.String())
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line["level"] == nil || line["msg"] == nil {
			t.Fatalf("not a JSON log line: %q", sc.Text())
		}
		n++
	}
	if n < 2 {
		t.Fatalf("%d log lines", n)
	}
}

// loadgen shows progress while it runs and a summary at the end.
func TestLoadgenShowsProgress(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "tributary.events.v1", "tributary.metrics.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	t.Setenv("TRIBUTARY_KAFKA_BROKERS", strings.Join(cluster.ListenAddrs(), ","))
	t.Setenv("TRIBUTARY_LOADGEN_DURATION", "2500ms")
	t.Setenv("TRIBUTARY_LOADGEN_RATE", "2000")
	code, out, errs := run("loadgen")
	if code != 0 || !strings.Contains(out, "sent ") || !strings.Contains(out, "0 failed") {
		t.Fatalf("loadgen: %d\n%s%s", code, out, errs)
	}
	progress := 0
	for _, l := range strings.Split(errs, "\n") {
		if strings.Contains(l, "rate") && strings.Contains(l, "errors 0") {
			progress++
		}
	}
	if progress < 2 {
		t.Fatalf("%d progress lines in 2.5 s:\n%s", progress, errs)
	}
}

// A consumer started while ClickHouse is down waits for it, with backoff, instead of exiting, and
// becomes ready once ClickHouse answers (here: once a proxy to the real server starts listening on
// the address it was given).
func TestConsumerWaitsForClickHouse(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 1, "events", "metrics", "rollups", "dlq")
	ch := testenv.ClickHouse(t)
	bin := testenv.Binary(t)
	metricsAddr, chAddr := freeAddr(t), freeAddr(t)
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "consumer")
	cmd.Env = append(os.Environ(), "TRIBUTARY_KAFKA_BROKERS="+brokers[0], "TRIBUTARY_KAFKA_EVENTS_TOPIC="+topics[0],
		"TRIBUTARY_KAFKA_METRICS_TOPIC="+topics[1], "TRIBUTARY_KAFKA_ROLLUPS_TOPIC="+topics[2], "TRIBUTARY_KAFKA_DLQ_TOPIC="+topics[3],
		"TRIBUTARY_CLICKHOUSE_ADDR="+chAddr, "TRIBUTARY_CLICKHOUSE_DATABASE="+ch.Database, "TRIBUTARY_CLICKHOUSE_DIAL_TIMEOUT=500ms",
		"TRIBUTARY_CONSUMER_GROUP="+testenv.Unique("g"), "TRIBUTARY_CONSUMER_METRICS_LISTEN="+metricsAddr)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()

	testenv.EventuallyNil(t, "two retries to be logged", 30*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err // for the deferred kill
			t.Fatalf("the consumer exited (%v) instead of waiting for ClickHouse; logs:\n%s", err, logs.String())
		default:
		}
		if strings.Count(logs.String(), "waiting for ClickHouse") < 2 {
			return fmt.Errorf("logs:\n%s", logs.String())
		}
		return nil
	})

	// ClickHouse "comes back": a proxy to the real server listens on the consumer's address.
	chaosproxy.Start(t, chaosproxy.Config{Addr: chAddr, Upstream: ch.Addr[0]})
	testenv.EventuallyNil(t, "the consumer to be ready after ClickHouse came back", 60*time.Second, func() error {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return fmt.Errorf("%v; logs:\n%s", err, logs.String())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/readyz %d; logs:\n%s", resp.StatusCode, logs.String())
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	exited <- err // for the deferred kill
	if err != nil {
		t.Fatalf("consumer exited with %v; logs:\n%s", err, logs.String())
	}
}
