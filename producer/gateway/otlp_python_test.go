package gateway_test

import (
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
	"github.com/tributary/tributary/schemas"
)

// pyRecording is what the Python SDK is told to record (other values than the Go SDK test's).
var pyRecording = recording{service: "py",
	counter: [][]int64{{2, 9}, {4}}, updown: [][]int64{{7, -2}, {1}},
	gauge: [][]float64{{18.5}, {19.75}}, latency: [][]float64{{0.8, 3.1, 6.6, 42, 0.02}, {90, 700}},
	size:      [][]float64{{512, 2.5, 1500, 96, 1.5, 48, 1024}, {8192, 0.4, 21}},
	lastGauge: 19.75, lastUpDown: 6}

// pythonSDK runs deploy/otlp/send.py with the OpenTelemetry Python SDK (deploy/otlp/venv.sh
// installs it from PyPI; the test fails if it cannot) to send plan's logs and metrics.
func pythonSDK(t *testing.T, plan map[string]any) {
	t.Helper()
	root := testenv.RepoRoot(t)
	venv := exec.Command("bash", filepath.Join(root, "deploy/otlp/venv.sh"))
	var stderr bytes.Buffer
	venv.Stderr = &stderr
	out, err := venv.Output()
	if err != nil {
		t.Fatalf("deploy/otlp/venv.sh could not install the OpenTelemetry Python SDK: %v\n%s", err, stderr.String())
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	b, _ := json.Marshal(plan)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	send := exec.CommandContext(ctx, strings.TrimSpace(string(out)), filepath.Join(root, "deploy/otlp/send.py"), path)
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("the Python SDK (%s): %v\n%s", plan["transport"], err, out)
	}
}

// TestOTLPWithThePythonSDK sends logs and metrics with the OpenTelemetry Python SDK's OTLP
// exporters (opentelemetry-exporter-otlp from PyPI: HTTP with gzip and cumulative temporality,
// gRPC with gzip and delta temporality) to the gateway on the real broker, and checks the rows the
// consumer stored in the real ClickHouse, the rollups and the query service's percentiles against
// what the SDK was told to record.
func TestOTLPWithThePythonSDK(t *testing.T) {
	s := newOTLPStack(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	cases := []struct{ transport, endpoint, temporality string }{
		{"http", s.httpURL, "cumulative"}, {"grpc", s.grpcAddr, "delta"},
	}
	for _, c := range cases {
		var logs []map[string]any
		for i, rec := range []struct {
			event string
			body  any
		}{{"checkpoint", "Data Loaded"}, {"", map[string]any{"rows": 1000}}, {"", "plain log line"}} {
			attrs := map[string]any{"s": "text", "b": true, "i": 42, "d": 2.5, "list": []string{"a", "b"}}
			if i == 1 {
				attrs["event.name"] = "alert"
			}
			l := map[string]any{"time_unix_nano": at.Add(time.Duration(i) * time.Millisecond).UnixNano(), "body": rec.body, "attributes": attrs}
			if rec.event != "" {
				l["event_name"] = rec.event
			}
			logs = append(logs, l)
		}
		var rounds []map[string]any
		for i := range pyRecording.counter {
			rounds = append(rounds, map[string]any{"counter": pyRecording.counter[i], "gauge": pyRecording.gauge[i],
				"updown": pyRecording.updown[i], "latency": pyRecording.latency[i], "size": pyRecording.size[i]})
		}
		pythonSDK(t, map[string]any{"transport": c.transport, "endpoint": c.endpoint, "token": token, "temporality": c.temporality,
			"service": pyRecording.service + "-" + c.transport, "host": "host-" + c.transport, "logs": logs, "rounds": rounds,
			"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"})
	}
	s.settle(t)
	for _, c := range cases {
		t.Run(c.transport+"/logs", func(t *testing.T) { checkPythonLogs(t, s, c.transport, at) })
		t.Run(c.transport+"/metrics", func(t *testing.T) { checkMetrics(t, s, pyRecording, c.transport) })
	}
}

func checkPythonLogs(t *testing.T, s *otlpStack, transport string, at time.Time) {
	rows, err := s.conn.Query(context.Background(), fmt.Sprintf(
		`SELECT tenant, type, name, trace_id, span_id, timestamp_us, attributes, host FROM %s.events FINAL WHERE service = ? ORDER BY timestamp_us`, s.db),
		pyRecording.service+"-"+transport)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	wantTypes := []string{"checkpoint", "alert", "log"}
	wantNames := []string{"Data Loaded", `{"rows":1000}`, "plain log line"}
	wantAttrs := map[string]any{"s": "text", "b": true, "i": int64(42), "d": 2.5, "list": []any{"a", "b"}, "transport": transport,
		"otel.scope.name": "otlp-python", "otel.scope.version": "1.2.3", "otel.severity_text": "WARN", "otel.severity_number": int64(13)}
	n := 0
	for rows.Next() {
		var tenant, typ, name, trace, span, attrJSON, host string
		var ts uint64
		if err := rows.Scan(&tenant, &typ, &name, &trace, &span, &ts, &attrJSON, &host); err != nil {
			t.Fatal(err)
		}
		attrs, err := schemas.ParseAttributesJSON([]byte(attrJSON))
		if err != nil {
			t.Fatal(err)
		}
		if n >= 3 {
			t.Fatalf("more than 3 events stored")
		}
		if tenant != "acme" || typ != wantTypes[n] || name != wantNames[n] || host != "host-"+transport ||
			trace != "0af7651916cd43dd8448eb211c80319c" || span != "b7ad6b7169203331" || ts != uint64(at.Add(time.Duration(n)*time.Millisecond).UnixMicro()) {
			t.Errorf("event %d: %s %s %q %s %s %d %s", n, tenant, typ, name, trace, span, ts, host)
		}
		for k, v := range wantAttrs {
			if !reflect.DeepEqual(attrs[k], v) {
				t.Errorf("event %d attribute %q = %#v, want %#v", n, k, attrs[k], v)
			}
		}
		if n == 1 && !reflect.DeepEqual(attrs["otel.body"], map[string]any{"rows": int64(1000)}) {
			t.Errorf("map body kept as %#v", attrs["otel.body"])
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d events stored, want 3", n)
	}
}
