package faults

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// MemoryBoundMiB is the peak resident memory the consumer stays under with its default settings
// (50,000-record batches, one in flight while the next is decoded, 4 MiB fetches, rollups on),
// whatever the backlog. docs/operations.md explains the parts.
const MemoryBoundMiB = 512

// A consumer process with default settings works through a 300,000-record backlog within the stated
// memory bound.
func TestConsumerMemoryBound(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq"))
	ch := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, ch)
	l := makeLoad(150000)

	codec, _ := schemas.NewCodec()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, 0, l.size())
	for i := range l.events {
		v, _ := codec.AppendEvent(nil, &l.events[i])
		recs = append(recs, &kgo.Record{Topic: k.EventsTopic, Key: []byte(l.events[i].TraceID), Value: v})
		v, _ = codec.AppendMetric(nil, &l.metrics[i])
		recs = append(recs, &kgo.Record{Topic: k.MetricsTopic, Key: producer.SeriesKey(&l.metrics[i]), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	recs = nil

	cmd := startConsumer(t, k, ch)
	start := time.Now()
	waitStored(t, conn, ch.Database, l.size(), 3*time.Minute)
	elapsed := time.Since(start)
	hwm := peakRSSMiB(t, cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consumer exited with %v", err)
	}
	t.Logf("consumer worked through %d records in %v (%.0f records/s) with peak RSS %d MiB (bound %d MiB)",
		l.size(), elapsed.Round(time.Millisecond), float64(l.size())/elapsed.Seconds(), hwm, MemoryBoundMiB)
	if hwm > MemoryBoundMiB {
		t.Fatalf("peak RSS %d MiB exceeds the stated bound of %d MiB", hwm, MemoryBoundMiB)
	}
}

// startConsumer runs the consumer binary with its default settings (and env, NAME=value, on top)
// on k's topics and ch's database; the test's cleanup kills it.
func startConsumer(t *testing.T, k kafka.Config, ch chdb.Config, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), "consumer")
	cmd.Env = append(os.Environ(),
		"TRIBUTARY_KAFKA_BROKERS="+strings.Join(k.Brokers, ","), "TRIBUTARY_KAFKA_EVENTS_TOPIC="+k.EventsTopic,
		"TRIBUTARY_KAFKA_METRICS_TOPIC="+k.MetricsTopic, "TRIBUTARY_KAFKA_ROLLUPS_TOPIC="+k.RollupsTopic,
		"TRIBUTARY_KAFKA_DLQ_TOPIC="+k.DLQTopic, "TRIBUTARY_CLICKHOUSE_ADDR="+ch.Addr[0],
		"TRIBUTARY_CLICKHOUSE_DATABASE="+ch.Database, "TRIBUTARY_CONSUMER_GROUP="+testenv.Unique("g"),
		"TRIBUTARY_CONSUMER_METRICS_LISTEN=", "TRIBUTARY_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// peakRSSMiB reads a process's high-water resident set size.
func peakRSSMiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
