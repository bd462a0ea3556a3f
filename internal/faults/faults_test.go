package faults

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/testenv"
)

// A consumer process killed with SIGKILL while 100,000 records flow: after a new process takes
// over, every record is in the query results exactly once and the rollups are exact.
func TestConsumerKilledMidFlow(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq"))
	ch := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, ch)
	bin := testenv.Binary(t)
	group := testenv.Unique("group")
	env := append(os.Environ(),
		"TRIBUTARY_KAFKA_BROKERS="+brokers[0], "TRIBUTARY_KAFKA_EVENTS_TOPIC="+k.EventsTopic,
		"TRIBUTARY_KAFKA_METRICS_TOPIC="+k.MetricsTopic, "TRIBUTARY_KAFKA_ROLLUPS_TOPIC="+k.RollupsTopic,
		"TRIBUTARY_KAFKA_DLQ_TOPIC="+k.DLQTopic, "TRIBUTARY_CLICKHOUSE_ADDR="+ch.Addr[0],
		"TRIBUTARY_CLICKHOUSE_DATABASE="+ch.Database, "TRIBUTARY_CONSUMER_GROUP="+group,
		"TRIBUTARY_CONSUMER_BATCH_MAX_RECORDS=5000", "TRIBUTARY_CONSUMER_BATCH_INTERVAL=400ms",
		"TRIBUTARY_ROLLUP_LATENESS=5s", "TRIBUTARY_LOG_FORMAT=json")
	logs := t.TempDir()
	startConsumer := func(name string) *exec.Cmd {
		out, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "consumer")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); out.Close() })
		return cmd
	}

	l := makeLoad(50000) // 100,000 records
	p := newProducer(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- send(ctx, p, l, 12000) }()

	first := startConsumer("first")
	waitStored(t, conn, ch.Database, 30000, 2*time.Minute)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := stored(t, conn, ch.Database)
	if atKill >= uint64(l.size()) {
		t.Fatalf("all %d records were stored before the kill; the test did not kill mid-flow", atKill)
	}
	t.Logf("killed the first consumer with %d of %d records stored", atKill, l.size())

	second := startConsumer("second")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitStored(t, conn, ch.Database, l.size(), 2*time.Minute)
	// Let the last windows be written, then stop gracefully.
	time.Sleep(time.Second)
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(logs, "second.log"))
		t.Fatalf("second consumer: %v\n%s", err, b)
	}
	checkExactlyOnce(t, conn, ch.Database, l)
}

// ClickHouse stopped for 30 s under load and started again: nothing is lost, lag returns to zero.
func TestClickHouseOutage(t *testing.T) {
	srv, ch := privateClickHouse(t)
	brokers := testenv.KafkaBrokers(t)
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq"))
	group := testenv.Unique("group")
	w := runWorker(t, workerConfig(k, ch, group))

	l := makeLoad(30000)
	p := newProducer(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- send(ctx, p, l, 1500) }() // ~40 s of load

	time.Sleep(5 * time.Second)
	srv.Stop()
	t.Log("ClickHouse stopped")
	time.Sleep(30 * time.Second)
	srv.Start()
	t.Log("ClickHouse started again")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := chdb.Open(ctx, ch, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitStored(t, conn, ch.Database, l.size(), 2*time.Minute)
	if s := w.Stats(); s.Retries == 0 {
		t.Fatalf("the worker never retried a write: was ClickHouse down? %+v", s)
	}
	waitLagZero(t, brokers, group, time.Minute, k.EventsTopic, k.MetricsTopic)
	checkExactlyOnce(t, conn, ch.Database, l)
}

// waitLagZero waits until group has committed every record of topics (within timeout).
func waitLagZero(t *testing.T, brokers []string, group string, timeout time.Duration, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	for {
		lags, err := adm.Lag(context.Background(), group)
		if err == nil {
			// Done once every topic is listed (a group that has not joined yet lists none) with no
			// lag and no error in any partition.
			var total int64
			done := true
			for _, topic := range topics {
				ps := lags[group].Lag[topic]
				done = done && len(ps) > 0
				for _, l := range ps {
					total += l.Lag
					done = done && l.Err == nil && l.Lag == 0
				}
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumer lag is still %d", total)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The broker restarted under load: the producer's Flush succeeds once it is back, and every
// record recorded is stored exactly once.
func TestBrokerRestartUnderLoad(t *testing.T) {
	kafkaSrv := privateKafka(t)
	brokers := []string{kafkaSrv.Addr}
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq"))
	ch := testenv.ClickHouse(t)
	runWorker(t, workerConfig(k, ch, testenv.Unique("group")))

	l := makeLoad(20000)
	p := newProducer(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- send(ctx, p, l, 2500) }() // ~16 s of load

	time.Sleep(4 * time.Second)
	kafkaSrv.Stop()
	t.Log("broker stopped")
	time.Sleep(3 * time.Second)
	kafkaSrv.Start()
	t.Log("broker started again")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush after the restart: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn := testenv.OpenClickHouse(t, ch)
	waitStored(t, conn, ch.Database, l.size(), 2*time.Minute)
	checkExactlyOnce(t, conn, ch.Database, l)
}
