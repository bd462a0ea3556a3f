// Package gateway is the HTTP ingest gateway for fleet hosts that do not embed the Go SDK: they POST
// batches of events and metrics as JSON, which the gateway validates and publishes through a
// producer.Client.
//
//	POST /v1/ingest   Authorization: Bearer <token>
//	                  Content-Type: application/json (an object {"events": [...], "metrics": [...]}
//	                  or an array of records with "kind": "event" | "metric") or
//	                  application/x-ndjson (one record with "kind" per line);
//	                  Content-Encoding: gzip allowed. ?wait=ack answers after Kafka acknowledged.
//
// A record has the fields of the Events and Metrics Reference (event_id, trace_id, span_id, type,
// name, timestamp, attributes; metric_id, trace_id, name, value, unit, aggregation_type, timestamp,
// attributes) plus service and host. Missing ids and timestamps are filled in. A record sent with an
// id but no timestamp gets the same timestamp each time it is sent, so a retried request is stored
// once: a UUIDv7 id's own time (when within a day of now), or else the time this gateway process
// first saw the id, remembered for GATEWAY_TIMESTAMP_CACHE_TTL (10 minutes) among at most
// GATEWAY_TIMESTAMP_CACHE_ENTRIES (100,000) ids, oldest dropped first. That is the horizon: the
// TTL, or less while more than ENTRIES new ids arrive within a TTL
// (tributary_gateway_timestamp_cache_horizon_seconds says which). Beyond it (a re-send after the
// horizon, to another gateway process or after a restart) the re-send gets a new timestamp and is
// stored twice raw (the rollups still count it once within ROLLUP_DEDUPE_IDS' horizon); it shows
// as a cache_miss, which cannot tell it from a first send. Send timestamps, or UUIDv7 ids, to be
// safe everywhere. A record without an id gets a new id each time, so a re-send of it is always
// stored twice (counted as source="no_id"). The tenant comes from the token; a record that names
// one is refused.
//
// A request is all or nothing: every record is validated first, then buffer room is taken for all
// of them. Answers:
//
//	202 {"accepted": n}: every record is in the producer's buffer, which retries until Kafka
//	    acknowledges it (with ?wait=ack: Kafka has acknowledged it). Records of sampled-out traces or
//	    switched-off kinds are counted as accepted and dropped, as the SDK does.
//	400 {"error", "index", "field"}: the first bad record (its position in the request) and field;
//	    nothing was accepted.
//	401 no or malformed bearer token; 403 unknown token.
//	413 body over GATEWAY_MAX_BODY_BYTES or more than GATEWAY_MAX_RECORDS records.
//	415 a Content-Type or Content-Encoding the gateway does not read.
//	503 + Retry-After: the producer's buffer stayed full for GATEWAY_BUFFER_WAIT; nothing was
//	    accepted, retry later.
//	503 + Retry-After: GATEWAY_MAX_CONCURRENT_REQUESTS requests are being served, or the bodies
//	    in flight would exceed GATEWAY_MAX_INFLIGHT_BYTES; the message names the setting to raise.
//	408 the body did not arrive within GATEWAY_BODY_TIMEOUT; the connection is closed.
//	413 {"error", "index"}: a record whose encoding is over TRIBUTARY_MAX_RECORD_BYTES (Kafka would
//	    never take it); the error names its size and the limit. Nothing was accepted.
//	502 ?wait=ack and Kafka finally refused some of this request's records (for example
//	    MESSAGE_TOO_LARGE from a topic's max.message.bytes); the error names how many and why.
//	    Only this request's records count: another request's failure never shows here.
//	504 ?wait=ack and Kafka did not acknowledge this request's records within
//	    GATEWAY_FLUSH_TIMEOUT (the records were accepted and will still be delivered).
//
// OTLP: POST /v1/logs and POST /v1/metrics (OTLP/HTTP, protobuf or JSON, gzip allowed) and the
// OTLP/gRPC logs and metrics services on GATEWAY_OTLP_GRPC_LISTEN take OpenTelemetry's protocol
// with the same tokens and limits, answering as the OTLP specification asks (partial success for
// refused records). docs/otlp.md maps every field; cumulative metric streams are turned into
// increases per gateway process (see cumulative).
//
// Memory: request bodies held at once are bounded by GATEWAY_MAX_INFLIGHT_BYTES (decompressed, 64
// MiB by default) and their number by GATEWAY_MAX_CONCURRENT_REQUESTS (16); each body is held with
// its parsed records (a few times its size), and accepted records then wait in the producer's
// buffer (TRIBUTARY_MAX_BUFFERED_BYTES, 64 MiB). docs/operations.md states the bound (~500 MiB RSS
// measured with the defaults under 64 concurrent 7.7 MB bodies).
//
// Metrics: tributary_gateway_requests_total{status}, _records_accepted_total,
// _overload_total{limit: concurrent_requests, inflight_bytes}, _inflight_requests,
// _inflight_bytes, _timestamps_filled_total{source: uuidv7, cache_hit, cache_miss, no_id},
// _timestamp_cache_evictions_total, _timestamp_cache_entries, _timestamp_cache_horizon_seconds,
// _otlp_items_total{signal, outcome}, _otlp_cumulative_streams, _otlp_cumulative_evictions_total,
// _otlp_cumulative_baselines_total, _otlp_cumulative_resets_total, plus the producer's (see
// producer.Client.Register).
package gateway

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary/tributary/internal/observe"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// Gateway serves the ingest API. Handler is safe for concurrent use.
type Gateway struct {
	cfg      Config
	p        *producer.Client
	log      *slog.Logger
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	records  prometheus.Counter
	overload *prometheus.CounterVec
	limits   *limits
	stamps   *stamps

	cumulative *cumulative            // OTLP cumulative streams' last points
	otlpItems  *prometheus.CounterVec // OTLP items by signal and outcome
}

