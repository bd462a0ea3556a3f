package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// unwrap turns Avro's {"v": x} attribute values, as Java prints them, back into plain values.
func unwrap(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if inner, ok := x["v"]; ok && len(x) == 1 {
			return unwrap(inner)
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = unwrap(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unwrap(e)
		}
		return out
	}
	return v
}

// A Java consumer with Apache Avro's BinaryMessageDecoder and our .avsc files reads events,
// metrics and rollups from the real broker, every field as written.
func TestJavaConsumerReadsOurTopics(t *testing.T) {
	root := testenv.RepoRoot(t)
	build := exec.Command("bash", filepath.Join(root, "deploy/interop/build.sh"))
	var stderr bytes.Buffer
	build.Stderr = &stderr
	cp, err := build.Output()
	if err != nil {
		t.Fatalf("build the Java consumer: %v\n%s", err, stderr.String())
	}
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 1, "events", "metrics", "rollups")
	cfg := producer.DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "interop", EventsTopic: topics[0], MetricsTopic: topics[1], TopicPartitions: 1, TopicReplication: 1}
	cfg.Service, cfg.Host = "interop", "h1"
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts := time.Date(2025, 1, 15, 10, 0, 2, 123456000, time.UTC)
	if err := p.RecordEvent(ctx, producer.Event{EventID: "ev-1", TraceID: "trace-1", SpanID: "span-1", Type: "node_finished", Name: "TransformNode Completed",
		Timestamp: ts, Attributes: map[string]any{"node_id": "transform_1", "outputs": map[string]any{"success": true, "rows": 1000},
			"errors": []any{"a", 2.5, nil}, "execution_count": 42}}); err != nil {
		t.Fatal(err)
	}
	if err := p.RecordMetric(ctx, producer.Metric{MetricID: "me-1", Name: "llm_api_cost", Value: 0.0042, Unit: "dollars",
		AggregationType: "counter", Timestamp: ts, Attributes: map[string]any{"model": "m"}}); err != nil {
		t.Fatal(err)
	}
	// A histogram (as the gateway makes of an OTLP histogram data point) is written with the
	// current metric schema; the plain metric above with metric.v1.avsc.
	if err := p.RecordMetric(ctx, producer.Metric{MetricID: "me-2", Name: "latency", Value: 17.5, Unit: "ms",
		AggregationType: "histogram", Timestamp: ts, Histogram: &schemas.Distribution{Count: 3, Min: 0.5, Max: 12,
			Bounds: []float64{1, 10}, Counts: []uint64{1, 1, 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	codec, _ := schemas.NewCodec()
	rollup := schemas.Rollup{Tenant: "acme", Name: "node_duration", Unit: "seconds", AggregationType: schemas.Histogram, SeriesID: 12345,
		Attributes: map[string]any{"node_id": "transform_1"}, TierSeconds: 60, WindowStart: time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC),
		LastOffset: 17, Count: 3, Sum: 0.6, Min: 0.1, Max: 0.3, Last: 0.2, LastTimestamp: ts,
		Sketch: &schemas.RollupSketch{RelativeAccuracy: 0.01, PositiveKeys: []int32{-230, -120, -60}, PositiveCounts: []uint64{1, 1, 1},
			NegativeKeys: []int32{}, NegativeCounts: []uint64{}}, Final: true}
	v, err := codec.AppendRollup(nil, &rollup)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics[2], Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	avsc := func(name string) string { return filepath.Join(root, "schemas/avro", name) }
	java := exec.CommandContext(ctx, "java", "-cp", strings.TrimSpace(string(cp)), "ReadTopics", brokers[0], "4",
		topics[0]+"="+avsc("event.avsc"), topics[1]+"="+avsc("metric.avsc")+","+avsc("metric.v1.avsc"), topics[2]+"="+avsc("rollup.avsc"))
	stderr.Reset()
	java.Stderr = &stderr
	out, err := java.Output()
	if err != nil {
		t.Fatalf("java consumer: %v\n%s\nstdout: %s", err, stderr.String(), out)
	}
	got := map[string]map[string]any{}
	var hist map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Topic  string         `json:"topic"`
			Record map[string]any `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("java printed %q: %v", sc.Text(), err)
		}
		if line.Record["name"] == "latency" {
			hist = line.Record
			continue
		}
		got[line.Topic] = line.Record
	}
	ev, me, ro := got[topics[0]], got[topics[1]], got[topics[2]]
	if ev == nil || me == nil || ro == nil {
		t.Fatalf("java read %v", got)
	}
	wantAttrs := map[string]any{"node_id": "transform_1", "outputs": map[string]any{"success": true, "rows": 1000.0},
		"errors": []any{"a", 2.5, nil}, "execution_count": 42.0}
	if ev["event_id"] != "ev-1" || ev["trace_id"] != "trace-1" || ev["span_id"] != "span-1" || ev["type"] != "node_finished" ||
		ev["timestamp"] != float64(ts.UnixMicro()) || ev["host"] != "h1" || !jsonEqual(unwrap(ev["attributes"]), wantAttrs) {
		t.Fatalf("java decoded the event as %v", ev)
	}
	if me["name"] != "llm_api_cost" || me["value"] != 0.0042 || me["aggregation_type"] != "counter" || me["histogram"] != nil ||
		!jsonEqual(unwrap(me["attributes"]), map[string]any{"model": "m"}) {
		t.Fatalf("java decoded the metric as %v", me)
	}
	want := map[string]any{"count": 3.0, "min": 0.5, "max": 12.0, "bounds": []any{1.0, 10.0}, "counts": []any{1.0, 1.0, 1.0}, "exponential": nil}
	if hist == nil || hist["value"] != 17.5 || hist["aggregation_type"] != "histogram" || !jsonEqual(hist["histogram"], want) {
		t.Fatalf("java decoded the histogram as %v", hist)
	}
	sk, _ := ro["sketch"].(map[string]any)
	if ro["count"] != 3.0 || ro["tier_seconds"] != 60.0 || ro["final"] != true || sk == nil || !jsonEqual(sk["positive_keys"], []any{-230.0, -120.0, -60.0}) {
		t.Fatalf("java decoded the rollup as %v", ro)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
