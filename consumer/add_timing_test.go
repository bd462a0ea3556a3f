package consumer

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/schemas"
)

// benchAttributes are ten attributes of the kinds telemetry carries: strings, numbers, a boolean,
// a list and a nested map. i varies a few values, as records of one series vary little.
func benchAttributes(i int) map[string]any {
	return map[string]any{
		"http.method":      "GET",
		"http.route":       "/api/v1/orders/{id}",
		"http.status_code": int64(200 + i%3),
		"duration_ms":      float64(i%1000) / 7,
		"user.id":          fmt.Sprintf("user-%d", i%500),
		"region":           "eu-west-1",
		"retry":            i%10 == 0,
		"k8s.pod":          fmt.Sprintf("checkout-7f9c-%d", i%8),
		"tags":             []any{"checkout", "payments", int64(i % 4)},
		"peer":             map[string]any{"service": "inventory", "port": int64(8443), "zone": "b"},
	}
}

// benchRecords returns n encoded records of topic "ev" (events) or "me" (metrics), realistic in
// shape: UUID ids, tenants and trace ids, ten attributes including nested ones, a few tenants and
// metric names so series repeat as they do in production.
func benchRecords(b *testing.B, events bool, n int) []*kgo.Record {
	codec, err := schemas.NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	tenants := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	ts := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	out := make([]*kgo.Record, n)
	for i := range out {
		src := schemas.Source{Tenant: tenants[i%len(tenants)], Service: "checkout", Host: fmt.Sprintf("node-%d", i%16)}
		attrs, err := schemas.NormalizeAttributes(benchAttributes(i))
		if err != nil {
			b.Fatal(err)
		}
		var v []byte
		r := &kgo.Record{Partition: int32(i % 3), Offset: int64(i)}
		if events {
			e := schemas.Event{EventID: uuid.NewString(), TraceID: uuid.NewString(), SpanID: uuid.NewString()[:16], Type: "span_start",
				Name: fmt.Sprintf("op-%d", i%20), Timestamp: ts.Add(time.Duration(i) * time.Millisecond), Attributes: attrs, Source: src}
			v, err = codec.AppendEvent(nil, &e)
			r.Topic = "ev"
		} else {
			m := schemas.Metric{MetricID: uuid.NewString(), Name: fmt.Sprintf("http.server.duration.%d", i%20), Value: float64(i % 977),
				Unit: "ms", AggregationType: schemas.Gauge, Timestamp: ts.Add(time.Duration(i) * time.Millisecond), Attributes: attrs, Source: src}
			v, err = codec.AppendMetric(nil, &m)
			r.Topic = "me"
		}
		if err != nil {
			b.Fatal(err)
		}
		r.Value = v
		out[i] = r
	}
	return out
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWorkerAdd measures the consumer's per-record path, decoding Avro into a batch's columns
// (Worker.add), as the poll loop runs it (CPU time per record is the figure to compare on a shared machine): one op gathers a batch of batchRecords records, then the
// next batch starts. It reports ns/record, cpu-ns/record, B/record and allocs/record; compare runs with benchstat.
func BenchmarkWorkerAdd(b *testing.B) {
	const batchRecords = 10_000
	for _, kind := range []struct {
		name   string
		events bool
	}{{"events", true}, {"metrics", false}} {
		b.Run(kind.name, func(b *testing.B) {
			recs := benchRecords(b, kind.events, 4096)
			cfg := testConfig([]string{"127.0.0.1:1"})
			w, err := New(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Second)
			batch := newBatch()
			// One warm-up batch, so the first measured batch is sized as later ones are.
			for i := range batchRecords {
				w.add(batch, recs[i%len(recs)], now)
			}
			if w.poison.Load() != 0 {
				b.Fatalf("%d benchmark records did not decode", w.poison.Load())
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				batch = nextBatch(batch)
				for i := range batchRecords {
					w.add(batch, recs[(n*batchRecords+i)%len(recs)], now)
				}
			}
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			runtime.ReadMemStats(&after)
			records := float64(b.N) * batchRecords
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
			// CPU time (the process's, GC included) says more than wall time on a shared machine.
			b.ReportMetric(float64(cpu.Nanoseconds())/records, "cpu-ns/record")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/records, "B/record")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/records, "allocs/record")
		})
	}
}
