package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/tributary/tributary/internal/testenv"
)

// collectorConfig is the Collector configuration docker-compose.yml ships, run unchanged.
const collectorConfig = "deploy/compose/otel-collector.yaml"

// buildCollector builds deploy/otlp/collector (the upstream Collector modules, from the Go module
// proxy) with deploy/otlp/collector.sh, or finds it built, and returns the binary. It fails the
// test, with the script's output, when it cannot build.
func buildCollector(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(t), "deploy/otlp/collector.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("deploy/otlp/collector.sh could not build the OpenTelemetry Collector: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// freeAddr is a loopback address with a port no one listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// collector is a running OpenTelemetry Collector process.
type collector struct {
	otlpEndpoints // its OTLP receiver
	cmd           *exec.Cmd
	out           *testenv.SyncBuffer
	done          chan error // the process's exit
}

// startCollector runs bin with the shipped configuration, exporting to the gateway at gatewayURL
// with tok. Only what the file reads from the environment changes: its receivers' addresses (free
// loopback ports, so that tests running at once do not share one), the gateway's and the token;
// and the Collector's own metrics server (localhost:8888) is off (--set), for the same reason. It
// returns once both receivers accept connections.
func startCollector(t *testing.T, bin, gatewayURL, tok string) *collector {
	t.Helper()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--config="+filepath.Join(testenv.RepoRoot(t), collectorConfig),
		"--set=service.telemetry.metrics.level=none")
	cmd.Env = append(os.Environ(), "OTELCOL_OTLP_GRPC_ENDPOINT="+grpcAddr, "OTELCOL_OTLP_HTTP_ENDPOINT="+httpAddr,
		"OTELCOL_TRIBUTARY_ENDPOINT="+gatewayURL, "OTELCOL_TRIBUTARY_TOKEN="+tok)
	c := &collector{otlpEndpoints: otlpEndpoints{httpURL: "http://" + httpAddr, grpcAddr: grpcAddr}, cmd: cmd,
		out: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Collector: %v", err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("the Collector's log:\n%s", c.out.String())
		}
	})
	testenv.EventuallyNil(t, "the Collector's OTLP receivers to listen", time.Minute, func() error {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("the Collector exited before it listened (%v):\n%s", err, c.out.String())
		default:
		}
		for _, addr := range []string{grpcAddr, httpAddr} {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			conn.Close()
		}
		return nil
	})
	return c
}

// stop shuts the Collector down as a container stop does (SIGTERM: the batch processors flush, the
// exporter's queue drains) and fails the test unless it exits cleanly within 30 seconds.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal the Collector: %v", err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("the Collector exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("the Collector did not stop within 30 s of SIGTERM")
	}
	for _, line := range strings.Split(c.out.String(), "\n") {
		// The Collector logs a failed export, a refused item or partial success as error or warn.
		// Double batching is meant: the batch processors bound the records of a request, the
		// exporter queue's batcher its bytes (deploy/compose/otel-collector.yaml).
		if strings.Contains(line, "double batching") {
			continue
		}
		if strings.Contains(line, "\terror\t") || strings.Contains(line, "\twarn\t") {
			t.Errorf("the Collector logged: %s", line)
		}
	}
}

