package gateway_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otellog "go.opentelemetry.io/otel/log"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/pipeline"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// otlpEndpoints is where an SDK's OTLP exporters send: an OTLP/HTTP base URL and an OTLP/gRPC
// address.
type otlpEndpoints struct{ httpURL, grpcAddr string }

// otlpStack is a gateway (OTLP/HTTP and OTLP/gRPC) publishing to the real broker, and a consumer
// writing to a fresh database of the real ClickHouse.
type otlpStack struct {
	otlpEndpoints
	p     *producer.Client
	stack *pipeline.Stack
	conn  driver.Conn
	db    string
}

func newOTLPStack(t *testing.T) *otlpStack {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 2, "events", "metrics", "rollups", "dlq")
	ch := testenv.ClickHouse(t)
	kcfg := kafka.Config{Brokers: brokers, ClientID: "otlp", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 2, TopicReplication: 1}
	ccfg := consumer.DefaultConfig()
	ccfg.Kafka, ccfg.ClickHouse, ccfg.Group = kcfg, ch, testenv.Unique("group")
	ccfg.BatchMaxRecords, ccfg.BatchInterval, ccfg.RetryBackoffMax = 5000, 100*time.Millisecond, time.Second
	ccfg.RollupMaxWindows, ccfg.RollupDedupeIDs, ccfg.RollupMaxNewSeries = 100000, 100000, 0 // no cardinality guard
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse, qcfg.Listen = ch, "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack, err := pipeline.Start(ctx, ccfg, qcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Error(err)
		}
	})
	pcfg := producer.DefaultConfig()
	pcfg.Kafka = kcfg
	p, err := producer.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.GRPCListen, gcfg.Tokens = "127.0.0.1:0", "127.0.0.1:0", map[string]string{token: "acme", otherToken: "globex"}
	g, err := gateway.New(gcfg, p, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	gctx, gcancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- g.RunGRPC(gctx, ready) }()
	t.Cleanup(func() {
		gcancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &otlpStack{otlpEndpoints: otlpEndpoints{httpURL: srv.URL, grpcAddr: <-ready}, p: p, stack: stack, conn: testenv.OpenClickHouse(t, ch), db: ch.Database}
}

// settle waits until the consumer stored every record the gateway's producer sent.
func (s *otlpStack) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sent := s.p.Stats().Sent
	testenv.EventuallyNil(t, "the consumer to store every record sent", time.Minute, func() error {
		if written := s.stack.Worker.Stats().Written; written < sent {
			return fmt.Errorf("consumer wrote %d of %d records", written, sent)
		}
		return nil
	})
}

// sdkLogs emits three log records through the OpenTelemetry Go SDK and the exporter of transport,
// sending to to.
func sdkLogs(t *testing.T, to otlpEndpoints, transport string, at time.Time) {
	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + token}
	var exp sdklog.Exporter
	var err error
	if transport == "http" {
		exp, err = otlploghttp.New(ctx, otlploghttp.WithEndpointURL(to.httpURL+"/v1/logs"), otlploghttp.WithHeaders(headers),
			otlploghttp.WithCompression(otlploghttp.GzipCompression))
	} else {
		exp, err = otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(to.grpcAddr), otlploggrpc.WithInsecure(),
			otlploggrpc.WithHeaders(headers), otlploggrpc.WithCompressor("gzip"))
	}
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(sdkResource(transport)), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	logger := lp.Logger("otlp-e2e", otellog.WithInstrumentationVersion("1.2.3"))
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	for i := range 3 {
		var r otellog.Record
		r.SetTimestamp(at.Add(time.Duration(i) * time.Millisecond))
		r.SetSeverity(otellog.SeverityWarn)
		r.SetSeverityText("WARN")
		switch i {
		case 0:
			r.SetEventName("checkpoint")
			r.SetBody(attribute.StringValue("Data Loaded"))
		case 1:
			r.AddAttributes(attribute.String("event.name", "alert"))
			r.SetBody(attribute.MapValue(attribute.Int("rows", 1000)))
		case 2:
			r.SetBody(attribute.StringValue("plain log line"))
		}
		r.AddAttributes(attribute.String("s", "text"), attribute.Bool("b", true), attribute.Int64("i", 42),
			attribute.Float64("d", 2.5), attribute.ByteSlice("raw", []byte{0, 1, 0xff}),
			attribute.Slice("list", attribute.StringValue("a"), attribute.Int64Value(7), attribute.BoolValue(false)),
			attribute.Map("nested", attribute.String("k", "v"), attribute.Map("deeper", attribute.Float64("x", 0.5))))
		logger.Emit(spanCtx, r)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func sdkResource(transport string) *resource.Resource {
	return resource.NewSchemaless(attribute.String("service.name", "svc-"+transport), attribute.String("host.name", "host-"+transport),
		attribute.String("transport", transport))
}

// recorded is what the test tells the SDK's instruments, and so what must be stored.
var (
	counterAdds = [][]int64{{3, 4}, {5}}
	gaugeValues = [][]float64{{21.5}, {23.25}}
	histValues  = [][]float64{{0.3, 1.7, 4.2, 12, 0.05}, {7.5, 250}}
	sizeValues  = [][]float64{{120, 3.5, 800, 64, 1.25, 33, 2048}, {4096, 0.3, 17}} // an exponential histogram
	upDownAdds  = [][]int64{{10, -3}, {5}}
	histBounds  = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000} // the SDKs' default
)

