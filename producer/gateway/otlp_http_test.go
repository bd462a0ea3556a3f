package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	spb "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
)

func otlpURL(f *fixture, path string) string { return strings.TrimSuffix(f.url, "/v1/ingest") + path }

// logsRequest is an OTLP logs request of n records, each with attrs.
func logsRequest(n int, attrs map[string]any) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2025, 1, 15, 10, 0, 0, i, time.UTC)))
		lr.Body().SetStr("line")
		_ = lr.Attributes().FromRaw(attrs)
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

func protoBody(t *testing.T, req interface{ MarshalProto() ([]byte, error) }) []byte {
	t.Helper()
	b, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type otlpReply struct {
	status  int
	header  http.Header
	st      *spb.Status // a refusal's google.rpc.Status
	partial string      // an accepted request's answer, as JSON
	raw     []byte
}

func postOTLP(t *testing.T, url, tok, contentType, encoding string, body []byte) otlpReply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
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
	raw, _ := io.ReadAll(resp.Body)
	r := otlpReply{status: resp.StatusCode, header: resp.Header, raw: raw}
	js := resp.Header.Get("Content-Type") == "application/json"
	if resp.StatusCode != 200 {
		r.st = &spb.Status{}
		if js {
			err = protojson.Unmarshal(raw, r.st)
		} else {
			err = proto.Unmarshal(raw, r.st)
		}
		if err != nil {
			t.Fatalf("HTTP %d answer is no google.rpc.Status: %v (%q)", resp.StatusCode, err, raw)
		}
	}
	return r
}

// Refused OTLP/HTTP requests get the OTLP specification's answers with a message naming the
// problem, and leave nothing in the producer's buffer.
func TestOTLPRefusals(t *testing.T) {
	f := newFixture(t, nil, nil) // MaxBodyBytes 64 KiB, MaxRecords 100
	good := protoBody(t, logsRequest(2, nil))
	big := protoBody(t, logsRequest(1, map[string]any{"blob": strings.Repeat("x", 70<<10)}))
	pb, js := "application/x-protobuf", "application/json"
	f2 := func(name, path, tok, ct, enc string, body []byte, status int, code codes.Code, msg string) {
		t.Helper()
		r := postOTLP(t, otlpURL(f, path), tok, ct, enc, body)
		if r.status != status || r.st == nil || codes.Code(r.st.Code) != code || !strings.Contains(r.st.Message, msg) {
			t.Errorf("%s: HTTP %d %v, want %d %v with %q", name, r.status, r.st, status, code, msg)
		}
	}
	for _, path := range []string{"/v1/logs", "/v1/metrics"} {
		f2("corrupt protobuf "+path, path, token, pb, "", []byte("\x0a\xff\xff\xff\xff garbage"), 400, codes.InvalidArgument, "undecodable OTLP request")
		f2("corrupt JSON "+path, path, token, js, "", []byte(`{"resourceLogs": [`), 400, codes.InvalidArgument, "undecodable OTLP request")
		f2("wrong content type "+path, path, token, "text/plain", "", good, 415, codes.InvalidArgument, `Content-Type "text/plain"`)
		f2("unknown encoding "+path, path, token, pb, "br", good, 415, codes.InvalidArgument, "Content-Encoding br")
		f2("corrupt gzip "+path, path, token, pb, "gzip", []byte("not gzip"), 400, codes.InvalidArgument, "gzip body")
		f2("oversize "+path, path, token, pb, "", big, 413, codes.ResourceExhausted, "TRIBUTARY_GATEWAY_MAX_BODY_BYTES")
		f2("oversize once unzipped "+path, path, token, pb, "gzip", gz(big), 413, codes.ResourceExhausted, "TRIBUTARY_GATEWAY_MAX_BODY_BYTES")
		f2("no token "+path, path, "", pb, "", good, 401, codes.Unauthenticated, "missing bearer token")
		f2("unknown token "+path, path, "not-a-known-token", pb, "", good, 403, codes.PermissionDenied, "unknown token")
	}
	f2("too many records", "/v1/logs", token, pb, "", protoBody(t, logsRequest(101, nil)), 413, codes.ResourceExhausted, "more than 100 records")
	if s := f.p.Stats(); s.Accepted != 0 {
		t.Fatalf("refused requests left records behind: %+v", s)
	}
}

