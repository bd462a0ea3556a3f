package query

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary/tributary/internal/observe"
)

// Server answers HTTP queries over the raw events and metrics tables. Handler is safe for concurrent
// use.
type Server struct {
	cfg  Config
	conn driver.Conn
	log  *slog.Logger

	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// rollupCells counts the cells answered from rollups by how their percentiles were found.
	rollupCells *prometheus.CounterVec
}

// New returns a server that queries through conn (which should log in as a read-only user).
func New(cfg Config, conn driver.Conn, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, conn: conn, log: log, reg: observe.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_query_requests_total", Help: "Query API requests by endpoint and HTTP status.",
		}, []string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tributary_query_request_seconds", Help: "Query API request time by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}, []string{"endpoint"}),
		rollupCells: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_query_rollup_cells_total",
			Help: "Aggregation cells answered from rollups: path=stored (one window row, its stored percentiles or no percentiles asked) or merged (sketches merged).",
		}, []string{"path"}),
	}
	s.reg.MustRegister(s.requests, s.latency, s.rollupCells)
	return s, nil
}

// Registry is the service's Prometheus registry, served on /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) instrument(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		s.requests.WithLabelValues(endpoint, strconv.Itoa(sw.status)).Inc()
		s.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	}
}

// Handler returns the HTTP API (tributary query --help lists it too; a test keeps the two equal):
//
//	GET /v1/events             type (repeatable or comma-separated), name, trace_id, span_id, start,
//	                           end, attr.<key>, limit, offset, order
//	GET /v1/events/counts      events per bucket and type
//	GET /v1/traces/{trace_id}  a trace's events in time order: limit (QUERY_MAX_LIMIT by default), offset
//	GET /v1/metrics            name, trace_id, aggregation_type, start, end, attr.<key>, limit, offset, order
//	GET /v1/aggregate          a metric's time series
//	GET /openapi.json          the OpenAPI 3 description
//	GET /healthz               the process is up
//	GET /readyz                ClickHouse answers
//	GET /metrics               Prometheus metrics
//	GET /ui/                   the explorer (events, traces, metric charts); GET / redirects there
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", s.instrument("events", s.authenticate(s.events)))
	mux.HandleFunc("GET /v1/events/counts", s.instrument("event_counts", s.authenticate(s.eventCounts)))
	mux.HandleFunc("GET /v1/traces/{trace_id}", s.instrument("trace", s.authenticate(s.trace)))
	mux.HandleFunc("GET /v1/metrics", s.instrument("metrics", s.authenticate(s.metrics)))
	mux.HandleFunc("GET /v1/aggregate", s.instrument("aggregate", s.authenticate(s.aggregate)))
	mux.Handle("GET /ui/", uiHandler())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	observe.Mount(mux, s.reg, map[string]observe.Check{"clickhouse": s.conn.Ping})
	return mux
}

// Run serves on Config.Listen until ctx ends, then shuts down, giving requests in flight up to
// 10 s. ready, if not nil, receives the bound address once the listener is open.
func (s *Server) Run(ctx context.Context, ready chan<- string) error {
	err := observe.Serve(ctx, s.cfg.Listen, s.Handler(), ready, func(srv *http.Server) {
		srv.WriteTimeout = s.cfg.Timeout + 30*time.Second
	})
	if err != nil {
		return fmt.Errorf("query service: %w", err)
	}
	return nil
}

// errorBody is every error answer: the message, the parameter at fault for a 400, and for a 500
// the id under which the service logged the error (the body never carries SQL or data).
type errorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
	ErrorID   string `json:"error_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *ParamError
	var oe *OverflowError
	switch {
	case errors.As(err, &pe):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: pe.Error(), Parameter: pe.Param})
	case errors.As(err, &oe):
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: oe.Error(), Parameter: "aggregates"})
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		writeJSON(w, http.StatusGatewayTimeout, errorBody{Error: fmt.Sprintf("query exceeded %v; narrow the time range or filters", s.cfg.Timeout)})
	default:
		// The error's text may hold SQL and stored values: it goes to the log only, under an id the
		// client can quote.
		id := errorID()
		s.log.Error("query failed", "error_id", id, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{
			Error: "internal error; the query service logged it under error_id " + id, ErrorID: id})
	}
}

// errorID is a random id for one logged error.
func errorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// isTimeout reports ClickHouse's TIMEOUT_EXCEEDED (code 159).
func isTimeout(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == 159
}

// queryCtx bounds a query in the service and in ClickHouse.
func (s *Server) queryCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+2*time.Second)
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(s.cfg.Timeout.Seconds()),
	})), cancel
}

// page describes a list answer. NextOffset is set when more rows follow the page (the query read
// one row past it), null on the last page.
type page struct {
	Count      int  `json:"count"`
	Limit      int  `json:"limit"`
	Offset     int  `json:"offset"`
	NextOffset *int `json:"next_offset"`
}

func newPage(n int, f Filter, more bool) page {
	p := page{Count: n, Limit: f.Limit, Offset: f.Offset}
	if more {
		next := f.Offset + f.Limit
		p.NextOffset = &next
	}
	return p
}
