package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/pipeline"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// The acceptance test of the walking skeleton: 10,000 events and 10,000 metrics recorded through the
// SDK come back through the query service with exact counts and every field equal to what was sent,
// nested attributes included. Real Kafka, real ClickHouse, and the read-only query account.
func TestEndToEnd(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq")
	ch := testenv.ClickHouse(t)
	kcfg := kafka.Config{Brokers: brokers, ClientID: "e2e", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 1}

	ccfg := consumer.DefaultConfig()
	ccfg.Kafka, ccfg.ClickHouse, ccfg.Group = kcfg, ch, testenv.Unique("group")
	ccfg.BatchMaxRecords, ccfg.BatchInterval, ccfg.RetryBackoffMax = 5000, 200*time.Millisecond, time.Second
	ccfg.RollupMaxWindows, ccfg.RollupMaxNewSeries = 100000, 0 // no cardinality guard
	ro := ch
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse, qcfg.Listen, qcfg.Timeout = ro, "127.0.0.1:0", 30*time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stack, err := pipeline.Start(ctx, ccfg, qcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stack.Stop(); err != nil {
			t.Error(err)
		}
	}()

	pcfg := producer.DefaultConfig()
	pcfg.Kafka, pcfg.Service, pcfg.Host, pcfg.Tenant, pcfg.MaxBufferedRecords = kcfg, "e2e-svc", "e2e-host", "acme", 20000
	p, err := producer.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	// Records that do not decode, mixed in before and after the good ones: skipped, counted, and the
	// consumer keeps going.
	poison := []*kgo.Record{
		{Topic: topics[0], Value: []byte("not avro at all")},
		{Topic: topics[1], Value: []byte{0xC3, 0x01, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1}},
		{Topic: topics[0], Value: nil},
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.ProduceSync(ctx, poison[:2]...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	const n = 10000
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	wantEvents := make(map[string]schemas.Event, n)
	wantMetrics := make(map[string]schemas.Metric, n)
	types := []string{"node_started", "node_finished", "checkpoint", "alert"}
	aggs := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	for i := range n {
		e := schemas.Event{
			EventID:   fmt.Sprintf("ev-%05d", i),
			TraceID:   fmt.Sprintf("trace-%03d", i%100),
			Type:      types[i%len(types)],
			Name:      fmt.Sprintf("Event %d", i),
			Timestamp: base.Add(time.Duration(i) * 1234567 * time.Nanosecond).Truncate(time.Microsecond),
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
			AggregationType: aggs[i%3],
			Timestamp:       e.Timestamp,
			Attributes:      map[string]any{"host": fmt.Sprintf("worker-%02d", i%16), "status": int64(200 + i%3)},
		}
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

	// Wait until the consumer wrote everything, then read it all back through the HTTP API.
	testenv.EventuallyNil(t, "the consumer to store every record and dead-letter the poison", 2*time.Minute, func() error {
		if s := stack.Worker.Stats(); s.Written < 2*n || s.Poison < uint64(len(poison)) {
			return fmt.Errorf("consumer stats %+v", s)
		}
		return nil
	})
	qc := query.NewClient(stack.QueryURL, nil)
	gotEvents, err := query.All(ctx, query.Filter{Limit: 3000}, qc.QueryEvents)
	if err != nil {
		t.Fatal(err)
	}
	gotMetrics, err := query.All(ctx, query.Filter{Limit: 10000}, qc.QueryMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotEvents) != n || len(gotMetrics) != n {
		t.Fatalf("query service returned %d events and %d metrics, want %d each", len(gotEvents), len(gotMetrics), n)
	}
	for i, got := range gotEvents {
		want, ok := wantEvents[got.EventID]
		if !ok {
			t.Fatalf("unknown or duplicate event %s", got.EventID)
		}
		delete(wantEvents, got.EventID)
		got.Timestamp = got.Timestamp.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d differs:\n got %#v\nwant %#v", i, got, want)
		}
		if i > 0 && got.Timestamp.Before(gotEvents[i-1].Timestamp) {
			t.Fatalf("events not in time order at %d", i)
		}
	}
	for _, got := range gotMetrics {
		want, ok := wantMetrics[got.MetricID]
		if !ok {
			t.Fatalf("unknown or duplicate metric %s", got.MetricID)
		}
		delete(wantMetrics, got.MetricID)
		got.Timestamp = got.Timestamp.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("metric differs:\n got %#v\nwant %#v", got, want)
		}
	}
	if s := stack.Worker.Stats(); s.Poison != uint64(len(poison)) || s.Written != 2*n || s.Windows == 0 {
		t.Fatalf("worker stats %+v", s)
	}
	// The worker's self-metrics say the same.
	families, err := stack.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[f.GetName()] += c.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"tributary_consumer_records_written_total": 2 * n,
		"tributary_consumer_dead_letters_total":    float64(len(poison)),
	} {
		if got[name] != want {
			t.Errorf("metric %s = %v, want %v", name, got[name], want)
		}
	}
	if got["tributary_kafka_read_bytes_total"] == 0 || got["tributary_rollup_windows_written_total"] == 0 {
		t.Errorf("kafka client or rollup metrics missing: %v", got)
	}

	// The poison records are on the dead-letter topic, byte for byte.
	dlq, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics[3]), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	var dead []string
	for len(dead) < len(poison) && ctx.Err() == nil {
		dlq.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead = append(dead, string(r.Value)) })
	}
	sort.Strings(dead)
	var want []string
	for _, p := range poison {
		want = append(want, string(p.Value))
	}
	sort.Strings(want)
	if !reflect.DeepEqual(dead, want) {
		t.Fatalf("dead-letter topic holds %q, want %q", dead, want)
	}
}