// New returns a gateway publishing through p. reg, if not nil, is the registry /metrics serves (so
// the caller can add p's franz-go metrics to it); nil makes a new one.
func New(cfg Config, p *producer.Client, log *slog.Logger, reg ...*prometheus.Registry) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := observe.NewRegistry()
	if len(reg) > 0 && reg[0] != nil {
		r = reg[0]
	}
	g := &Gateway{cfg: cfg, p: p, log: log, reg: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_gateway_requests_total", Help: "Ingest requests by HTTP status.",
		}, []string{"status"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_gateway_records_accepted_total", Help: "Records accepted by the gateway.",
		}),
		overload: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_gateway_overload_total", Help: "Requests refused with 503 by a limit: concurrent_requests or inflight_bytes.",
		}, []string{"limit"}),
		limits:     newLimits(cfg),
		stamps:     newStamps(cfg.TimestampCacheTTL, cfg.TimestampCacheEntries),
		cumulative: newCumulative(cfg.CumulativeStreams), otlpItems: newOTLPItems(),
	}
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tributary_gateway_inflight_requests", Help: "Ingest requests being served.",
	}, func() float64 { return float64(len(g.limits.slots)) })
	inflightBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tributary_gateway_inflight_bytes", Help: "Request body bytes held by the requests being served.",
	}, func() float64 { return float64(g.limits.bytes.Load()) })
	g.reg.MustRegister(g.requests, g.records, g.overload, inflight, inflightBytes)
	g.reg.MustRegister(g.stamps.collectors()...)
	g.reg.MustRegister(append(g.cumulative.collectors(), g.otlpItems)...)
	if err := p.Register(g.reg); err != nil {
		return nil, err
	}
	return g, nil
}

// Handler returns the ingest API plus /metrics, /healthz and /readyz.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ingest", g.ingest)
	mux.HandleFunc("POST /v1/logs", g.otlpHTTP("logs", func() otlpExport { return &logsExport{} }))
	mux.HandleFunc("POST /v1/metrics", g.otlpHTTP("metrics", func() otlpExport { return &metricsExport{} }))
	observe.Mount(mux, g.reg, map[string]observe.Check{"kafka": g.p.Ping})
	return mux
}

// Run serves on Config.Listen until ctx ends, and OTLP/gRPC (RunGRPC) when it is on; if either
// fails, both stop. ready, if not nil, receives the bound HTTP address.
func (g *Gateway) Run(ctx context.Context, ready chan<- string) error {
	if !g.cfg.grpcOn() {
		return g.runHTTP(ctx, ready)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- g.RunGRPC(ctx, nil)
		cancel()
	}()
	err := g.runHTTP(ctx, ready)
	cancel()
	return errors.Join(err, <-errc)
}

func (g *Gateway) runHTTP(ctx context.Context, ready chan<- string) error {
	return observe.Serve(ctx, g.cfg.Listen, g.Handler(), ready, func(s *http.Server) {
		s.ReadHeaderTimeout = g.cfg.ReadHeaderTimeout
		s.IdleTimeout = 2 * time.Minute
	})
}

