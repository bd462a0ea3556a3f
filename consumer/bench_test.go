package consumer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// benchRecords is half events, half metrics per iteration.
const benchRecords = 200000

func benchLoad() ([]schemas.Event, []schemas.Metric) {
	rng := rand.New(rand.NewPCG(5, 6))
	ms := genMetrics(rng, benchRecords/2, 5*time.Second)
	es := make([]schemas.Event, benchRecords/2)
	for i := range es {
		es[i] = schemas.Event{EventID: fmt.Sprintf("e%07d", i), TraceID: fmt.Sprintf("t%d", i%1000), Type: "node_finished",
			Name: "Transform Completed", Timestamp: ms[i].Timestamp,
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%50), "rows": int64(i), "ok": true}}
	}
	return es, ms
}

func preload(b *testing.B, e env, es []schemas.Event, ms []schemas.Metric) {
	codec, _ := schemas.NewCodec()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(es)+len(ms))
	for i := range es {
		v, _ := codec.AppendEvent(nil, &es[i])
		recs = append(recs, &kgo.Record{Topic: e.kcfg.EventsTopic, Key: []byte(es[i].TraceID), Value: v})
	}
	for i := range ms {
		v, _ := codec.AppendMetric(nil, &ms[i])
		recs = append(recs, &kgo.Record{Topic: e.kcfg.MetricsTopic, Key: producer.SeriesKey(&ms[i]), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConsumerStage: a pre-loaded topic through a worker (decode, validate, rollups, raw and
// rollup inserts, commit) against the baseline of inserting the same rows, already decoded, with
// bare clickhouse-go columnar batches into the same server, in the same iteration. Run with
// make servers and TRIBUTARY_TEST_* set (see BENCHMARKS.md).
func BenchmarkConsumerStage(b *testing.B) {
	// The consumer role sets this (TRIBUTARY_CONSUMER_GC_PERCENT); it applies to both sides here.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	es, ms := benchLoad()
	var ratios, workerRates, bareRates []float64
	i := 0
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b)
		preload(b, e, es, ms)
		cfg := e.workerConfig(testenv.Unique("bench"))
		cfg.BatchMaxRecords, cfg.BatchInterval, cfg.RollupMaxWindows = 50000, time.Second, 200000
		conn := testenv.OpenClickHouse(b, e.ch)
		b.StartTimer()

		worker := func() float64 {
			settle(b, conn)
			start := time.Now()
			w, stopWorker := startWorker(b, e, cfg)
			for w.Stats().Written < benchRecords {
				time.Sleep(2 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.Logf("worker stored %d records in %v; %s", benchRecords, elapsed, stageTimes(w))
			stopWorker()
			return benchRecords / elapsed.Seconds()
		}
		bare := func() float64 { // the same rows, decoded already, inserted with bare columnar batches
			settle(b, conn)
			start := time.Now()
			if err := consumer.WriteForTest(context.Background(), conn, e.ch.Database, es, ms); err != nil {
				b.Fatal(err)
			}
			return benchRecords / time.Since(start).Seconds()
		}
		var wr, br float64
		if i%2 == 0 { // alternate, so neither side always runs on the other's background merges
			wr, br = worker(), bare()
		} else {
			br, wr = bare(), worker()
		}
		i++
		workerRates, bareRates, ratios = append(workerRates, wr), append(bareRates, br), append(ratios, wr/br)
	}
	b.ReportMetric(median(workerRates), "records/s")
	b.ReportMetric(median(bareRates), "bare-insert-records/s")
	b.ReportMetric(median(ratios), "ratio-median")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
}

// settle waits (up to 20 s) until ClickHouse runs no background merges and collects garbage, so a
// measurement does not pay for the previous one.
func settle(b *testing.B, conn driver.Conn) {
	runtime.GC()
	for range 200 {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.merges").Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func stageTimes(w *consumer.Worker) string {
	reg := prometheus.NewRegistry()
	_ = w.Register(reg)
	fams, _ := reg.Gather()
	out := ""
	for _, f := range fams {
		if f.GetName() != "tributary_consumer_store_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			out += fmt.Sprintf("%s=%.0fms/%d ", m.GetLabel()[0].GetValue(), m.GetHistogram().GetSampleSum()*1000, m.GetHistogram().GetSampleCount())
		}
	}
	return out
}
