package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
)

const (
	gatewayToken    = "bench-token-1"
	gatewayClients  = 4
	gatewayPerBatch = 100
)

// gatewayLoad is one request body of each kind, gatewayPerBatch records each: a JSON batch (half
// events, half gauge metrics), an OTLP logs request and an OTLP metrics request of gauges (which
// alternate, so the OTLP sides carry the same half-and-half mix), and an OTLP metrics request of
// histogram points (16 buckets each). i varies the attributes.
type gatewayLoad struct {
	json                []byte
	logs, gauges, hists []byte // OTLP protobuf
	logsReq             plogotlp.ExportRequest
	gaugesReq, histsReq pmetricotlp.ExportRequest
}

func newGatewayLoad(i int) (gatewayLoad, error) {
	var l gatewayLoad
	var buf bytes.Buffer
	buf.WriteString("[")
	for j := range gatewayPerBatch {
		if j > 0 {
			buf.WriteString(",")
		}
		if j%2 == 0 {
			fmt.Fprintf(&buf, `{"kind":"event","type":"node_finished","name":"Transform Completed","trace_id":"t-%d-%d","attributes":{"node_id":"node_%d","rows":%d}}`, i, j/8, j%20, j)
		} else {
			fmt.Fprintf(&buf, `{"kind":"metric","name":"queue_depth","value":%d,"unit":"count","aggregation_type":"gauge","attributes":{"endpoint":"/api/%d","host":"host-%d"}}`, j, j%16, i)
		}
	}
	buf.WriteString("]")
	l.json = buf.Bytes()

	now := pcommon.NewTimestampFromTime(time.Now())
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "bench")
	rl.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", i))
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	md, hd := pmetric.NewMetrics(), pmetric.NewMetrics()
	for _, m := range []pmetric.Metrics{md, hd} {
		rm := m.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "bench")
		rm.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", i))
	}
	gm := md.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	gm.SetName("queue_depth")
	gm.SetUnit("count")
	gauges := gm.SetEmptyGauge().DataPoints()
	hm := hd.ResourceMetrics().At(0).ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	hm.SetName("latency")
	hm.SetUnit("ms")
	h := hm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	bounds := []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000}
	for j := range gatewayPerBatch {
		r := lrs.AppendEmpty()
		r.SetTimestamp(now)
		r.SetEventName("node_finished")
		r.Body().SetStr("Transform Completed")
		r.Attributes().PutStr("node_id", fmt.Sprintf("node_%d", j%20))
		r.Attributes().PutInt("rows", int64(j))
		g := gauges.AppendEmpty()
		g.SetTimestamp(now)
		g.SetIntValue(int64(j))
		g.Attributes().PutStr("endpoint", fmt.Sprintf("/api/%d", j%16))
		g.Attributes().PutInt("n", int64(j))
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.Attributes().PutStr("endpoint", fmt.Sprintf("/api/%d", j%16))
		dp.Attributes().PutInt("n", int64(j))
		dp.ExplicitBounds().FromRaw(bounds)
		counts := make([]uint64, len(bounds)+1)
		var n uint64
		for k := range counts {
			counts[k] = uint64((j + k) % 4)
			n += counts[k]
		}
		dp.BucketCounts().FromRaw(counts)
		dp.SetCount(n)
		dp.SetSum(float64(n) * 42)
		dp.SetMin(0.5)
		dp.SetMax(60000)
	}
	l.logsReq, l.gaugesReq, l.histsReq = plogotlp.NewExportRequestFromLogs(ld), pmetricotlp.NewExportRequestFromMetrics(md),
		pmetricotlp.NewExportRequestFromMetrics(hd)
	var err error
	if l.logs, err = l.logsReq.MarshalProto(); err != nil {
		return l, err
	}
	if l.gauges, err = l.gaugesReq.MarshalProto(); err != nil {
		return l, err
	}
	l.hists, err = l.histsReq.MarshalProto()
	return l, err
}

// gatewayStack is a gateway (HTTP and gRPC) in this process with its producer, on fresh topics.
type gatewayStack struct {
	url, grpcAddr string
	p             *producer.Client
}

func (e *Env) gatewayStack(ctx context.Context, records int) (*gatewayStack, error) {
	k, err := e.topics(ctx, 4)
	if err != nil {
		return nil, err
	}
	pcfg := producer.DefaultConfig()
	pcfg.Kafka, pcfg.Service, pcfg.Host, pcfg.MaxBufferedRecords = k, "bench", "h1", records+1
	p, err := producer.New(pcfg)
	if err != nil {
		return nil, err
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Listen, gcfg.GRPCListen, gcfg.Tokens, gcfg.MaxRecords = "127.0.0.1:0", "127.0.0.1:0", map[string]string{gatewayToken: "acme"}, 1000
	g, err := gateway.New(gcfg, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		_ = p.Close(ctx)
		return nil, err
	}
	srv := httptest.NewServer(g.Handler())
	gctx, cancel := context.WithCancel(ctx)
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- g.RunGRPC(gctx, ready) }()
	s := &gatewayStack{url: srv.URL, p: p}
	select {
	case s.grpcAddr = <-ready:
	case err := <-done:
		cancel()
		srv.Close()
		_ = p.Close(ctx)
		return nil, fmt.Errorf("gateway gRPC: %w", err)
	}
	e.defer_(func() {
		cancel()
		<-done
		srv.Close()
		ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = p.Close(ctx)
	})
	return s, nil
}

