package docscheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
)

// docEvents are what the Python blocks find on the events topic: every attribute value type.
var docEvents = []producer.Event{
	{EventID: "doc-1", TraceID: "trace-a", SpanID: "span-1", Type: "node_finished", Name: "TransformNode Completed",
		Attributes: map[string]any{"node_id": "transform_1", "outputs": map[string]any{"success": true, "rows": 1000},
			"errors": []any{"a", 2.5, nil}, "execution_count": 42}},
	{EventID: "doc-2", TraceID: "trace-b", Type: "node_failed", Name: "LoadNode Failed",
		Attributes: map[string]any{"node_id": "load_1", "error": "boom", "retry": false}},
	{EventID: "doc-3", Type: "alert", Name: "global", Attributes: map[string]any{}},
}

// Every Python block in docs/ runs, from the repository root, with the packages of
// deploy/docs/requirements.txt, against the real broker: TRIBUTARY_KAFKA_BROKERS and
// TRIBUTARY_KAFKA_EVENTS_TOPIC name a fresh two-partition topic holding docEvents. The downstream
// reader must print each of them as sent.
func TestPythonBlocksRun(t *testing.T) {
	blocks := blocksIn(t, "python")
	if countIn(blocks, "docs/downstream.md") == 0 {
		t.Fatal("docs/downstream.md has no Python block")
	}
	python := venvPython(t)
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 2, "docs-events", "docs-metrics")
	topic := topics[0]
	publish(t, brokers, topics)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, b := range blocks {
		script := filepath.Join(t.TempDir(), "block.py")
		if err := os.WriteFile(script, []byte(b.code), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, python, script)
		cmd.Dir = testenv.RepoRoot(t)
		cmd.Env = append(os.Environ(), "TRIBUTARY_KAFKA_BROKERS="+strings.Join(brokers, ","), "TRIBUTARY_KAFKA_EVENTS_TOPIC="+topic)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s fails: %v\n%s\n%s", b, err, stderr.String(), b.code)
			continue
		}
		if b.file == "docs/downstream.md" {
			checkPrintedEvents(t, b, out)
		}
	}
}

// venvPython is the interpreter deploy/docs/venv.sh makes (installing the packages once).
func venvPython(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(t), "deploy/docs/venv.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("deploy/docs/venv.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// publish sends docEvents to topics[0] (topics[1] is the producer's metrics topic).
func publish(t *testing.T, brokers []string, topics []string) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "docscheck", EventsTopic: topics[0], MetricsTopic: topics[1], TopicPartitions: 2, TopicReplication: 1}
	cfg.Service, cfg.Host = "docs", "h1"
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts := time.Date(2025, 1, 15, 10, 0, 2, 123456000, time.UTC)
	for i, e := range docEvents {
		e.Timestamp = ts.Add(time.Duration(i) * time.Second)
		if err := p.RecordEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkPrintedEvents compares the reader's JSON lines with docEvents, field by field.
func checkPrintedEvents(t *testing.T, b block, out []byte) {
	t.Helper()
	got := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s printed %q: %v", b, sc.Text(), err)
		}
		got[fmt.Sprint(e["event_id"])] = e
	}
	if len(got) != len(docEvents) {
		t.Fatalf("%s printed %d events, want %d:\n%s", b, len(got), len(docEvents), out)
	}
	ts := time.Date(2025, 1, 15, 10, 0, 2, 123456000, time.UTC)
	for i, want := range docEvents {
		e := got[want.EventID]
		wantAttrs := roundTrip(t, want.Attributes)
		var trace any
		if want.TraceID != "" {
			trace = want.TraceID
		}
		stamp := ts.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000-07:00")
		if e == nil || e["type"] != want.Type || e["name"] != want.Name || e["trace_id"] != trace || e["timestamp"] != stamp ||
			e["host"] != "h1" || !reflect.DeepEqual(e["attributes"], wantAttrs) {
			t.Errorf("%s printed %v\nwant %+v at %s", b, e, want, stamp)
		}
	}
}

// roundTrip is v as JSON decodes it (numbers float64).
func roundTrip(t *testing.T, v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