// TestOTLPThroughTheCollector runs a real OpenTelemetry Collector (the upstream modules, built by
// deploy/otlp/collector.sh) with the configuration docker-compose.yml ships in front of the gateway
// on the real broker. The OpenTelemetry Go SDK's exporters send logs and metrics to the Collector
// (OTLP/HTTP with cumulative temporality, OTLP/gRPC with delta); the Collector batches them and
// exports them to the gateway with its otlp_http exporter and the token. The events, rows and
// rollups the consumer stored in the real ClickHouse must equal what the SDK was told to record,
// exactly as when the SDK sends to the gateway directly.
func TestOTLPThroughTheCollector(t *testing.T) {
	bin := buildCollector(t)
	s := newOTLPStack(t)
	col := startCollector(t, bin, s.httpURL, token)
	// Records the gateway accepted so far. Each step waits until the Collector delivered its
	// records: the exporter sends batches concurrently, and a cumulative point reaching the gateway
	// after a newer one of its stream is skipped (docs/otlp.md), which would merge two exports' rows.
	var want uint64
	delivered := func(what string, n uint64) {
		want += n
		testenv.EventuallyNil(t, "the Collector to deliver "+what, time.Minute, func() error {
			if got := s.p.Stats().Accepted; got < want {
				return fmt.Errorf("the gateway accepted %d of %d records", got, want)
			}
			return nil
		})
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	// The records each metric export stores: one point per instrument (a counter, a gauge, two
	// histograms, an up-down counter) in the two rounds; the shutdown's export has every stream
	// again when cumulative (the counter's zero increase, the gauge and the up-down counter are
	// stored; histograms that did not change store nothing), the gauge and the up-down counter
	// (cumulative) when delta.
	cases := []struct {
		transport   string
		temporality metricdata.Temporality
		records     [3]uint64
	}{{"http", metricdata.CumulativeTemporality, [3]uint64{5, 5, 3}}, {"grpc", metricdata.DeltaTemporality, [3]uint64{5, 5, 2}}}
	for _, c := range cases {
		sdkLogs(t, col.otlpEndpoints, c.transport, at)
		delivered(c.transport+" logs", 3)
		sdkMetrics(t, col.otlpEndpoints, c.transport, c.temporality, func(round int) {
			delivered(fmt.Sprintf("%s metrics export %d", c.transport, round), c.records[round])
		})
	}
	// 2,500 log records of 5 KiB in one export: 12.5 MiB, over the gateway's 8 MiB body limit
	// in one request (413, dropped by the Collector) unless the exporter splits it by bytes.
	largeLogs(t, col.otlpEndpoints, largeLogCount, 5<<10)
	delivered("the large log records", largeLogCount)
	col.stop(t)
	if got := s.p.Stats().Accepted; got != want {
		t.Errorf("the gateway accepted %d records, want %d", got, want)
	}
	s.settle(t)
	for _, c := range cases {
		t.Run(c.transport+"/logs", func(t *testing.T) { checkLogs(t, s, c.transport, at) })
		t.Run(c.transport+"/metrics", func(t *testing.T) { checkMetrics(t, s, goRecording, c.transport) })
	}
	t.Run("large logs", func(t *testing.T) {
		var n, bytes uint64
		if err := s.conn.QueryRow(context.Background(), fmt.Sprintf(
			`SELECT count(), sum(length(attributes)) FROM (SELECT attributes FROM %s.events FINAL WHERE service = 'svc-large')`, s.db)).
			Scan(&n, &bytes); err != nil {
			t.Fatal(err)
		}
		if n != largeLogCount || bytes < largeLogCount*5<<10 {
			t.Errorf("%d large log records stored with %d bytes of attributes, want %d with at least %d", n, bytes, largeLogCount, largeLogCount*5<<10)
		}
	})
}

const largeLogCount = 2500

// largeLogs emits n log records with a size-byte attribute each through the Go SDK's OTLP/HTTP
// exporter, all in one export (the batch processor's queue and export batch hold them all).
func largeLogs(t *testing.T, to otlpEndpoints, n, size int) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(to.httpURL+"/v1/logs"),
		otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}), otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	bp := sdklog.NewBatchProcessor(exp, sdklog.WithMaxQueueSize(n), sdklog.WithExportMaxBatchSize(n), sdklog.WithExportInterval(time.Hour))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "svc-large"))),
		sdklog.WithProcessor(bp))
	logger := lp.Logger("otlp-large")
	stack := strings.Repeat("x", size)
	at := time.Now()
	for i := range n {
		var r otellog.Record
		r.SetTimestamp(at.Add(time.Duration(i) * time.Microsecond))
		r.SetBody(attribute.StringValue("request failed"))
		r.AddAttributes(attribute.Int("i", i), attribute.String("stack", stack))
		logger.Emit(ctx, r)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
