// Package pipelinetest is the end-to-end scenario of the walking skeleton, for the tests that run it
// on one node (internal/pipeline) and on the local clusters (internal/cluster): 10,000 events and
// 10,000 metrics recorded through the SDK, with poison records mixed in, go through Kafka and a
// consumer worker into ClickHouse and come back through the query service with exact counts and
// every field equal to what was sent; the rollups match the raw metrics. Run returns what the query
// service and SQL answered, so that two runs (one node, the cluster) can be compared with Same.
package pipelinetest

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/pipeline"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// N is how many events, and how many metrics, the scenario records.
const N = 10000

// Tiers are the rollup tiers the scenario's worker writes, in seconds.
var Tiers = []int64{60, 3600}

// Env is where the scenario runs.
type Env struct {
	Brokers     []string    // Kafka: one broker or a cluster's
	Replication int16       // the fresh topics' replication factor
	ClickHouse  chdb.Config // a fresh, migrated database (Cluster set on a cluster), writer account
	// Settle, if set, is called once the worker has written every record and again once the
	// rollups match the raw metrics, before they are read: on a cluster it waits until every
	// replica holds every part written so far, since reads go to any replica (nil: one server).
	Settle func(t testing.TB)
}

// Answers is what one run's query service and SQL answered, each a function of the records sent
// only (not of how they were spread over partitions, shards or batches).
type Answers struct {
	Events     []schemas.Event                  // every event, in the service's time order
	Metrics    []schemas.Metric                 // every metric, by metric id
	Traces     map[string][]schemas.Event       // some traces (the global one too), in time order
	ByAttr     map[string][]schemas.Event       // events by attribute filter, in time order
	Aggregates map[string]query.AggregateAnswer // raw and rollup aggregates, percentiles included
	SQL        map[string]string                // counts and sums over the stored rows (FINAL), as text
	Windows    int                              // rollup windows that match the raw metrics
}

// Run runs the scenario on env and fails the test if anything sent does not come back exactly
// once, field for field, or the rollups do not match the raw metrics. It stops the worker and the
// query service before returning their answers.
func Run(t testing.TB, env Env) Answers {
	t.Helper()
	topics := createTopics(t, env)
	kcfg := kafka.Config{Brokers: env.Brokers, ClientID: "e2e", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: env.Replication}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stack := start(ctx, t, kcfg, env.ClickHouse)
	defer func() {
		if err := stack.Stop(); err != nil {
			t.Error(err)
		}
	}()

	poison, wantEvents, wantMetrics := produce(ctx, t, kcfg)
	testenv.EventuallyNil(t, "the consumer to store every record and dead-letter the poison", 2*time.Minute, func() error {
		if s := stack.Worker.Stats(); s.Written < 2*N || s.Poison < uint64(len(poison)) {
			return fmt.Errorf("consumer stats %+v", s)
		}
		return nil
	})
	settle := func() {
		if env.Settle != nil {
			env.Settle(t)
		}
	}
	settle()
	sent := make([]schemas.Metric, 0, len(wantMetrics))
	for _, m := range wantMetrics {
		sent = append(sent, m)
	}
	qc := query.NewClient(stack.QueryURL, nil)
	a := Answers{}
	a.Events, a.Metrics = readBack(ctx, t, qc, wantEvents, wantMetrics)
	if s := stack.Worker.Stats(); s.Poison != uint64(len(poison)) || s.Written != 2*N || s.Windows == 0 {
		t.Fatalf("worker stats %+v", s)
	}
	checkSelfMetrics(t, stack, len(poison))
	checkDeadLetters(ctx, t, env.Brokers, topics[3], poison)

	// The rollups: every window of every series, written once the partitions went idle, holds what
	// the raw metrics hold, and what a brute-force computation over the records sent gives.
	conn := testenv.OpenClickHouse(t, env.ClickHouse)
	db := env.ClickHouse.Database
	testenv.EventuallyNil(t, "the rollups to match the raw metrics", time.Minute, func() error {
		_, err := testenv.RollupsDiffRaw(conn, db, Tiers, "1")
		return err
	})
	settle()
	a.Windows = testenv.RollupsMatchRaw(t, conn, db, Tiers, "1")
	testenv.CheckRollups(t, testenv.ReadRollups(t, conn, db), sent, Tiers)

	a.Traces, a.ByAttr, a.Aggregates = queries(ctx, t, qc)
	a.SQL = sqlAnswers(t, conn)
	t.Logf("%d events, %d metrics, %d traces, %d attribute filters, %d aggregates, %d rollup windows match the raw metrics",
		len(a.Events), len(a.Metrics), len(a.Traces), len(a.ByAttr), len(a.Aggregates), a.Windows)
	return a
}