// recording is what a test told an SDK's instruments in each export round, and the service its
// resource names: what must be stored.
type recording struct {
	service               string // the resource's service.name is service + "-" + transport
	counter, updown       [][]int64
	gauge, latency, size  [][]float64
	lastGauge, lastUpDown float64
}

var goRecording = recording{service: "svc", counter: counterAdds, updown: upDownAdds, gauge: gaugeValues, latency: histValues, size: sizeValues,
	lastGauge: 23.25, lastUpDown: 12}

// sdkMetrics records through the Go SDK's instruments in two collections, exported by transport
// with the given temporality for counters and histograms, sending to to. After each collection's
// export it calls exported (when not nil) with the round, and with round 2 after the meter
// provider's shutdown, which exports once more.
func sdkMetrics(t *testing.T, to otlpEndpoints, transport string, temporality metricdata.Temporality, exported func(round int)) {
	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + token}
	sel := func(k sdkmetric.InstrumentKind) metricdata.Temporality {
		if k == sdkmetric.InstrumentKindCounter || k == sdkmetric.InstrumentKindHistogram { // both histograms
			return temporality
		}
		return metricdata.CumulativeTemporality
	}
	var exp sdkmetric.Exporter
	var err error
	if transport == "http" {
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(to.httpURL+"/v1/metrics"), otlpmetrichttp.WithHeaders(headers),
			otlpmetrichttp.WithTemporalitySelector(sel))
	} else {
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(to.grpcAddr), otlpmetricgrpc.WithInsecure(),
			otlpmetricgrpc.WithHeaders(headers), otlpmetricgrpc.WithTemporalitySelector(sel))
	}
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(sdkResource(transport)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	meter := mp.Meter("otlp-e2e")
	counter, _ := meter.Int64Counter("requests", otelmetric.WithUnit("1"))
	gauge, _ := meter.Float64Gauge("temperature")
	hist, _ := meter.Float64Histogram("latency")
	size, _ := meter.Float64Histogram("size", otelmetric.WithUnit("By"))
	upDown, _ := meter.Int64UpDownCounter("queue_depth")
	for round := range 2 {
		for _, v := range counterAdds[round] {
			counter.Add(ctx, v)
		}
		for _, v := range gaugeValues[round] {
			gauge.Record(ctx, v)
		}
		for _, v := range histValues[round] {
			hist.Record(ctx, v)
		}
		for _, v := range sizeValues[round] {
			size.Record(ctx, v)
		}
		for _, v := range upDownAdds[round] {
			upDown.Add(ctx, v)
		}
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("export round %d: %v", round, err)
		}
		if exported != nil {
			exported(round)
		}
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if exported != nil {
		exported(2)
	}
}

