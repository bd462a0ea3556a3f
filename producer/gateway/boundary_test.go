package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
)

// Each request limit at its value is accepted, and one past it is refused with the documented
// answer (docs/operations.md, "Limits").
func TestRequestLimitsAtTheirValueAndOnePast(t *testing.T) {
	f := newFixture(t, nil, nil) // MaxBodyBytes 64 KiB, MaxRecords 100
	js := "application/json"
	pad := func(body string, size int) []byte {
		return append([]byte(body), bytes.Repeat([]byte(" "), size-len(body))...)
	}
	for _, c := range []struct {
		name     string
		encoding string
		body     []byte
		status   int
		msg      string
	}{
		{"body of MaxBodyBytes", "", pad(goodObject, 64<<10), 202, ""},
		{"body one byte over", "", pad(goodObject, 64<<10+1), 413, "body over 65536 bytes"},
		{"gzip body of MaxBodyBytes decompressed", "gzip", gz(pad(goodObject, 64<<10)), 202, ""},
		{"gzip body one byte over decompressed", "gzip", gz(pad(goodObject, 64<<10+1)), 413, "body over 65536 bytes"},
		{"MaxRecords records", "", records(100), 202, ""},
		{"one record more", "", records(101), 413, "more than 100 in one request"},
	} {
		r := post(t, f.url, token, js, c.encoding, c.body)
		if msg, _ := r.body["error"].(string); r.status != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: HTTP %d %v, want %d %q", c.name, r.status, r.body, c.status, c.msg)
		}
	}
}

func records(n int) []byte {
	return []byte(`[` + strings.TrimSuffix(strings.Repeat(`{"kind":"event","type":"t","name":"n"},`, n), ",") + `]`)
}

// ?wait=ack past GATEWAY_FLUSH_TIMEOUT: 504, and the records count as accepted (they stay in the
// producer's buffer and are still delivered).
func TestWaitAckPastFlushTimeoutIs504(t *testing.T) {
	f := newFixture(t, nil, func(_ *producer.Config, g *gateway.Config) { g.FlushTimeout = 200 * time.Millisecond })
	r := post(t, f.url+"?wait=ack", token, "application/json", "", []byte(goodObject))
	if msg, _ := r.body["error"].(string); r.status != 504 || r.body["accepted"] != 2.0 || !strings.Contains(msg, "not yet acknowledged") {
		t.Fatalf("no broker to acknowledge: HTTP %d %v, want 504 with accepted 2", r.status, r.body)
	}
	if s := f.p.Stats(); s.Accepted != 2 || s.Buffered != 2 {
		t.Fatalf("the records of a 504 are not waiting for delivery: %+v", s)
	}
}

// Headers slower than GATEWAY_READ_HEADER_TIMEOUT: the connection is closed without an answer
// (Go's http.Server); headers over Go's 1 MiB default: 431.
func TestHeaderLimits(t *testing.T) {
	pcfg := producer.DefaultConfig()
	pcfg.Kafka = kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "gw", EventsTopic: "e", MetricsTopic: "m", TopicPartitions: 1, TopicReplication: 1}
	p, err := producer.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = p.Close(ctx)
	}()
	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.Tokens, gcfg.ReadHeaderTimeout = "127.0.0.1:0", map[string]string{token: "acme"}, 300*time.Millisecond
	g, err := gateway.New(gcfg, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- g.Run(ctx, ready) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := <-ready

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bea"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a guard, not the assertion
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("stalled headers: read %d bytes, %v; want the connection closed without an answer", n, err)
	}

	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	go func() {
		_, _ = io.WriteString(conn2, "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 1<<20+8192)+"\r\n\r\n")
	}()
	_ = conn2.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers over 1 MiB: %v %v, want 431", resp, err)
	}
}
