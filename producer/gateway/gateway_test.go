package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
	"github.com/tributary/tributary/schemas"
)

const token, otherToken = "acme-token-123", "globex-token-456"

type fixture struct {
	url     string
	h       http.Handler
	p       *producer.Client
	brokers []string
	topics  []string
}

func newFixture(t testing.TB, brokers []string, mod func(*producer.Config, *gateway.Config)) *fixture {
	t.Helper()
	f := &fixture{brokers: brokers}
	pcfg := producer.DefaultConfig()
	if brokers == nil { // no broker: records wait in the buffer
		pcfg.Kafka = kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "gw", EventsTopic: "e", MetricsTopic: "m", TopicPartitions: 1, TopicReplication: 1}
	} else {
		f.topics = testenv.Topics(t, brokers, 2, "events", "metrics")
		pcfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "gw", EventsTopic: f.topics[0], MetricsTopic: f.topics[1], TopicPartitions: 2, TopicReplication: 1}
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.Tokens = "127.0.0.1:0", map[string]string{token: "acme", otherToken: "globex"}
	gcfg.MaxBodyBytes, gcfg.MaxRecords, gcfg.BufferWait, gcfg.FlushTimeout = 64<<10, 100, 100*time.Millisecond, 10*time.Second
	if mod != nil {
		mod(&pcfg, &gcfg)
	}
	p, err := producer.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = p.Close(ctx)
	})
	g, err := gateway.New(gcfg, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.h = g.Handler()
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/v1/ingest"
	return f
}

type reply struct {
	status int
	body   map[string]any
	header http.Header
}

func post(t *testing.T, url, tok, contentType, encoding string, body []byte) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return reply{resp.StatusCode, m, resp.Header}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

const goodObject = `{"events": [{"type": "node_finished", "name": "Transform Completed", "trace_id": "t1",
  "timestamp": "2025-01-15T10:00:02.5Z", "attributes": {"node_id": "transform_1", "outputs": {"rows": 1000, "ok": true}, "ratio": 2.0}}],
 "metrics": [{"name": "node_duration", "value": 0.25, "unit": "seconds", "aggregation_type": "histogram", "timestamp": 1736935202.25,
  "attributes": {"node_id": "transform_1"}}]}`

func TestErrorAnswers(t *testing.T) {
	f := newFixture(t, nil, nil)
	check := func(name string, r reply, status int, field string, index float64) {
		t.Helper()
		if r.status != status {
			t.Errorf("%s: HTTP %d %v, want %d", name, r.status, r.body, status)
			return
		}
		if field != "" && (r.body["field"] != field || r.body["index"] != index) {
			t.Errorf("%s: %v, want field %q at index %v", name, r.body, field, index)
		}
	}
	js := "application/json"
	check("no token", post(t, f.url, "", js, "", []byte(goodObject)), 401, "", 0)
	check("unknown token", post(t, f.url, "nope-nope-nope", js, "", []byte(goodObject)), 403, "", 0)
	check("xml", post(t, f.url, token, "application/xml", "", []byte("<a/>")), 415, "", 0)
	check("brotli", post(t, f.url, token, js, "br", []byte(goodObject)), 415, "", 0)
	check("too large", post(t, f.url, token, js, "", bytes.Repeat([]byte(" "), 65<<10)), 413, "", 0)
	check("gzip bomb", post(t, f.url, token, js, "gzip", gz(bytes.Repeat([]byte(" "), 1<<20))), 413, "", 0)
	many := `[` + strings.TrimSuffix(strings.Repeat(`{"kind":"event","type":"t","name":"n"},`, 101), ",") + `]`
	check("too many records", post(t, f.url, token, js, "", []byte(many)), 413, "", 0)
	check("not json", post(t, f.url, token, js, "", []byte("hello")), 400, "", 0)
	ndLine := `{"kind":"event","type":"t","name":"n"}` + "\n"
	bigND := []byte(strings.Repeat(ndLine, (65<<10)/len(ndLine)))
	check("ndjson too large", post(t, f.url, token, "application/x-ndjson", "", bigND), 413, "", 0)
	check("gzip ndjson too large", post(t, f.url, token, "application/x-ndjson", "gzip", gz(bigND)), 413, "", 0)
	check("trailing garbage", post(t, f.url, token, js, "", []byte(goodObject+" {}")), 400, "", 0)
	check("number as a string", post(t, f.url, token, js, "", []byte(`[{"kind":"metric","name":"m","value":"12","aggregation_type":"gauge"}]`)), 400, "value", 0)
	check("wrong-typed value", post(t, f.url, token, js, "", []byte(`[{"kind":"metric","name":"m","value":[1],"aggregation_type":"gauge"}]`)), 400, "value", 0)
	check("unknown field", post(t, f.url, token, js, "", []byte(`[{"kind":"event","type":"t","name":"n"},{"kind":"event","type":"t","nmae":"n"}]`)), 400, "nmae", 1)
	check("forged tenant", post(t, f.url, token, js, "", []byte(`[{"kind":"event","type":"t","name":"n","tenant":"globex"}]`)), 400, "tenant", 0)
	check("empty name", post(t, f.url, token, js, "", []byte(`{"events":[{"type":"t","name":"ok"}],"metrics":[{"name":"","value":1,"aggregation_type":"gauge"}]}`)), 400, "name", 1)
	check("unknown aggregation", post(t, f.url, token, js, "", []byte(`[{"kind":"metric","name":"m","value":1,"aggregation_type":"summary"}]`)), 400, "aggregation_type", 0)
	check("missing value", post(t, f.url, token, js, "", []byte(`[{"kind":"metric","name":"m","aggregation_type":"gauge"}]`)), 400, "value", 0)
	check("bad timestamp", post(t, f.url, token, js, "", []byte(`[{"kind":"event","type":"t","name":"n","timestamp":"yesterday"}]`)), 400, "timestamp", 0)
	check("bad kind", post(t, f.url, token, js, "", []byte(`[{"kind":"log","type":"t","name":"n"}]`)), 400, "kind", 0)
	if s := f.p.Stats(); s.Accepted != 0 {
		t.Fatalf("refused requests accepted records: %+v", s)
	}
	// The buffer (100 records by default here) fills while no broker answers: 503 with Retry-After,
	// and a refused request takes no room.
	f2 := newFixture(t, nil, func(p *producer.Config, _ *gateway.Config) { p.MaxBufferedRecords = 3 })
	check("fits", post(t, f2.url, token, js, "", []byte(goodObject)), 202, "", 0)
	r := post(t, f2.url, token, js, "", []byte(goodObject))
	check("full", r, 503, "", 0)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if s := f2.p.Stats(); s.Accepted != 2 {
		t.Fatalf("the refused request left records behind: %+v", s)
	}
}