// TestOTLPWithTheOpenTelemetrySDK sends logs and metrics with the OpenTelemetry Go SDK's OTLP
// exporters (HTTP with gzip, gRPC) to the gateway on the real broker, and checks the rows the
// consumer stored in the real ClickHouse and the rollups against what the SDK was told to record.
func TestOTLPWithTheOpenTelemetrySDK(t *testing.T) {
	s := newOTLPStack(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	cases := []struct {
		transport   string
		temporality metricdata.Temporality
	}{{"http", metricdata.CumulativeTemporality}, {"grpc", metricdata.DeltaTemporality}}
	for _, c := range cases {
		sdkLogs(t, s.otlpEndpoints, c.transport, at)
		sdkMetrics(t, s.otlpEndpoints, c.transport, c.temporality, nil)
	}
	s.settle(t)
	for _, c := range cases {
		t.Run(c.transport+"/logs", func(t *testing.T) { checkLogs(t, s, c.transport, at) })
		t.Run(c.transport+"/metrics", func(t *testing.T) { checkMetrics(t, s, goRecording, c.transport) })
	}
}

func checkLogs(t *testing.T, s *otlpStack, transport string, at time.Time) {
	rows, err := s.conn.Query(context.Background(), fmt.Sprintf(
		`SELECT tenant, type, name, trace_id, span_id, timestamp_us, attributes, host FROM %s.events FINAL WHERE service = ? ORDER BY timestamp_us`, s.db),
		"svc-"+transport)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type ev struct {
		tenant, typ, name, trace, span string
		ts                             uint64
		attrs                          map[string]any
		host                           string
	}
	var got []ev
	for rows.Next() {
		var e ev
		var attrs string
		if err := rows.Scan(&e.tenant, &e.typ, &e.name, &e.trace, &e.span, &e.ts, &attrs, &e.host); err != nil {
			t.Fatal(err)
		}
		if e.attrs, err = schemas.ParseAttributesJSON([]byte(attrs)); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 3 {
		t.Fatalf("%d events stored, want 3", len(got))
	}
	wantTypes := []string{"checkpoint", "alert", "log"}
	wantNames := []string{"Data Loaded", `{"rows":1000}`, "plain log line"}
	wantAttrs := map[string]any{
		"s": "text", "b": true, "i": int64(42), "d": 2.5, "raw": base64.StdEncoding.EncodeToString([]byte{0, 1, 0xff}),
		"list":      []any{"a", int64(7), false},
		"nested":    map[string]any{"k": "v", "deeper": map[string]any{"x": 0.5}},
		"transport": transport, "otel.scope.name": "otlp-e2e", "otel.scope.version": "1.2.3",
		"otel.severity_text": "WARN", "otel.severity_number": int64(otellog.SeverityWarn),
	}
	for i, e := range got {
		if e.tenant != "acme" || e.typ != wantTypes[i] || e.name != wantNames[i] || e.host != "host-"+transport ||
			e.trace != "0af7651916cd43dd8448eb211c80319c" || e.span != "b7ad6b7169203331" ||
			e.ts != uint64(at.Add(time.Duration(i)*time.Millisecond).UnixMicro()) {
			t.Errorf("event %d: %+v", i, e)
		}
		for k, v := range wantAttrs {
			if !reflect.DeepEqual(e.attrs[k], v) {
				t.Errorf("event %d attribute %q = %#v, want %#v", i, k, e.attrs[k], v)
			}
		}
	}
	if body := got[1].attrs["otel.body"]; !reflect.DeepEqual(body, map[string]any{"rows": int64(1000)}) {
		t.Errorf("map body kept as %#v", body)
	}
	if got[1].attrs["event.name"] != "alert" {
		t.Errorf("event.name attribute not kept: %v", got[1].attrs)
	}
}

type metricRow struct {
	name, agg, attrs string
	value            float64
	ts               uint64
	count            uint64
	min, max         float64
	bounds           []float64
	counts           []uint64
	scale            int32
	posOff           int32
	pos              []uint64
}

// histWant is what the SDK was told to record into a histogram: its values' count, sum, extremes.
type histWant struct {
	count    uint64
	sum      float64
	min, max float64
}

func wantOf(rounds [][]float64) histWant {
	w := histWant{min: math.Inf(1), max: math.Inf(-1)}
	for _, round := range rounds {
		for _, v := range round {
			w.count++
			w.sum += v
			w.min, w.max = math.Min(w.min, v), math.Max(w.max, v)
		}
	}
	return w
}

// expIndex is the OTLP exponential bucket holding v > 0 at scale: (base^i, base^(i+1)].
func expIndex(v float64, scale int32) int64 {
	return int64(math.Ceil(math.Log2(v)*math.Ldexp(1, int(scale)))) - 1
}

func checkMetrics(t *testing.T, s *otlpStack, rec recording, transport string) {
	rows, err := s.conn.Query(context.Background(), fmt.Sprintf(
		`SELECT name, toString(aggregation_type), attributes, value, timestamp_us, value_count, value_min, value_max,
		        bucket_bounds, bucket_counts, exp_scale, exp_positive_offset, exp_positive_counts
		 FROM %s.metrics FINAL WHERE service = ? ORDER BY name, timestamp_us`, s.db), rec.service+"-"+transport)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	byName := map[string][]metricRow{}
	for rows.Next() {
		var r metricRow
		if err := rows.Scan(&r.name, &r.agg, &r.attrs, &r.value, &r.ts, &r.count, &r.min, &r.max, &r.bounds, &r.counts,
			&r.scale, &r.posOff, &r.pos); err != nil {
			t.Fatal(err)
		}
		byName[r.name] = append(byName[r.name], r)
	}
	sum := func(name, agg string) float64 {
		var total float64
		for _, r := range byName[name] {
			if r.agg != agg {
				t.Errorf("%s stored as %s, want %s", name, r.agg, agg)
			}
			total += r.value
		}
		return total
	}
	var wantCounter int64
	for _, round := range rec.counter {
		for _, v := range round {
			wantCounter += v
		}
	}
	if got := sum("requests", "counter"); got != float64(wantCounter) {
		t.Errorf("requests: stored increases add up to %v, the SDK was told %d", got, wantCounter)
	}

	// Each histogram: one row per export holding its values' count, sum, min and max.
	hists := map[string]histWant{"latency": wantOf(rec.latency), "size": wantOf(rec.size)}
	for name, w := range hists {
		got := histWant{min: math.Inf(1), max: math.Inf(-1)}
		for _, r := range byName[name] {
			got.count += r.count
			got.min, got.max = math.Min(got.min, r.min), math.Max(got.max, r.max)
		}
		got.sum = sum(name, "histogram")
		if len(byName[name]) != 2 || got.count != w.count || math.Abs(got.sum-w.sum) > 1e-9*w.sum || got.min != w.min || got.max != w.max {
			t.Errorf("%s: %d rows holding %+v, the SDK was told %+v in 2 exports", name, len(byName[name]), got, w)
		}
	}
	// The explicit buckets: the SDK's default bounds, each bucket's count added up over the rows.
	wantBuckets := make([]uint64, len(histBounds)+1)
	for _, round := range rec.latency {
		for _, v := range round {
			wantBuckets[sort.SearchFloat64s(histBounds, v)]++ // the first bound >= v: buckets are (prev, bound]
		}
	}
	gotBuckets := make([]uint64, len(histBounds)+1)
	for _, r := range byName["latency"] {
		if !reflect.DeepEqual(r.bounds, histBounds) || len(r.counts) != len(gotBuckets) {
			t.Fatalf("latency row bounds %v counts %v", r.bounds, r.counts)
		}
		for i, c := range r.counts {
			gotBuckets[i] += c
		}
	}
	if !reflect.DeepEqual(gotBuckets, wantBuckets) {
		t.Errorf("latency buckets %v, want %v", gotBuckets, wantBuckets)
	}
	// The exponential buckets: each export's row holds that export's values (cumulative: the
	// increase), each in its bucket at the row's scale.
	for i, r := range byName["size"] {
		want := map[int64]uint64{}
		for _, v := range rec.size[min(i, len(rec.size)-1)] {
			want[expIndex(v, r.scale)]++
		}
		got := map[int64]uint64{}
		for j, c := range r.pos {
			if c > 0 {
				got[int64(r.posOff)+int64(j)] = c
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("size row %d (scale %d): buckets %v, want %v", i, r.scale, got, want)
		}
	}

	last := func(name string) float64 {
		rs := byName[name]
		if len(rs) == 0 {
			t.Fatalf("no %s stored", name)
		}
		return rs[len(rs)-1].value
	}
	if got := last("temperature"); got != rec.lastGauge {
		t.Errorf("temperature: last %v, want %v", got, rec.lastGauge)
	}
	for _, r := range byName["temperature"] {
		if r.agg != "gauge" || !slices.Contains(slices.Concat(rec.gauge...), r.value) {
			t.Errorf("temperature row %+v: not a value the SDK was told (%v)", r, rec.gauge)
		}
	}
	if got := last("queue_depth"); got != rec.lastUpDown || byName["queue_depth"][0].agg != "gauge" {
		t.Errorf("queue_depth: last %v (%s), want %v as a gauge", got, byName["queue_depth"][0].agg, rec.lastUpDown)
	}

	// The rollups (1-minute tier) hold the same increases, counts, sums, minimum and maximum.
	nan := math.NaN()
	want := map[string][5]float64{
		"requests":    {nan, float64(wantCounter), nan, nan, nan},
		"temperature": {rec.lastGauge, nan, nan, nan, nan},
	}
	for name, w := range hists {
		want[name] = [5]float64{nan, w.sum, w.min, w.max, float64(w.count)}
	}
	testenv.EventuallyNil(t, "the rollups to hold the increases, counts, sums, minimum and maximum", 30*time.Second, func() error {
		got := s.rollups(t, transport)
		for name, w := range want {
			g, ok := got[name]
			switch {
			case !ok:
				return fmt.Errorf("%s missing", name)
			case !math.IsNaN(w[0]) && g[0] != w[0], !math.IsNaN(w[1]) && math.Abs(g[1]-w[1]) > 1e-9*math.Abs(w[1]),
				!math.IsNaN(w[2]) && g[2] != w[2], !math.IsNaN(w[3]) && g[3] != w[3], !math.IsNaN(w[4]) && g[4] != w[4]:
				return fmt.Errorf("%s: rollups last/sum/min/max/count %v, want %v", name, g, w)
			}
		}
		return nil
	})
	checkPercentiles(t, s, rec, transport, byName["size"])
}

// checkPercentiles asks the query service for the exponential histogram's percentiles per minute
// (from the rollups' sketches) and compares them with the exact ones of the values the SDK was
// told to record in that minute, within the bound docs/otlp.md states for the rows' scale.
func checkPercentiles(t *testing.T, s *otlpStack, rec recording, transport string, rows []metricRow) {
	values, scales := map[int64][]float64{}, map[int64]int32{}
	for i, r := range rows {
		m := int64(r.ts) / 60_000_000 * 60
		values[m] = append(values[m], rec.size[min(i, len(rec.size)-1)]...)
		if sc, ok := scales[m]; !ok || r.scale < sc {
			scales[m] = r.scale
		}
	}
	first, lastMinute := int64(math.MaxInt64), int64(0)
	for m := range values {
		first, lastMinute = min(first, m), max(lastMinute, m)
	}
	qc := query.NewClient(s.stack.QueryURL, nil)
	q := query.AggregateQuery{Name: "size", Bucket: time.Minute, Start: time.Unix(first, 0), End: time.Unix(lastMinute+60, 0),
		Aggregates: []string{"count", "p50", "p90", "p99"}, Attributes: map[string]string{"transport": transport}, Source: "rollups"}
	ctx := context.Background()
	qs := map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := qc.Aggregate(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var points []query.Point
		if len(a.Series) == 1 {
			points = a.Series[0].Points
		}
		complete := len(points) == len(values)
		for _, p := range points {
			vals := append([]float64(nil), values[p.Time.Unix()]...)
			complete = complete && p.Values["count"] == float64(len(vals))
		}
		if !complete {
			if time.Now().After(deadline) {
				t.Fatalf("size percentiles: the query service answered %+v, want %d minutes holding %v", a.Series, len(values), values)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, p := range points {
			vals := append([]float64(nil), values[p.Time.Unix()]...)
			sort.Float64s(vals)
			b := math.Exp2(math.Ldexp(1, -int(scales[p.Time.Unix()])))
			eps := (b - 1) / (b + 1)
			bound := eps + rollups.RelativeAccuracy + eps*rollups.RelativeAccuracy
			for name, q := range qs {
				exact := vals[min(int(q*float64(len(vals))), len(vals)-1)]
				if got := p.Values[name]; math.Abs(got-exact) > bound*exact {
					t.Errorf("size %s at %v: %v, exact %v: off by %.4f, bound %.4f (scale %d)", name, p.Time, got, exact,
						math.Abs(got-exact)/exact, bound, scales[p.Time.Unix()])
				}
			}
		}
		return
	}
}

// rollups reads the 1-minute rollups of transport's series, merged over windows and partitions:
// last, sum, min, max and count by metric name.
func (s *otlpStack) rollups(t *testing.T, transport string) map[string][5]float64 {
	rows, err := s.conn.Query(context.Background(), fmt.Sprintf(
		`SELECT name, argMax(last, last_ts_us), sum(sum), min(min), max(max), toFloat64(sum(count)) FROM %s.rollups FINAL
		 WHERE tier = 60 AND position(attributes, ?) > 0 GROUP BY name`, s.db), `"transport":"`+transport+`"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][5]float64{}
	for rows.Next() {
		var name string
		var v [5]float64
		if err := rows.Scan(&name, &v[0], &v[1], &v[2], &v[3], &v[4]); err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	return out
}