type answer struct {
	Accepted *int   `json:"accepted,omitempty"`
	Error    string `json:"error,omitempty"`
	Index    *int   `json:"index,omitempty"`
	Field    string `json:"field,omitempty"`
}

func (g *Gateway) reply(w http.ResponseWriter, status int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
	g.requests.WithLabelValues(strconv.Itoa(status)).Inc()
}

func (g *Gateway) tenant(r *http.Request) (string, int, string) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return "", http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)"
	}
	for known, tenant := range g.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
			return tenant, 0, ""
		}
	}
	return "", http.StatusForbidden, "unknown token"
}

func (g *Gateway) ingest(w http.ResponseWriter, r *http.Request) {
	tenant, status, msg := g.tenant(r)
	if status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tributary"`)
		}
		g.reply(w, status, answer{Error: msg})
		return
	}
	// The body must arrive within BodyTimeout (also when refused: the server discards the rest of
	// it until then); the deadline is lifted once it is read, so that a ?wait=ack request is
	// bounded by FlushTimeout alone.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout))
	leave, err := g.limits.enter()
	if err != nil {
		g.fail(w, err)
		return
	}
	defer leave()
	req, release, err := g.readRequest(w, r)
	defer release()
	if err != nil {
		g.fail(w, err) // the deadline stays: the server discards the rest of a body only until then
		return
	}
	_ = rc.SetReadDeadline(time.Time{})
	g.stamp(req, tenant)
	g.publish(w, r, req)
}

// httpError is an answer decided before any record was looked at.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// readRequest reads and parses the body within its limits. release returns the body's bytes to
// the in-flight budget; call it (also on error) once the request is done with.
func (g *Gateway) readRequest(w http.ResponseWriter, r *http.Request) (req *request, release func(), err error) {
	release = func() {}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ndjson := ct == "application/x-ndjson" || ct == "application/ndjson"
	if !ndjson && ct != "application/json" && ct != "" {
		return nil, release, &httpError{http.StatusUnsupportedMediaType, "Content-Type " + ct + ": want application/json or application/x-ndjson"}
	}
	body, closeBody, err := g.openBody(w, r)
	if err != nil {
		return nil, release, err
	}
	defer closeBody()
	req, err = parseBody(body, ndjson, g.cfg.MaxRecords)
	return req, body.release, err
}

// openBody opens r's body as its Content-Encoding says (gzip or none), limited to MaxBodyBytes
// both as sent and decompressed, and taking every byte read from the in-flight budget (release
// gives them back). closeBody closes the decompressor once the body is read.
func (g *Gateway) openBody(w http.ResponseWriter, r *http.Request) (body *countedBody, closeBody func(), err error) {
	raw := io.Reader(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	closeBody = func() {}
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, nil, &httpError{http.StatusBadRequest, "gzip body: " + err.Error()}
		}
		closeBody = func() { _ = zr.Close() }
		raw = &limitedReader{r: zr, left: g.cfg.MaxBodyBytes}
	default:
		return nil, nil, &httpError{http.StatusUnsupportedMediaType, "Content-Encoding " + enc + ": want gzip or none"}
	}
	return &countedBody{r: raw, l: g.limits}, closeBody, nil
}

// stamp sets the token's tenant on every record, and the timestamp of a record sent with an id
// and without one (see stamps); one without either is counted and left to the producer.
func (g *Gateway) stamp(req *request, tenant string) {
	for i := range req.events {
		e := &req.events[i]
		e.Tenant = tenant
		if e.Timestamp.IsZero() {
			e.Timestamp = g.stamps.timestamp(tenant, "event", e.EventID)
		}
	}
	for i := range req.metrics {
		m := &req.metrics[i]
		m.Tenant = tenant
		if m.Timestamp.IsZero() {
			m.Timestamp = g.stamps.timestamp(tenant, "metric", m.MetricID)
		}
	}
}

