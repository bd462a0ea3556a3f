package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
)

// blockedBody hands out data, then signals that it was asked for more and blocks until released.
type blockedBody struct {
	data    string
	waiting chan struct{} // closed when the handler has read data and asks for more
	release chan struct{}
}

func newBlockedBody(data string) *blockedBody {
	return &blockedBody{data: data, waiting: make(chan struct{}), release: make(chan struct{})}
}

func (b *blockedBody) Read(p []byte) (int, error) {
	if b.data != "" {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	select {
	case <-b.waiting:
	default:
		close(b.waiting)
	}
	<-b.release
	return 0, io.EOF
}

func serve(h http.Handler, body io.Reader) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/v1/ingest", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		done <- w
	}()
	return done
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("gave up waiting: %s", what)
	}
}

func metricsText(t *testing.T, h http.Handler) string {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}

// More concurrent requests than the cap: the excess get 503 with Retry-After naming the setting, at
// once; the blocked ones finish normally and free their slots.
func TestConcurrentRequestCap(t *testing.T) {
	f := newFixture(t, nil, func(_ *producer.Config, g *gateway.Config) { g.MaxConcurrentRequests = 2 })
	const good = `[{"kind":"event","type":"t","name":"n"}]`
	var held []*blockedBody
	var answers []<-chan *httptest.ResponseRecorder
	for range 2 {
		b := newBlockedBody(good)
		held = append(held, b)
		answers = append(answers, serve(f.h, b))
		waitFor(t, "a request to hold its slot", b.waiting)
	}
	for range 3 {
		w := <-serve(f.h, strings.NewReader(good))
		if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "TRIBUTARY_GATEWAY_MAX_CONCURRENT_REQUESTS") {
			t.Fatalf("request over the cap: %d %q %s, want 503 with Retry-After naming the setting", w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
	if m := metricsText(t, f.h); !strings.Contains(m, `tributary_gateway_overload_total{limit="concurrent_requests"} 3`) ||
		!strings.Contains(m, "tributary_gateway_inflight_requests 2") {
		t.Fatalf("/metrics lacks the overload count or the in-flight gauge:\n%s", m)
	}
	for i, b := range held {
		close(b.release)
		if w := <-answers[i]; w.Code != 202 {
			t.Fatalf("held request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := <-serve(f.h, strings.NewReader(good)); w.Code != 202 {
		t.Fatalf("after the held requests finished: %d %s", w.Code, w.Body)
	}
}

// Body bytes in flight are bounded across requests: while one request holds most of the budget,
// another that needs more than what is left gets 503 naming the setting.
func TestInflightBytesCap(t *testing.T) {
	f := newFixture(t, nil, func(_ *producer.Config, g *gateway.Config) { g.MaxBodyBytes, g.MaxInflightBytes = 2048, 2048 })
	big := `[{"kind":"event","type":"t","name":"` + strings.Repeat("a", 1500) + `"}]`
	b := newBlockedBody(big)
	first := serve(f.h, b)
	waitFor(t, "the first request to read its body", b.waiting)
	second := `[{"kind":"event","type":"t","name":"` + strings.Repeat("b", 1000) + `"}]`
	w := <-serve(f.h, strings.NewReader(second))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "TRIBUTARY_GATEWAY_MAX_INFLIGHT_BYTES") {
		t.Fatalf("request over the byte budget: %d %s, want 503 naming the setting", w.Code, w.Body)
	}
	close(b.release)
	if w := <-first; w.Code != 202 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	if w := <-serve(f.h, strings.NewReader(second)); w.Code != 202 {
		t.Fatalf("second request once the budget is back: %d %s", w.Code, w.Body)
	}
	if m := metricsText(t, f.h); !strings.Contains(m, `tributary_gateway_overload_total{limit="inflight_bytes"} 1`) ||
		!strings.Contains(m, "tributary_gateway_inflight_bytes 0") {
		t.Fatalf("/metrics:\n%s", m)
	}
}

// A body that trickles in slower than BodyTimeout is cut off: 408, and the connection is closed.
func TestSlowBodyIsCutOff(t *testing.T) {
	f := newFixture(t, nil, func(_ *producer.Config, g *gateway.Config) { g.BodyTimeout = 300 * time.Millisecond })
	addr := strings.TrimPrefix(strings.TrimSuffix(f.url, "/v1/ingest"), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"kind\":")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a guard, not the assertion
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(body), "TRIBUTARY_GATEWAY_BODY_TIMEOUT") {
		t.Fatalf("stalled body: %d %s, want 408 naming the setting", resp.StatusCode, body)
	}
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection after a cut-off body: %v, want it closed", err)
	}
}
