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
	"github.com/tributary/tributary/schemas"
)

// otlpStack is a gateway (OTLP/HTTP and OTLP/gRPC) publishing to the real broker, and a consumer
// writing to a fresh database of the real ClickHouse.
type otlpStack struct {
	httpURL, grpcAddr string
	p                 *producer.Client
	stack             *pipeline.Stack
	conn              driver.Conn
	db                string
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
	return &otlpStack{httpURL: srv.URL, grpcAddr: <-ready, p: p, stack: stack, conn: testenv.OpenClickHouse(t, ch), db: ch.Database}
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

// sdkLogs emits three log records through the OpenTelemetry Go SDK and the exporter of transport.
func sdkLogs(t *testing.T, s *otlpStack, transport string, at time.Time) {
	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + token}
	var exp sdklog.Exporter
	var err error
	if transport == "http" {
		exp, err = otlploghttp.New(ctx, otlploghttp.WithEndpointURL(s.httpURL+"/v1/logs"), otlploghttp.WithHeaders(headers),
			otlploghttp.WithCompression(otlploghttp.GzipCompression))
	} else {
		exp, err = otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.grpcAddr), otlploggrpc.WithInsecure(),
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
	counterAdds  = [][]int64{{3, 4}, {5}}
	gaugeValues  = [][]float64{{21.5}, {23.25}}
	histValues   = [][]float64{{0.3, 1.7, 4.2, 12, 0.05}, {7.5, 250}}
	upDownAdds   = [][]int64{{10, -3}, {5}}
	histBoundsLE = []string{"0", "5", "10", "25", "50", "75", "100", "250", "500", "750", "1000", "2500", "5000", "7500", "10000", "+Inf"}
)

// sdkMetrics records through the Go SDK's instruments in two collections, exported by transport
// with the given temporality for counters and histograms.
func sdkMetrics(t *testing.T, s *otlpStack, transport string, temporality metricdata.Temporality) {
	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + token}
	sel := func(k sdkmetric.InstrumentKind) metricdata.Temporality {
		if k == sdkmetric.InstrumentKindCounter || k == sdkmetric.InstrumentKindHistogram {
			return temporality
		}
		return metricdata.CumulativeTemporality
	}
	var exp sdkmetric.Exporter
	var err error
	if transport == "http" {
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(s.httpURL+"/v1/metrics"), otlpmetrichttp.WithHeaders(headers),
			otlpmetrichttp.WithTemporalitySelector(sel))
	} else {
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.grpcAddr), otlpmetricgrpc.WithInsecure(),
			otlpmetricgrpc.WithHeaders(headers), otlpmetricgrpc.WithTemporalitySelector(sel))
	}
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(sdkResource(transport)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	meter := mp.Meter("otlp-e2e")
	counter, _ := meter.Int64Counter("requests", otelmetric.WithUnit("1"))
	gauge, _ := meter.Float64Gauge("temperature")
	hist, _ := meter.Float64Histogram("latency")
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
		for _, v := range upDownAdds[round] {
			upDown.Add(ctx, v)
		}
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("export round %d: %v", round, err)
		}
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
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
		sdkLogs(t, s, c.transport, at)
		sdkMetrics(t, s, c.transport, c.temporality)
	}
	s.settle(t)
	for _, c := range cases {
		t.Run(c.transport+"/logs", func(t *testing.T) { checkLogs(t, s, c.transport, at) })
		t.Run(c.transport+"/metrics", func(t *testing.T) { checkMetrics(t, s, c.transport) })
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
}

