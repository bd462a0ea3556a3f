package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/bench"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

const clusterName = "tributary"

var (
	clusterCH    []string // native addresses of the four ClickHouse servers, shard by shard
	clusterKafka []string
	clusterSh    string // deploy/cluster.sh
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	script := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "deploy", "cluster.sh")
	clusterSh = script
	c, stop, err := bench.StartLocalCluster(script, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the cluster tests need the local clusters: %v\n", err)
		return 1
	}
	defer stop() // only if this run started them
	clusterCH, clusterKafka = c.ClickHouseAddr, c.Brokers
	if len(clusterCH) != 4 || len(clusterKafka) != 3 {
		fmt.Fprintf(os.Stderr, "cluster.sh env gave ClickHouse %v and Kafka %v; want 4 and 3 addresses\n", clusterCH, clusterKafka)
		return 1
	}
	return m.Run()
}

// downNodes runs cluster.sh status and returns the nodes it finds stopped (cluster.sh's names:
// zookeeper, ch1..ch4, kafka1..kafka3) with its output.
func downNodes() ([]string, string) {
	out, err := exec.Command("bash", clusterSh, "status").CombinedOutput()
	if err == nil {
		return nil, string(out)
	}
	var down []string
	for _, line := range strings.Split(string(out), "\n") {
		name, ok := strings.CutSuffix(strings.TrimSpace(line), " stopped")
		if !ok {
			continue
		}
		if n, ok := strings.CutPrefix(name, "clickhouse"); ok {
			name = "ch" + n
		}
		down = append(down, name)
	}
	if len(down) == 0 {
		down = []string{"(cluster.sh status failed: " + err.Error() + ")"}
	}
	return down, string(out)
}

// nodeLogs is the last lines of a node's logs (cluster.sh logs).
func nodeLogs(node string) string {
	out, err := exec.Command("bash", clusterSh, "logs", node, "30").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("cluster.sh logs %s: %v\n%s", node, err, out)
	}
	return string(out)
}

// clusterUp fails the test at once when a node of the local clusters is down as it starts (an
// ON CLUSTER statement would wait distributed_ddl_task_timeout, 180 s, for it, and the test would
// fail later for a reason not its own): it logs the down nodes' last log lines, so a crash is
// explained, and starts them again, so the tests after it run on the whole cluster. Once per
// test; a test that fails also logs, when it ends, every node then down with its logs.
func clusterUp(t *testing.T) {
	t.Helper()
	if _, done := checkedTests.LoadOrStore(t, true); done {
		return
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if down, status := downNodes(); len(down) > 0 {
			t.Logf("the test failed with %v down:\n%s", down, status)
			for _, n := range down {
				t.Logf("%s's logs:\n%s", n, nodeLogs(n))
			}
		}
	})
	down, status := downNodes()
	if len(down) == 0 {
		return
	}
	for _, n := range down {
		t.Logf("%s is down; its logs:\n%s", n, nodeLogs(n))
	}
	for _, n := range down {
		if out, err := exec.Command("bash", clusterSh, "start-node", n).CombinedOutput(); err != nil {
			t.Logf("cluster.sh start-node %s: %v\n%s", n, err, out)
		}
	}
	t.Fatalf("the local clusters were not whole as the test started (a node exited during an earlier test, or was never restarted): %v down; restarted for the tests after this one\n%s", down, status)
}

var checkedTests sync.Map // *testing.T -> true: clusterUp ran for it