// publish hands the records to the producer and answers; with ?wait=ack, once Kafka answered them.
func (g *Gateway) publish(w http.ResponseWriter, r *http.Request, req *request) {
	waitAck := r.URL.Query().Get("wait") == "ack"
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.BufferWait)
	var d *producer.Delivery
	var err error
	if waitAck {
		d, err = g.p.RecordBatchDelivery(ctx, req.events, req.metrics)
	} else {
		_, err = g.p.RecordBatch(ctx, req.events, req.metrics)
	}
	cancel()
	if err != nil {
		var be *producer.BatchError
		if errors.As(err, &be) {
			at := req.eventAt
			if be.Kind == "metric" {
				at = req.metricAt
			}
			err = &RecordError{Index: at[be.Index], Field: fieldOf(be.Err), Err: be.Err}
		}
		g.fail(w, err)
		return
	}
	g.records.Add(float64(req.size()))
	accepted := req.size() // records of sampled-out traces count as accepted, as with the SDK
	if waitAck {
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.FlushTimeout)
		defer cancel()
		var de *producer.DeliveryError
		switch err := d.Wait(ctx); {
		case errors.As(err, &de):
			g.reply(w, http.StatusBadGateway, answer{Accepted: &accepted, Error: "accepted, then refused by Kafka: " + err.Error()})
			return
		case err != nil:
			g.reply(w, http.StatusGatewayTimeout, answer{Accepted: &accepted, Error: "accepted, not yet acknowledged by Kafka: " + err.Error()})
			return
		}
	}
	g.reply(w, http.StatusAccepted, answer{Accepted: &accepted})
}

func (g *Gateway) fail(w http.ResponseWriter, err error) {
	var re *RecordError
	var mbe *http.MaxBytesError
	var ov *overload
	var he *httpError
	switch {
	case errors.As(err, &he):
		g.reply(w, he.status, answer{Error: he.msg})
	case errors.As(err, &mbe), errors.Is(err, errBodyTooLarge):
		g.reply(w, http.StatusRequestEntityTooLarge, answer{Error: "body over " + strconv.FormatInt(g.cfg.MaxBodyBytes, 10) + " bytes"})
	case errors.Is(err, errTooMany):
		g.reply(w, http.StatusRequestEntityTooLarge, answer{Error: err.Error()})
	case errors.As(err, &re) && errors.Is(err, producer.ErrRecordTooLarge):
		idx := re.Index
		g.reply(w, http.StatusRequestEntityTooLarge, answer{Error: fmt.Sprintf("record %d: %v; the limit is the gateway's TRIBUTARY_MAX_RECORD_BYTES", idx, re.Err), Index: &idx})
	case errors.As(err, &ov):
		g.overload.WithLabelValues(ov.limit).Inc()
		w.Header().Set("Retry-After", "1")
		g.reply(w, http.StatusServiceUnavailable, answer{Error: ov.msg})
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		g.reply(w, http.StatusRequestTimeout, answer{Error: "body not received within " + g.cfg.BodyTimeout.String() + " (TRIBUTARY_GATEWAY_BODY_TIMEOUT)"})
	case errors.Is(err, producer.ErrBufferFull):
		w.Header().Set("Retry-After", "1")
		g.reply(w, http.StatusServiceUnavailable, answer{Error: "ingest buffer full; nothing was accepted, retry later"})
	case errors.Is(err, producer.ErrClosed):
		w.Header().Set("Retry-After", "5")
		g.reply(w, http.StatusServiceUnavailable, answer{Error: "gateway shutting down; retry"})
	case errors.As(err, &re):
		idx := re.Index
		g.reply(w, http.StatusBadRequest, answer{Error: re.Error(), Index: &idx, Field: re.Field})
	default:
		g.reply(w, http.StatusBadRequest, answer{Error: err.Error()})
	}
}

// fieldOf names the field a validation error is about ("name: empty field" -> "name").
func fieldOf(err error) string {
	msg := err.Error()
	for _, p := range []string{"record event: ", "record metric: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	if errors.Is(err, schemas.ErrBadAttribute) || errors.Is(err, producer.ErrAttributeLimit) {
		return "attributes"
	}
	if f, _, ok := strings.Cut(msg, ":"); ok && !strings.Contains(f, " ") {
		return f
	}
	return ""
}

var errBodyTooLarge = errors.New("body too large")

// limitedReader bounds a decompressed body: a body of exactly left bytes reads to its end.
type limitedReader struct {
	r    io.Reader
	left int64
	err  error // the end (or failure) seen, returned from then on
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.left <= 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left <= 0 && err == nil {
		var one [1]byte
		m, perr := l.r.Read(one[:])
		if m > 0 {
			return n, errBodyTooLarge
		}
		err = perr // io.EOF: the body ends at the limit
	}
	l.err = err
	return n, err
}