func TestAcceptedRecordsReachKafkaWithTheTokensTenant(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	f := newFixture(t, brokers, nil)
	js, nd := "application/json", "application/x-ndjson"
	ndjson := `{"kind":"event","type":"checkpoint","name":"Data Loaded","attributes":{"rows":7}}
{"kind":"metric","name":"cache_hits","value":1,"unit":"count","aggregation_type":"counter"}
`
	for _, c := range []struct {
		name, tok, ct, enc, query string
		body                      []byte
		n                         float64
	}{
		{"object", token, js, "", "", []byte(goodObject), 2},
		{"gzip ndjson", otherToken, nd, "gzip", "", gz([]byte(ndjson)), 2},
		{"array, wait for ack", token, js, "", "?wait=ack", []byte(`[{"kind":"event","type":"alert","name":"High Memory Usage"}]`), 1},
	} {
		r := post(t, f.url+c.query, c.tok, c.ct, c.enc, c.body)
		if r.status != 202 || r.body["accepted"] != c.n {
			t.Fatalf("%s: HTTP %d %v", c.name, r.status, r.body)
		}
	}
	if err := f.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(f.topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	codec, _ := schemas.NewCodec()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tenants := map[string]string{}
	var full schemas.Event
	for len(tenants) < 5 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Topic == f.topics[0] {
				e, _ := codec.DecodeEvent(r.Value)
				tenants[e.Name] = e.Tenant
				if e.Name == "Transform Completed" {
					full = e
				}
			} else {
				m, _ := codec.DecodeMetric(r.Value)
				tenants[m.Name] = m.Tenant
			}
		})
	}
	want := map[string]string{"Transform Completed": "acme", "node_duration": "acme", "Data Loaded": "globex", "cache_hits": "globex", "High Memory Usage": "acme"}
	if fmt.Sprint(tenants) != fmt.Sprint(want) {
		t.Fatalf("tenants %v, want %v", tenants, want)
	}
	wantAttrs := map[string]any{"node_id": "transform_1", "outputs": map[string]any{"rows": int64(1000), "ok": true}, "ratio": 2.0}
	if fmt.Sprint(full.Attributes) != fmt.Sprint(wantAttrs) || full.TraceID != "t1" ||
		!full.Timestamp.Equal(time.Date(2025, 1, 15, 10, 0, 2, 500000000, time.UTC)) || full.EventID == "" {
		t.Fatalf("event %+v", full)
	}
	if _, isFloat := full.Attributes["ratio"].(float64); !isFloat {
		t.Fatal("2.0 lost its float type")
	}
	// The gateway's /metrics carries its own counters and its producer's.
	resp, err := http.Get(strings.TrimSuffix(f.url, "/v1/ingest") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"tributary_gateway_records_accepted_total 5", "tributary_producer_records_sent_total 5",
		`tributary_gateway_requests_total{status="202"} 3`, "tributary_producer_buffered_records 0"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// /readyz reflects Kafka: 503 naming it while no broker answers.
func TestReadinessReflectsKafka(t *testing.T) {
	f := newFixture(t, nil, nil) // no broker
	resp, err := http.Get(strings.TrimSuffix(f.url, "/v1/ingest") + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "kafka") {
		t.Fatalf("readyz without a broker: %d %s", resp.StatusCode, body)
	}
}