// clusterConfig is a config for a fresh database on the cluster (addr: the servers to talk to),
// dropped on every server when the test ends. It first checks that the whole cluster is up.
func clusterConfig(t *testing.T, addr ...string) chdb.Config {
	t.Helper()
	clusterUp(t)
	cfg := chdb.Config{Addr: addr, Database: testenv.Unique("cl"), User: "default", DialTimeout: 5 * time.Second,
		MaxOpenConns: 4, Cluster: clusterName}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := chdb.Open(ctx, cfg, false)
		if err != nil {
			t.Errorf("drop %s: %v", cfg.Database, err)
			return
		}
		defer conn.Close()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database+" ON CLUSTER "+clusterName); err != nil {
			t.Errorf("drop %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

func open(t *testing.T, cfg chdb.Config, useDatabase bool) driver.Conn {
	t.Helper()
	conn, err := chdb.Open(context.Background(), cfg, useDatabase)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// tables maps each table of database on conn's server to its engine and columns.
func tables(t *testing.T, conn driver.Conn, database string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", database)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		out[name] = engine + ":"
	}
	rows.Close()
	rows, err = conn.Query(ctx, "SELECT table, name, type, default_expression FROM system.columns WHERE database = ? ORDER BY table, name", database)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, name, typ, def string
		if err := rows.Scan(&table, &name, &typ, &def); err != nil {
			t.Fatal(err)
		}
		out[table] += " " + name + " " + typ + " " + def
	}
	return out
}

// records makes n events over 40 traces and n metrics over 24 series of all three kinds, spread
// over two hours.
func records(n int) ([]schemas.Event, []schemas.Metric) {
	base := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	var es []schemas.Event
	var ms []schemas.Metric
	for i := range n {
		trace := ""
		if i%5 != 0 {
			trace = fmt.Sprintf("trace%02d", i%40)
		}
		es = append(es, schemas.Event{
			EventID: fmt.Sprintf("e%05d", i), TraceID: trace, SpanID: fmt.Sprintf("s%d", i%7),
			Type: []string{"node_started", "node_finished"}[i%2], Name: fmt.Sprintf("n%d", i%5),
			Timestamp:  base.Add(time.Duration(i) * 2 * time.Second).Add(time.Duration(i) * time.Microsecond),
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%6), "i": int64(i)},
		})
		s := i % 24
		ms = append(ms, schemas.Metric{
			MetricID: fmt.Sprintf("m%05d", i), Name: fmt.Sprintf("metric_%d", s%3), Unit: "s", AggregationType: types[s%3],
			Value: math.Round(float64((i*7919)%10007)) / 100, Timestamp: base.Add(time.Duration(i) * 2 * time.Second),
			Attributes: map[string]any{"host": fmt.Sprintf("h%d", s)},
		})
	}
	return es, ms
}