func createTopics(t testing.TB, env Env) []string {
	t.Helper()
	if env.Replication == 1 {
		return testenv.Topics(t, env.Brokers, 4, "events", "metrics", "rollups", "dlq")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	topics := []string{testenv.Unique("events"), testenv.Unique("metrics"), testenv.Unique("rollups"), testenv.Unique("dlq")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, 4, env.Replication, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		cl.Close()
		t.Fatalf("create topics %v (replication %d) on %v: %v", topics, env.Replication, env.Brokers, err)
	}
	t.Cleanup(func() {
		_, _ = adm.DeleteTopics(context.Background(), topics...)
		cl.Close()
	})
	return topics
}

// start runs a worker of a fresh group (rollups on, windows closed 1 s after a partition goes
// quiet) and the query service with the read-only account.
func start(ctx context.Context, t testing.TB, kcfg kafka.Config, ch chdb.Config) *pipeline.Stack {
	t.Helper()
	ccfg := consumer.DefaultConfig()
	ccfg.Kafka, ccfg.ClickHouse, ccfg.Group = kcfg, ch, testenv.Unique("group")
	ccfg.BatchMaxRecords, ccfg.BatchInterval, ccfg.RetryBackoffMax = 5000, 200*time.Millisecond, time.Second
	ccfg.RollupMaxWindows, ccfg.RollupMaxNewSeries = 100000, 0 // no cardinality guard
	ccfg.RollupTiers = []time.Duration{time.Minute, time.Hour}
	ccfg.RollupLateness, ccfg.RollupIdleTimeout = 5*time.Second, time.Second
	ro := ch
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse, qcfg.Listen, qcfg.Timeout = ro, "127.0.0.1:0", 30*time.Second
	// The worker's and the query service's warnings and errors are shown if the test fails.
	logs := &testenv.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() && logs.String() != "" {
			t.Logf("the worker and the query service logged:\n%s", logs.String())
		}
	})
	stack, err := pipeline.Start(ctx, ccfg, qcfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	return stack
}

// Base is the time of the first record; the records span about 12 s after it.
var Base = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

