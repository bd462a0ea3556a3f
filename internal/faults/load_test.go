package faults

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// load is n events and n metrics with fixed ids, times and values, so what is stored can be
// compared with what was sent.
type load struct {
	events  []schemas.Event
	metrics []schemas.Metric
}

func makeLoad(n int) load {
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	var l load
	for i := range n {
		ts := base.Add(time.Duration(i) * 2 * time.Millisecond)
		l.events = append(l.events, schemas.Event{
			EventID: fmt.Sprintf("ev-%07d", i), TraceID: fmt.Sprintf("trace-%d", i%500), Type: "node_finished",
			Name: "n", Timestamp: ts, Attributes: map[string]any{"i": int64(i)},
		})
		s := i % 24
		l.metrics = append(l.metrics, schemas.Metric{
			MetricID: fmt.Sprintf("me-%07d", i), Name: fmt.Sprintf("metric_%d", s%4), Unit: "s", AggregationType: types[s%3],
			Value: math.Round(float64((i*7919)%10007)) / 100, Timestamp: ts, Attributes: map[string]any{"host": fmt.Sprintf("h%d", s)},
		})
	}
	return l
}

func (l load) size() int { return len(l.events) + len(l.metrics) }

// send records l through p at about rate records a second.
func send(ctx context.Context, p *producer.Client, l load, rate int) error {
	start := time.Now()
	for i := range l.events {
		if err := p.RecordEvent(ctx, l.events[i]); err != nil {
			return err
		}
		if err := p.RecordMetric(ctx, l.metrics[i]); err != nil {
			return err
		}
		if ahead := time.Duration(float64(2*(i+1))/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}

func newProducer(t *testing.T, k kafka.Config) *producer.Client {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.Kafka, cfg.Service, cfg.Host, cfg.MaxBufferedRecords, cfg.BufferFullTimeout = k, "faults", "h", 200000, time.Minute
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func topicsConfig(brokers []string, topics []string) kafka.Config {
	return kafka.Config{Brokers: brokers, ClientID: "faults", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 1}
}

func workerConfig(k kafka.Config, ch chdb.Config, group string) consumer.Config {
	c := consumer.DefaultConfig()
	c.Kafka, c.ClickHouse, c.Group = k, ch, group
	c.BatchMaxRecords, c.BatchMaxBytes, c.BatchInterval = 4000, 16<<20, 250*time.Millisecond
	c.RetryBackoffMax, c.ShutdownTimeout = time.Second, 20*time.Second
	c.RollupLateness, c.RollupMaxWindows, c.RollupMaxNewSeries = 5*time.Second, 100000, 0 // no cardinality guard
	return c
}

// runWorker runs a consumer worker in this process until the test ends.
func runWorker(t *testing.T, cfg consumer.Config) *consumer.Worker {
	t.Helper()
	return runWorkerLogging(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// runWorkerLogging is runWorker logging to log.
func runWorkerLogging(t *testing.T, cfg consumer.Config, log *slog.Logger) *consumer.Worker {
	t.Helper()
	return consumertest.Run(t, cfg, log)
}

func count(t testing.TB, conn driver.Conn, q string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Logf("%s: %v", q, err)
		return 0
	}
	return n
}

// stored counts distinct stored events plus metrics.
func stored(t testing.TB, conn driver.Conn, db string) uint64 {
	return count(t, conn, "SELECT uniqExact(event_id) FROM "+db+".events") + count(t, conn, "SELECT uniqExact(metric_id) FROM "+db+".metrics")
}

// waitStored waits until want distinct records are stored in db (within timeout).
func waitStored(t *testing.T, conn driver.Conn, db string, want int, timeout time.Duration) {
	t.Helper()
	testenv.EventuallyNil(t, "every record to be stored", timeout, func() error {
		if n := stored(t, conn, db); n < uint64(want) {
			return fmt.Errorf("%d of %d records stored", n, want)
		}
		return nil
	})
}

// checkExactlyOnce: each record once in query results (FINAL), every field of every row as sent
// (spot-checked by id and value sums), and rollups equal to a brute-force computation.
func checkExactlyOnce(t *testing.T, conn driver.Conn, db string, l load) {
	t.Helper()
	n := uint64(len(l.events))
	if got := count(t, conn, "SELECT count() FROM "+db+".events FINAL"); got != n {
		t.Errorf("events: %d rows with FINAL, want %d", got, n)
	}
	if got := count(t, conn, "SELECT count() FROM "+db+".metrics FINAL"); got != n {
		t.Errorf("metrics: %d rows with FINAL, want %d", got, n)
	}
	var want, got float64
	for _, m := range l.metrics {
		want += m.Value
	}
	if err := conn.QueryRow(context.Background(), "SELECT sum(value) FROM "+db+".metrics FINAL").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-6*want {
		t.Errorf("sum of metric values %v, sent %v", got, want)
	}
	testenv.CheckRollups(t, testenv.ReadRollups(t, conn, db), l.metrics, []int64{60, 3600})
}