// drive sends batches requests from gatewayClients concurrent clients with send (request i) and
// returns the records per second until Kafka acknowledged every record.
func (s *gatewayStack) drive(ctx context.Context, batches int, send func(ctx context.Context, i int) error) (float64, error) {
	runtime.GC()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, gatewayClients)
	for range gatewayClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(batches); i = next.Add(1) {
				if err := send(ctx, int(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if err := s.p.Flush(ctx); err != nil {
		return 0, err
	}
	return float64(batches*gatewayPerBatch) / time.Since(start).Seconds(), nil
}

func (s *gatewayStack) post(ctx context.Context, path, contentType string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+gatewayToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: HTTP %d, want %d", path, resp.StatusCode, want)
	}
	return nil
}

// runGateway: the same records (half events, half gauge points, 100 a request, 4 concurrent
// clients) through the gateway's JSON endpoint, OTLP/HTTP (protobuf) and OTLP/gRPC to the real
// broker, until Kafka acknowledged every record; and OTLP/HTTP histogram points. The sides
// alternate their order run to run, each on a fresh gateway, producer and topics.
func runGateway(ctx context.Context, e *Env, s *Section) error {
	batches, runs := pick(e, 2000, 50), pick(e, 5, 1)
	loads := make([]gatewayLoad, 16)
	for i := range loads {
		var err error
		if loads[i], err = newGatewayLoad(i); err != nil {
			return err
		}
	}
	var jsonR, httpR, grpcR, histR []float64
	for run := range runs {
		side := func(out *[]float64, send func(st *gatewayStack) func(ctx context.Context, i int) error) func() error {
			return func() error {
				st, err := e.gatewayStack(ctx, batches*gatewayPerBatch)
				if err != nil {
					return err
				}
				f := send(st)
				r, err := st.drive(ctx, batches, f)
				*out = append(*out, r)
				e.cleanup()
				return err
			}
		}
		sides := []func() error{
			side(&jsonR, func(st *gatewayStack) func(context.Context, int) error {
				return func(ctx context.Context, i int) error {
					return st.post(ctx, "/v1/ingest", "application/json", loads[i%len(loads)].json, http.StatusAccepted)
				}
			}),
			side(&httpR, func(st *gatewayStack) func(context.Context, int) error {
				return func(ctx context.Context, i int) error {
					if i%2 == 0 {
						return st.post(ctx, "/v1/logs", "application/x-protobuf", loads[i%len(loads)].logs, http.StatusOK)
					}
					return st.post(ctx, "/v1/metrics", "application/x-protobuf", loads[i%len(loads)].gauges, http.StatusOK)
				}
			}),
			side(&grpcR, func(st *gatewayStack) func(context.Context, int) error {
				cc, err := grpc.NewClient(st.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					return func(context.Context, int) error { return err }
				}
				e.defer_(func() { cc.Close() })
				lc, mc := plogotlp.NewGRPCClient(cc), pmetricotlp.NewGRPCClient(cc)
				return func(ctx context.Context, i int) error {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+gatewayToken)
					var err error
					if i%2 == 0 {
						_, err = lc.Export(ctx, loads[i%len(loads)].logsReq)
					} else {
						_, err = mc.Export(ctx, loads[i%len(loads)].gaugesReq)
					}
					return err
				}
			}),
			side(&histR, func(st *gatewayStack) func(context.Context, int) error {
				return func(ctx context.Context, i int) error {
					return st.post(ctx, "/v1/metrics", "application/x-protobuf", loads[i%len(loads)].hists, http.StatusOK)
				}
			}),
		}
		for i := range sides {
			if err := sides[(i+run)%len(sides)](); err != nil {
				return err
			}
		}
		e.logf("gateway run %d: JSON %.0f/s, OTLP/HTTP %.0f/s, OTLP/gRPC %.0f/s, OTLP/HTTP histograms %.0f/s",
			run+1, jsonR[run], httpR[run], grpcR[run], histR[run])
	}
	s.Figures = append(s.Figures,
		measure("JSON gateway records/s", "records/s", jsonR),
		compare("OTLP/HTTP records/s", "records/s", httpR, "JSON gateway, same records", jsonR),
		compare("OTLP/gRPC records/s", "records/s", grpcR, "JSON gateway, same records", jsonR),
		compare("OTLP/HTTP histogram points/s", "records/s", histR, "JSON gateway records", jsonR),
	)
	s.Notes = append(s.Notes, fmt.Sprintf("Each side sends %s requests of %d records from %d concurrent clients to a gateway in "+
		"this process, which publishes them through the SDK to the real broker (4 partitions, acks=all); the rate is taken when "+
		"Kafka acknowledged every record. The JSON side posts batches of half events and half gauge points to `/v1/ingest`; "+
		"the OTLP sides alternate a logs request of %d log records and a metrics request of %d gauge points, as protobuf over "+
		"HTTP (`/v1/logs`, `/v1/metrics`) or gRPC, so they carry the same mix. The histogram side posts OTLP metrics requests "+
		"of %d delta histogram points of 16 buckets (one record each). Bodies are encoded beforehand; the sides alternate their "+
		"order, each on a fresh gateway, producer and topics.", thousands(int64(batches)), gatewayPerBatch, gatewayClients,
		gatewayPerBatch, gatewayPerBatch, gatewayPerBatch))
	return nil
}