// produce records N events and N metrics through the SDK, with records that do not decode before
// and after them; it returns the poison and what the query service must return.
func produce(ctx context.Context, t testing.TB, kcfg kafka.Config) ([]*kgo.Record, map[string]schemas.Event, map[string]schemas.Metric) {
	t.Helper()
	pcfg := producer.DefaultConfig()
	pcfg.Kafka, pcfg.Service, pcfg.Host, pcfg.Tenant, pcfg.MaxBufferedRecords = kcfg, "e2e-svc", "e2e-host", "acme", 20000
	p, err := producer.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	// Records that do not decode, mixed in before and after the good ones: skipped, counted, and the
	// consumer keeps going.
	poison := []*kgo.Record{
		{Topic: kcfg.EventsTopic, Value: []byte("not avro at all")},
		{Topic: kcfg.MetricsTopic, Value: []byte{0xC3, 0x01, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1}},
		{Topic: kcfg.EventsTopic, Value: nil},
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.ProduceSync(ctx, poison[:2]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wantEvents := make(map[string]schemas.Event, N)
	wantMetrics := make(map[string]schemas.Metric, N)
	for i := range N {
		e, m := record(i)
		if err := p.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := p.RecordMetric(ctx, m); err != nil {
			t.Fatal(err)
		}
		e.Source = schemas.Source{Tenant: "acme", Service: "e2e-svc", Host: "e2e-host"}
		m.Source = e.Source
		wantEvents[e.EventID], wantMetrics[m.MetricID] = e, m
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := raw.ProduceSync(ctx, poison[2:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return poison, wantEvents, wantMetrics
}

// record is the scenario's i-th event and metric: 100 traces and global events, nested
// attributes, 240 series of 5 names (counters, gauges and a histogram), 16 hosts and 3 statuses.
func record(i int) (schemas.Event, schemas.Metric) {
	types := []string{"node_started", "node_finished", "checkpoint", "alert"}
	aggs := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	e := schemas.Event{
		EventID:   fmt.Sprintf("ev-%05d", i),
		TraceID:   fmt.Sprintf("trace-%03d", i%100),
		Type:      types[i%len(types)],
		Name:      fmt.Sprintf("Event %d", i),
		Timestamp: Base.Add(time.Duration(i) * 1234567 * time.Nanosecond).Truncate(time.Microsecond),
		Attributes: map[string]any{
			"node_id": fmt.Sprintf("node_%d", i%7),
			"outputs": map[string]any{"success": i%3 != 0, "rows": int64(i * 10), "score": float64(i) + 0.25},
			"errors":  []any{"e1", int64(i), 2.0, nil, map[string]any{"deep": []any{true, "x"}}},
			"ratio":   float64(i) / 3,
		},
	}
	if i%5 == 0 {
		e.SpanID = fmt.Sprintf("span-%d", i)
	}
	if i%11 == 0 {
		e.TraceID = "" // a global event
	}
	m := schemas.Metric{
		MetricID:        fmt.Sprintf("me-%05d", i),
		TraceID:         e.TraceID,
		Name:            fmt.Sprintf("metric_%d", i%5),
		Value:           float64(i)*1.5 - 100,
		Unit:            "seconds",
		AggregationType: aggs[i%5%3], // each name one kind: metric_2 is a histogram
		Timestamp:       e.Timestamp,
		Attributes:      map[string]any{"host": fmt.Sprintf("worker-%02d", i%16), "status": int64(200 + i%3)},
	}
	return e, m
}

// readBack reads every event and metric through the query service and fails unless each record
// sent comes back exactly once with every field equal, events in time order. It returns them.
func readBack(ctx context.Context, t testing.TB, qc *query.Client, wantEvents map[string]schemas.Event,
	wantMetrics map[string]schemas.Metric) ([]schemas.Event, []schemas.Metric) {
	t.Helper()
	gotEvents, err := query.All(ctx, query.Filter{Limit: 3000}, qc.QueryEvents)
	if err != nil {
		t.Fatalf("read every event back: %v", err)
	}
	gotMetrics, err := query.All(ctx, query.Filter{Limit: 10000}, qc.QueryMetrics)
	if err != nil {
		t.Fatalf("read every metric back: %v", err)
	}
	if len(gotEvents) != N || len(gotMetrics) != N {
		t.Fatalf("query service returned %d events and %d metrics, want %d each", len(gotEvents), len(gotMetrics), N)
	}
	for i := range gotEvents {
		got := &gotEvents[i]
		want, ok := wantEvents[got.EventID]
		if !ok {
			t.Fatalf("unknown or duplicate event %s", got.EventID)
		}
		delete(wantEvents, got.EventID)
		got.Timestamp = got.Timestamp.UTC()
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("event %d differs:\n got %#v\nwant %#v", i, *got, want)
		}
		if i > 0 && got.Timestamp.Before(gotEvents[i-1].Timestamp) {
			t.Fatalf("events not in time order at %d", i)
		}
	}
	for i := range gotMetrics {
		got := &gotMetrics[i]
		want, ok := wantMetrics[got.MetricID]
		if !ok {
			t.Fatalf("unknown or duplicate metric %s", got.MetricID)
		}
		delete(wantMetrics, got.MetricID)
		got.Timestamp = got.Timestamp.UTC()
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("metric differs:\n got %#v\nwant %#v", *got, want)
		}
	}
	sort.Slice(gotMetrics, func(i, j int) bool { return gotMetrics[i].MetricID < gotMetrics[j].MetricID })
	return gotEvents, gotMetrics
}
