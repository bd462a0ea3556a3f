// Package loadgen simulates a fleet of hosts sending events and metrics, through the SDK or the
// HTTP gateway, at a given rate, with live progress and a summary.
package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// Config configures a run (TRIBUTARY_LOADGEN_*, read by tributary loadgen).
type Config struct {
	Hosts    int           `envconfig:"LOADGEN_HOSTS" default:"50"`
	Rate     int           `envconfig:"LOADGEN_RATE" default:"5000"` // records per second, all hosts together
	Duration time.Duration `envconfig:"LOADGEN_DURATION" default:"30s"`
	// Target is sdk (publish with the Go SDK to TRIBUTARY_KAFKA_*) or gateway (POST to GatewayURL).
	Target       string `envconfig:"LOADGEN_TARGET" default:"sdk"`
	GatewayURL   string `envconfig:"LOADGEN_GATEWAY_URL" default:"http://127.0.0.1:8090/v1/ingest"`
	GatewayToken string `envconfig:"LOADGEN_GATEWAY_TOKEN" default:""`
	Batch        int    `envconfig:"LOADGEN_BATCH" default:"100"` // records per send
	Seed         uint64 `envconfig:"LOADGEN_SEED" default:"1"`
	// AttrScale sends each record's attributes this many times over (copies under <key>_2 ...
	// <key>_N with the same values): N times the attribute bytes, the same series.
	AttrScale int `envconfig:"LOADGEN_ATTR_SCALE" default:"1"`
}

// MaxAttrScale bounds AttrScale: 16 copies keep the largest record (an event of 5 attributes)
// far under every record limit.
const MaxAttrScale = 16

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	var errs []error
	if c.Hosts < 1 || c.Rate < 1 || c.Batch < 1 || c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("loadgen hosts %d, rate %d, batch %d, duration %v: all must be positive", c.Hosts, c.Rate, c.Batch, c.Duration))
	}
	if c.AttrScale < 1 || c.AttrScale > MaxAttrScale {
		errs = append(errs, fmt.Errorf("loadgen attr scale %d: must be 1 to %d (TRIBUTARY_LOADGEN_ATTR_SCALE)", c.AttrScale, MaxAttrScale))
	}
	if c.Target != "sdk" && c.Target != "gateway" {
		errs = append(errs, fmt.Errorf("loadgen target %q: want sdk or gateway", c.Target))
	}
	if c.Target == "gateway" && c.GatewayToken == "" {
		errs = append(errs, errors.New("loadgen gateway token: empty (TRIBUTARY_LOADGEN_GATEWAY_TOKEN)"))
	}
	return errors.Join(errs...)
}

// Sink sends one batch.
type Sink interface {
	Send(ctx context.Context, events []schemas.Event, metrics []schemas.Metric) error
}

// SDKSink sends through a producer.Client.
type SDKSink struct{ Client *producer.Client }

// Send records the batch all or nothing.
func (s SDKSink) Send(ctx context.Context, events []schemas.Event, metrics []schemas.Metric) error {
	_, err := s.Client.RecordBatch(ctx, events, metrics)
	return err
}

// GatewaySink posts gzipped JSON to the gateway.
type GatewaySink struct {
	URL, Token string
	HTTP       *http.Client
}