// waitStored waits up to 60 s until every conn's database holds the 3000 events and metrics of
// loadKafka (FINAL: replays once) and rollups of all 24 series.
func waitStored(t *testing.T, conns ...driver.Conn) {
	t.Helper()
	ctx := context.Background()
	count := func(conn driver.Conn, sql string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, conn := range conns {
		for count(conn, "SELECT count() FROM events FINAL") != 3000 || count(conn, "SELECT count() FROM metrics FINAL") != 3000 ||
			count(conn, "SELECT count() FROM (SELECT DISTINCT series_id FROM rollups)") != 24 {
			if time.Now().After(deadline) {
				t.Fatalf("after 60 s: %d events, %d metrics; want 3000 of each", count(conn, "SELECT count() FROM events FINAL"),
					count(conn, "SELECT count() FROM metrics FINAL"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// sameAnswers checks that databases ca (called an in messages) and sa (bn), each holding the
// records of loadKafka, give the same answers: row counts and hashes of the stored rows, events by
// attribute, a trace, and aggregates (percentiles included) from raw rows and from rollups.
func sameAnswers(t *testing.T, an, bn string, ca, sa chdb.Config, es []schemas.Event) {
	t.Helper()
	ctx := context.Background()
	// Both sides complete first: every replica has every part (a read may go to either replica of
	// a shard), and every rollup window holds what the raw rows do (workers write windows after
	// the rows; ordering series by count on a side still writing would differ from the other's).
	for _, c := range []chdb.Config{ca, sa} {
		if c.Cluster != "" {
			syncReplicas(t, c)
		}
		conn := open(t, c, true)
		testenv.EventuallyNil(t, "the rollups of "+c.Database+" to match its raw metrics", time.Minute, func() error {
			_, err := testenv.RollupsDiffRaw(conn, c.Database, []int64{60, 3600}, "1")
			return err
		})
	}
	count := func(conn driver.Conn, sql string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	for _, sql := range []string{
		"SELECT count() FROM events_trace_index FINAL",
		"SELECT count() FROM events_attr_index FINAL",
		"SELECT sum(cityHash64(event_id, trace_id, attributes)) FROM events FINAL",
		"SELECT sum(cityHash64(metric_id, value, attributes)) FROM metrics FINAL",
	} {
		if c, s := count(open(t, ca, true), sql), count(open(t, sa, true), sql); c != s {
			t.Errorf("%s: %s %d, %s %d", sql, an, c, bn, s)
		}
	}

	// The query service on each gives the same answers: events by attribute, a trace, aggregates
	// from raw rows and from rollups (percentiles included).
	cq, sq := queryClient(t, ca), queryClient(t, sa)
	start, end := es[0].Timestamp.Add(-time.Minute), es[len(es)-1].Timestamp.Add(time.Minute)
	same := func(what string, c, s any) {
		t.Helper()
		if !reflect.DeepEqual(c, s) {
			t.Errorf("%s: %s and %s differ:\n%s: %v\n%s: %v", what, an, bn, an, c, bn, s)
		}
	}
	f := query.Filter{Start: start, End: end, Attributes: map[string]string{"node_id": "node_3"}, Limit: 1000}
	cev, cn, err := cq.QueryEvents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	sev, sn, err := sq.QueryEvents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(cev) != 500 {
		t.Errorf("node_3 events on %s: %d, want 500", an, len(cev))
	}
	same("events with node_id=node_3", eventIDs(cev, cn), eventIDs(sev, sn))
	ctr, err := cq.Trace(ctx, "trace07")
	if err != nil {
		t.Fatal(err)
	}
	str, err := sq.Trace(ctx, "trace07")
	if err != nil {
		t.Fatal(err)
	}
	same("trace07", eventIDs(ctr, 0), eventIDs(str, 0))
	for _, source := range []string{"raw", "rollups"} {
		q := query.AggregateQuery{Name: "metric_2", Bucket: time.Hour, Aggregates: []string{"count", "sum", "min", "max", "p50", "p99"},
			GroupBy: []string{"host"}, Start: start.Truncate(time.Hour), End: end.Truncate(time.Hour).Add(time.Hour), Source: source}
		cagg, err := cq.Aggregate(ctx, q)
		if err != nil {
			t.Fatalf("%s aggregate on %s: %v", source, an, err)
		}
		sagg, err := sq.Aggregate(ctx, q)
		if err != nil {
			t.Fatalf("%s aggregate on %s: %v", source, bn, err)
		}
		if cagg.Source != source || sagg.Source != source {
			t.Errorf("%s aggregate answered from %s on %s, %s on %s", source, cagg.Source, an, sagg.Source, bn)
		}
		if len(cagg.Series) != 8 {
			t.Errorf("%s aggregate: %d series, want 8", source, len(cagg.Series))
		}
		sameSeries(t, source+" aggregate", an, bn, cagg.Series, sagg.Series)
	}
}

// clusterTopics creates fresh topics of 4 partitions on the Kafka cluster (replication factor 3,
// min.insync.replicas 2: the brokers' defaults), deleted when the test ends, and returns their
// config.
func clusterTopics(t *testing.T) kafka.Config {
	t.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close) // after the topics' deletion below (cleanups run last first)
	adm := kadm.NewClient(cl)
	topics := []string{testenv.Unique("events"), testenv.Unique("metrics"), testenv.Unique("rollups"), testenv.Unique("dlq")}
	resp, err := adm.CreateTopics(ctx, 4, 3, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topics on the Kafka cluster: %v", err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topics...) })
	kcfg := kafka.Config{Brokers: clusterKafka, ClientID: "cluster-it", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 3}
	return kcfg
}

// produceLoad writes 3,000 events and 3,000 metrics to kcfg's topics, the first 500 of each
// twice (replays, keyed as the SDK keys them: a replay goes to its original's partition), and
// returns the events.
func produceLoad(t *testing.T, kcfg kafka.Config) []schemas.Event {
	t.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	es, ms := records(3000)
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, i := range append(seq(len(es)), seq(500)...) { // the first 500 of each twice: replays
		ev, err := codec.AppendEvent(nil, &es[i])
		if err != nil {
			t.Fatal(err)
		}
		mv, err := codec.AppendMetric(nil, &ms[i])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: kcfg.EventsTopic, Key: []byte(es[i].TraceID), Value: ev},
			&kgo.Record{Topic: kcfg.MetricsTopic, Key: producer.SeriesKey(&ms[i]), Value: mv})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to the Kafka cluster: %v", err)
	}
	return es
}

// loadKafka is clusterTopics then produceLoad.
func loadKafka(t *testing.T) (kafka.Config, []schemas.Event) {
	t.Helper()
	kcfg := clusterTopics(t)
	return kcfg, produceLoad(t, kcfg)
}

// workerConfig is a worker of a fresh group reading kcfg's topics into ch, rollups on.
func workerConfig(kcfg kafka.Config, ch chdb.Config) consumer.Config {
	return consumer.Config{
		Kafka: kcfg, ClickHouse: ch, Group: testenv.Unique("g"),
		BatchMaxRecords: 1000, BatchMaxBytes: 16 << 20, BatchInterval: 100 * time.Millisecond,
		FetchMaxBytes: 4 << 20, RetryBackoffMax: 500 * time.Millisecond, ShutdownTimeout: 30 * time.Second, WriteTimeout: time.Minute,
		EnableRollups: true, RollupTiers: []time.Duration{time.Minute, time.Hour}, RollupLateness: 5 * time.Second,
		RollupIdleTimeout: time.Second, RollupMaxWindows: 100000, RollupDedupeIDs: 100000,
	}
}

// sameSeries reports where two aggregate answers (an's c, bn's s) differ: the same groups, buckets and aggregates,
// with equal values (sums to 1e-12 relative: shards and partitions add their rows in another order).
func sameSeries(t *testing.T, what, an, bn string, c, s []query.Series) {
	t.Helper()
	if len(c) != len(s) {
		t.Errorf("%s: %s has %d series, %s %d", what, an, len(c), bn, len(s))
		return
	}
	for i := range c {
		if !reflect.DeepEqual(c[i].Group, s[i].Group) || len(c[i].Points) != len(s[i].Points) {
			t.Errorf("%s: series %d: %s %v with %d points, %s %v with %d", what, i,
				an, c[i].Group, len(c[i].Points), bn, s[i].Group, len(s[i].Points))
			continue
		}
		for j, cp := range c[i].Points {
			sp := s[i].Points[j]
			if !cp.Time.Equal(sp.Time) || len(cp.Values) != len(sp.Values) {
				t.Errorf("%s: %v point %d: %s %v %v, %s %v %v", what, c[i].Group, j, an, cp.Time, cp.Values, bn, sp.Time, sp.Values)
				continue
			}
			for agg, cv := range cp.Values {
				sv, ok := sp.Values[agg]
				tol := 0.0
				if agg == "sum" {
					tol = 1e-12 * math.Max(1, math.Abs(sv))
				}
				if !ok || math.Abs(cv-sv) > tol {
					t.Errorf("%s: %v at %v: %s = %v on %s, %v on %s", what, c[i].Group, cp.Time, agg, cv, an, sv, bn)
				}
			}
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func eventIDs(es []schemas.Event, total int) string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.EventID
	}
	sort.Strings(ids)
	return fmt.Sprintf("%d %v", total, ids)
}

func queryClient(t *testing.T, ch chdb.Config) *query.Client {
	t.Helper()
	ro := ch
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse = ro
	return query.NewClient(testenv.QueryServer(t, qcfg), nil)
}

func runWorker(t *testing.T, cfg consumer.Config) {
	t.Helper()
	consumertest.Run(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}