// A bad record is rejected alone (OTLP partial success, naming the first problem); the others
// are accepted. JSON and gzip bodies are read like protobuf ones.
func TestOTLPPartialSuccess(t *testing.T) {
	f := newFixture(t, nil, nil)
	req := logsRequest(3, map[string]any{"ok": true})
	lrs := req.Logs().ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	lrs.At(1).Attributes().PutStr("huge", strings.Repeat("y", 20000)) // over MaxAttributeValueBytes (16384)
	lrs.At(2).SetTimestamp(pcommon.Timestamp(uint64(1) << 63))        // after 2106
	body, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	r := postOTLP(t, otlpURL(f, "/v1/logs"), token, "application/json", "gzip", gz(body))
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalJSON(r.raw); err != nil || r.status != 200 {
		t.Fatalf("HTTP %d %s (%v)", r.status, r.raw, err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedLogRecords() != 2 || !strings.Contains(ps.ErrorMessage(), "2 of 3 rejected, first: log record 1: ") ||
		!strings.Contains(ps.ErrorMessage(), "huge") {
		t.Fatalf("partial success %d %q", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
	if s := f.p.Stats(); s.Accepted != 1 {
		t.Fatalf("want the one good record accepted: %+v", s)
	}

	// A metric whose temporality is unspecified is rejected; a good one beside it is not.
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	bad := ms.AppendEmpty()
	bad.SetName("bad_sum")
	bad.SetEmptySum().SetIsMonotonic(true)
	bad.Sum().DataPoints().AppendEmpty().SetIntValue(1)
	g := ms.AppendEmpty()
	g.SetName("temperature")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(21.5)
	r = postOTLP(t, otlpURL(f, "/v1/metrics"), token, "application/x-protobuf", "", protoBody(t, pmetricotlp.NewExportRequestFromMetrics(md)))
	mresp := pmetricotlp.NewExportResponse()
	if err := mresp.UnmarshalProto(r.raw); err != nil || r.status != 200 || r.header.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("HTTP %d %q (%v)", r.status, r.raw, err)
	}
	if ps := mresp.PartialSuccess(); ps.RejectedDataPoints() != 1 || !strings.Contains(ps.ErrorMessage(), `sum "bad_sum": aggregation temporality unspecified`) {
		t.Fatalf("partial success %d %q", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	if s := f.p.Stats(); s.Accepted != 2 {
		t.Fatalf("want the gauge accepted: %+v", s)
	}
}

// A full producer buffer answers 503 with Retry-After (HTTP) and Unavailable with RetryInfo
// (gRPC): OTLP clients retry those.
func TestOTLPBufferFull(t *testing.T) {
	f := newFixture(t, nil, func(p *producer.Config, _ *gateway.Config) { p.MaxBufferedRecords = 2 })
	body := protoBody(t, logsRequest(2, nil))
	if r := postOTLP(t, otlpURL(f, "/v1/logs"), token, "application/x-protobuf", "", body); r.status != 200 {
		t.Fatalf("first request: HTTP %d %q", r.status, r.raw)
	}
	r := postOTLP(t, otlpURL(f, "/v1/logs"), token, "application/x-protobuf", "", body)
	if r.status != 503 || r.header.Get("Retry-After") == "" || codes.Code(r.st.Code) != codes.Unavailable || !strings.Contains(r.st.Message, "buffer full") {
		t.Fatalf("HTTP %d %v %v", r.status, r.header, r.st)
	}
	if s := f.p.Stats(); s.Accepted != 2 {
		t.Fatalf("the refused request left records behind: %+v", s)
	}
}

// OTLP/gRPC answers with the same codes: unknown token, a full buffer (with RetryInfo), and
// partial success.
func TestOTLPGRPCAnswers(t *testing.T) {
	f := newFixture(t, nil, func(p *producer.Config, _ *gateway.Config) { p.MaxBufferedRecords = 3 })
	addr := runGRPC(t, newGRPCGateway(t, f))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := plogotlp.NewGRPCClient(cc)
	ctx := context.Background()
	auth := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}

	_, err = client.Export(auth("not-a-known-token"), logsRequest(1, nil))
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unknown token: %v", err)
	}
	_, err = client.Export(ctx, logsRequest(1, nil))
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	req := logsRequest(2, nil)
	req.Logs().ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutStr("huge", strings.Repeat("y", 20000))
	resp, err := client.Export(auth(token), req)
	if err != nil || resp.PartialSuccess().RejectedLogRecords() != 1 {
		t.Fatalf("partial success: %v %v", err, resp.PartialSuccess().ErrorMessage())
	}
	_, err = client.Export(auth(token), logsRequest(3, nil)) // 1 + 3 > 3 buffered records
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || len(st.Details()) != 1 {
		t.Fatalf("buffer full: %v %v", st, st.Details())
	}
	if s := f.p.Stats(); s.Accepted != 1 {
		t.Fatalf("want only the good record of the partial request: %+v", s)
	}
}

// newGRPCGateway makes a second gateway on the fixture's producer (the fixture's own serves only
// HTTP through its handler).
func newGRPCGateway(t *testing.T, f *fixture) *gateway.Gateway {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Listen, cfg.GRPCListen, cfg.Tokens = "127.0.0.1:0", "127.0.0.1:0", map[string]string{token: "acme"}
	g, err := gateway.New(cfg, f.p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func runGRPC(t *testing.T, g *gateway.Gateway) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- g.RunGRPC(ctx, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	addr := <-ready
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatal(err)
	}
	return addr
}