// Send posts the batch and fails on any answer but 202.
func (s GatewaySink) Send(ctx context.Context, events []schemas.Event, metrics []schemas.Metric) error {
	var raw bytes.Buffer
	zw := gzip.NewWriter(&raw)
	enc := json.NewEncoder(zw)
	body := struct {
		Events  []map[string]any `json:"events"`
		Metrics []map[string]any `json:"metrics"`
	}{}
	for _, e := range events {
		body.Events = append(body.Events, map[string]any{"type": e.Type, "name": e.Name, "trace_id": e.TraceID,
			"timestamp": e.Timestamp.Format(time.RFC3339Nano), "attributes": json.RawMessage(schemas.AppendAttributesJSON(nil, e.Attributes)),
			"service": e.Service, "host": e.Host})
	}
	for _, m := range metrics {
		body.Metrics = append(body.Metrics, map[string]any{"name": m.Name, "value": m.Value, "unit": m.Unit, "aggregation_type": m.AggregationType,
			"timestamp": m.Timestamp.Format(time.RFC3339Nano), "attributes": json.RawMessage(schemas.AppendAttributesJSON(nil, m.Attributes)),
			"service": m.Service, "host": m.Host})
	}
	if err := enc.Encode(body); err != nil {
		return err
	}
	_ = zw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, &raw)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("gateway answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// Fleet makes realistic records: each host runs graphs of nodes and reports resource gauges,
// request counters and latency histograms. Attribute cardinality: host (Hosts), node_id (20),
// endpoint (16), status (4), region (4).
type Fleet struct {
	hosts []string
	rng   *rand.Rand
	seq   int
	scale int // attribute copies (Config.AttrScale); 0 or 1: none
}

// WithAttrScale makes every record carry its attributes n times over (Config.AttrScale).
func (f *Fleet) WithAttrScale(n int) *Fleet {
	f.scale = n
	return f
}

// scaled adds the copies of attrs under <key>_2 ... <key>_<scale>.
func (f *Fleet) scaled(attrs map[string]any) map[string]any {
	if f.scale <= 1 {
		return attrs
	}
	out := make(map[string]any, len(attrs)*f.scale)
	for k, v := range attrs {
		out[k] = v
		for i := 2; i <= f.scale; i++ {
			out[k+"_"+strconv.Itoa(i)] = v
		}
	}
	return out
}

// NewFleet returns a fleet of n hosts.
func NewFleet(n int, seed uint64) *Fleet {
	f := &Fleet{rng: rand.New(rand.NewPCG(seed, 0x7ab))}
	for i := range n {
		f.hosts = append(f.hosts, fmt.Sprintf("host-%04d", i))
	}
	return f
}

var (
	endpoints = []string{"/api/process", "/api/query", "/api/ingest", "/api/users", "/api/orders", "/api/search", "/api/login", "/api/logout",
		"/api/cart", "/api/pay", "/api/ship", "/api/track", "/api/admin", "/api/report", "/api/export", "/api/health"}
	regions    = []string{"eu-west", "eu-north", "us-east", "ap-south"}
	eventTypes = []string{producer.EventNodeStarted, producer.EventNodeFinished, producer.EventNodeFinished, producer.EventNodeFailed}
	statuses   = []int{200, 200, 404, 500}
	nodes      = func() []string {
		out := make([]string, 20)
		for i := range out {
			out[i] = fmt.Sprintf("node_%02d", i)
		}
		return out
	}()
)

// Batch returns n records, about a quarter events and the rest metrics, stamped now.
func (f *Fleet) Batch(n int, now time.Time) ([]schemas.Event, []schemas.Metric) {
	es := make([]schemas.Event, 0, n/3)
	ms := make([]schemas.Metric, 0, n)
	for range n {
		e, m := f.next(8, 0, now)
		if e != nil {
			es = append(es, *e)
		} else {
			ms = append(ms, *m)
		}
	}
	return es, ms
}

// Event returns one event of the fleet's mix (node lifecycle events), stamped at ts.
func (f *Fleet) Event(ts time.Time) schemas.Event {
	e, _ := f.next(2, 0, ts)
	return *e
}

// Metric returns one metric point of the fleet's mix (a third node durations, a sixth request
// counters, a sixth request durations, a third CPU gauges), stamped at ts.
func (f *Fleet) Metric(ts time.Time) schemas.Metric {
	_, m := f.next(6, 2, ts)
	return *m
}

// next makes one record of kind base+rand(kinds): kinds 0-1 are events, 2-3 node durations, 4
// request counters, 5 request durations (a histogram by host), 6-7 CPU gauges.
func (f *Fleet) next(kinds, base int, now time.Time) (*schemas.Event, *schemas.Metric) {
	e, m := f.record(kinds, base, now)
	if e != nil {
		e.Attributes = f.scaled(e.Attributes)
	} else {
		m.Attributes = f.scaled(m.Attributes)
	}
	return e, m
}

// record is next without the attribute copies.
func (f *Fleet) record(kinds, base int, now time.Time) (*schemas.Event, *schemas.Metric) {
	f.seq++
	host := f.hosts[f.rng.IntN(len(f.hosts))]
	node := nodes[f.rng.IntN(len(nodes))]
	region := regions[len(host)%len(regions)+f.rng.IntN(1)]
	trace := host + "-" + strconv.Itoa(f.seq/8)
	src := schemas.Source{Service: "fleet", Host: host}
	switch k := base + f.rng.IntN(kinds); {
	case k < 2:
		typ := eventTypes[f.rng.IntN(len(eventTypes))]
		attrs := map[string]any{"node_id": node, "node_type": "TransformNode", "region": region, "execution_count": f.seq % 1000}
		if typ == producer.EventNodeFailed {
			attrs["error"] = "timeout after 30s"
		}
		return &schemas.Event{TraceID: trace, Type: typ, Name: node + " " + typ, Timestamp: now, Attributes: attrs, Source: src}, nil
	case k < 4:
		return nil, &schemas.Metric{TraceID: trace, Name: producer.MetricNodeDuration, Value: 0.001 + f.rng.ExpFloat64()*0.05,
			Unit: "seconds", AggregationType: schemas.Histogram, Timestamp: now, Attributes: map[string]any{"node_id": node, "region": region}, Source: src}
	case k == 5:
		return nil, &schemas.Metric{Name: "http_request_duration_seconds", Value: 0.002 + f.rng.ExpFloat64()*0.03, Unit: "seconds",
			AggregationType: schemas.Histogram, Timestamp: now, Attributes: map[string]any{"host": host, "region": region}, Source: src}
	case k < 6:
		return nil, &schemas.Metric{Name: "http_requests_total", Value: 1, Unit: "count", AggregationType: schemas.Counter, Timestamp: now,
			Attributes: map[string]any{"endpoint": endpoints[f.rng.IntN(len(endpoints))], "status": statuses[f.rng.IntN(len(statuses))], "host": host},
			Source:     src}
	default:
		return nil, &schemas.Metric{Name: "cpu_percent", Value: 5 + f.rng.Float64()*90, Unit: "percent", AggregationType: schemas.Gauge,
			Timestamp: now, Attributes: map[string]any{"host": host, "region": region}, Source: src}
	}
}

// Progress is a snapshot of a run.
type Progress struct {
	Elapsed      time.Duration
	Sent, Errors uint64
	LastError    string
}

// Run sends cfg.Rate records a second in batches of cfg.Batch until cfg.Duration passes or ctx
// ends, calling report about once a second. It returns the final progress.
func Run(ctx context.Context, cfg Config, sink Sink, report func(Progress)) Progress {
	fleet := NewFleet(cfg.Hosts, cfg.Seed).WithAttrScale(cfg.AttrScale)
	start := time.Now()
	var sent, errs atomic.Uint64
	var lastErr atomic.Value
	snapshot := func() Progress {
		p := Progress{Elapsed: time.Since(start), Sent: sent.Load(), Errors: errs.Load()}
		if e, ok := lastErr.Load().(string); ok {
			p.LastError = e
		}
		return p
	}
	// The duration decides whether to start another send; a send once started runs to its answer
	// (bounded by 30 s), so nothing is sent without being counted.
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	sendCtx := context.WithoutCancel(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	interval := time.Duration(float64(time.Second) * float64(cfg.Batch) / float64(cfg.Rate))
	next := time.Now()
	for runCtx.Err() == nil {
		es, ms := fleet.Batch(cfg.Batch, time.Now())
		sctx, scancel := context.WithTimeout(sendCtx, 30*time.Second)
		err := sink.Send(sctx, es, ms)
		scancel()
		if err != nil {
			errs.Add(uint64(len(es) + len(ms)))
			lastErr.Store(err.Error())
		} else {
			sent.Add(uint64(len(es) + len(ms)))
		}
		next = next.Add(interval)
		select {
		case <-tick.C:
			if report != nil {
				report(snapshot())
			}
		default:
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-runCtx.Done():
			}
		}
	}
	return snapshot()
}
