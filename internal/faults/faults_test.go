package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
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
	// Once every batch is committed its rollup windows are written too; then stop gracefully.
	waitLagZero(t, brokers, group, time.Minute, k.EventsTopic, k.MetricsTopic)
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(logs, "second.log"))
		t.Fatalf("second consumer: %v\n%s", err, b)
	}
	checkExactlyOnce(t, conn, ch.Database, l)
}

// ClickHouse stopped under load, for as long as the producer takes to send half the load (about
// 20 s) into the outage and the worker to fail several attempts, and started again while the load
// still flows: nothing is lost, lag returns to zero.
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

	testenv.Eventually(t, "records to flow into ClickHouse before the outage", time.Minute, func() bool { return w.Stats().Written > 0 })
	srv.Stop()
	down := outageMark(p, w)
	testenv.EventuallyNil(t, "half the load to be sent into the outage and the worker to fail 5 attempts", 2*time.Minute, func() error {
		if now := outageMark(p, w); now.sent-down.sent < uint64(l.size()/2) || now.retries-down.retries < 5 {
			return fmt.Errorf("since ClickHouse stopped: %d records sent, %d attempts failed", now.sent-down.sent, now.retries-down.retries)
		}
		return nil
	})
	up := outageMark(p, w)
	srv.Start()
	t.Logf("ClickHouse down for %v: %d records sent meanwhile, %d attempts failed, %d records stored (by attempts under way when it stopped)",
		up.at.Sub(down.at).Round(time.Millisecond), up.sent-down.sent, up.retries-down.retries, up.written-down.written)
	if n := p.Stats().Sent; n >= uint64(l.size()) {
		t.Fatalf("the whole load was sent before ClickHouse came back (%d records): the restart did not happen under load", n)
	}
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
	if end := outageMark(p, w); end.written-up.written == 0 {
		t.Fatalf("the worker stored nothing after ClickHouse came back: %+v", w.Stats())
	}
	waitLagZero(t, brokers, group, time.Minute, k.EventsTopic, k.MetricsTopic)
	checkExactlyOnce(t, conn, ch.Database, l)
}

// mark is the load's progress at one moment of an outage test.
type mark struct {
	at                     time.Time
	sent, retries, written uint64 // records Kafka acknowledged; the worker's failed attempts and records stored
}

func outageMark(p *producer.Client, w *consumer.Worker) mark {
	s := w.Stats()
	return mark{at: time.Now(), sent: p.Stats().Sent, retries: s.Retries, written: s.Written}
}

// waitLagZero waits until group has committed every record of topics (within timeout).
func waitLagZero(t *testing.T, brokers []string, group string, timeout time.Duration, topics ...string) {
	t.Helper()
	lag := committedLag(t, brokers, group, topics...)
	testenv.EventuallyNil(t, "the consumer group to commit every record", timeout, func() error {
		if n := lag(); n != 0 {
			return fmt.Errorf("consumer lag %d (-1: a partition has no commit yet)", n)
		}
		return nil
	})
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

	testenv.Eventually(t, "the broker to acknowledge records before it stops", time.Minute, func() bool { return p.Stats().Sent > 0 })
	kafkaSrv.Stop()
	down := p.Stats()
	// The broker stays down while the application records 3 s of the load (7,500 records).
	testenv.EventuallyNil(t, "7,500 records to be recorded while the broker is down", time.Minute, func() error {
		if n := p.Stats().Accepted - down.Accepted; n < 7500 {
			return fmt.Errorf("%d recorded since the broker stopped", n)
		}
		return nil
	})
	up := p.Stats()
	kafkaSrv.Start()
	t.Logf("while the broker was down: %d records recorded, %d acknowledged; %d waiting in the buffer at the restart",
		up.Accepted-down.Accepted, up.Sent-down.Sent, up.Buffered)
	if up.Buffered == 0 || up.Accepted >= uint64(l.size()) {
		t.Fatalf("at the restart %d records were buffered and %d of %d recorded: the outage did not overlap the load", up.Buffered, up.Accepted, l.size())
	}
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