func checkMetrics(t *testing.T, s *otlpStack, transport string) {
	rows, err := s.conn.Query(context.Background(), fmt.Sprintf(
		`SELECT name, toString(aggregation_type), attributes, value, timestamp_us FROM %s.metrics FINAL WHERE service = ? ORDER BY name, timestamp_us`, s.db),
		"svc-"+transport)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	byName := map[string][]metricRow{}
	for rows.Next() {
		var r metricRow
		if err := rows.Scan(&r.name, &r.agg, &r.attrs, &r.value, &r.ts); err != nil {
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
	var wantCount, wantSum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	perBucket := map[string]float64{}
	bounds := []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}
	for _, round := range histValues {
		for _, v := range round {
			wantCount++
			wantSum += v
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			i := sort.SearchFloat64s(bounds, v) // the first bound >= v: buckets are (prev, le]
			perBucket[histBoundsLE[i]]++
		}
	}
	var wantCounter int64
	for _, round := range counterAdds {
		for _, v := range round {
			wantCounter += v
		}
	}
	if got := sum("requests", "counter"); got != float64(wantCounter) {
		t.Errorf("requests: stored increases add up to %v, the SDK was told %d", got, wantCounter)
	}
	if got := sum("latency.count", "counter"); got != wantCount {
		t.Errorf("latency.count: %v, want %v", got, wantCount)
	}
	if got := sum("latency.sum", "counter"); math.Abs(got-wantSum) > 1e-9 {
		t.Errorf("latency.sum: %v, want %v", got, wantSum)
	}
	gotBuckets := map[string]float64{}
	for _, r := range byName["latency.bucket"] {
		attrs, err := schemas.ParseAttributesJSON([]byte(r.attrs))
		if err != nil {
			t.Fatal(err)
		}
		gotBuckets[attrs["le"].(string)] += r.value
	}
	if !reflect.DeepEqual(gotBuckets, perBucket) {
		t.Errorf("latency buckets %v, want %v", gotBuckets, perBucket)
	}
	minMax := func(name string, pick func(a, b float64) float64, start float64) float64 {
		v := start
		for _, r := range byName[name] {
			v = pick(v, r.value)
		}
		return v
	}
	if got := minMax("latency.min", math.Min, math.Inf(1)); got != lo {
		t.Errorf("latency.min: %v, want %v", got, lo)
	}
	if got := minMax("latency.max", math.Max, math.Inf(-1)); got != hi {
		t.Errorf("latency.max: %v, want %v", got, hi)
	}
	last := func(name string) float64 {
		rs := byName[name]
		if len(rs) == 0 {
			t.Fatalf("no %s stored", name)
		}
		return rs[len(rs)-1].value
	}
	if got := last("temperature"); got != 23.25 {
		t.Errorf("temperature: last %v, want 23.25", got)
	}
	for _, r := range byName["temperature"] {
		if r.agg != "gauge" || (r.value != 21.5 && r.value != 23.25) {
			t.Errorf("temperature row %+v", r)
		}
	}
	if got := last("queue_depth"); got != 12 || byName["queue_depth"][0].agg != "gauge" {
		t.Errorf("queue_depth: last %v (%s), want 12 as a gauge", got, byName["queue_depth"][0].agg)
	}

	// The rollups (1-minute tier) hold the same increases, counts, sums, minimum and maximum.
	want := map[string][4]float64{
		"requests":      {math.NaN(), float64(wantCounter), math.NaN(), math.NaN()},
		"latency.count": {math.NaN(), wantCount, math.NaN(), math.NaN()},
		"latency.sum":   {math.NaN(), wantSum, math.NaN(), math.NaN()},
		"latency.min":   {math.NaN(), math.NaN(), lo, math.NaN()},
		"latency.max":   {math.NaN(), math.NaN(), math.NaN(), hi},
		"temperature":   {23.25, math.NaN(), math.NaN(), math.NaN()},
	}
	testenv.EventuallyNil(t, "the rollups to hold the increases, counts, sums, minimum and maximum", 30*time.Second, func() error {
		got := s.rollups(t, transport)
		for name, w := range want {
			g, ok := got[name]
			switch {
			case !ok:
				return fmt.Errorf("%s missing", name)
			case !math.IsNaN(w[0]) && g[0] != w[0], !math.IsNaN(w[1]) && math.Abs(g[1]-w[1]) > 1e-9,
				!math.IsNaN(w[2]) && g[2] != w[2], !math.IsNaN(w[3]) && g[3] != w[3]:
				return fmt.Errorf("%s: rollups last/sum/min/max %v, want %v", name, g, w)
			}
		}
		return nil
	})
}

// rollups reads the 1-minute rollups of transport's series, merged over windows and partitions:
// last, sum, min and max by metric name.
func (s *otlpStack) rollups(t *testing.T, transport string) map[string][4]float64 {
	rows, err := s.conn.Query(context.Background(), fmt.Sprintf(
		`SELECT name, argMax(last, last_ts_us), sum(sum), min(min), max(max) FROM %s.rollups FINAL
		 WHERE tier = 60 AND position(attributes, ?) > 0 GROUP BY name`, s.db), `"transport":"`+transport+`"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][4]float64{}
	for rows.Next() {
		var name string
		var v [4]float64
		if err := rows.Scan(&name, &v[0], &v[1], &v[2], &v[3]); err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	return out
}
