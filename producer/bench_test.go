package producer_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/kafka"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

const sdkBenchRecords = 200000

func sdkBenchLoad() ([]schemas.Event, []schemas.Metric) {
	es := make([]schemas.Event, sdkBenchRecords/2)
	ms := make([]schemas.Metric, sdkBenchRecords/2)
	ts := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	for i := range es {
		es[i] = schemas.Event{EventID: fmt.Sprintf("e%07d", i), TraceID: fmt.Sprintf("trace-%d", i%2000), Type: "node_finished",
			Name: "Transform Completed", Timestamp: ts, Source: schemas.Source{Service: "bench", Host: "h1"},
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%50), "rows": int64(i), "ok": true}}
		ms[i] = schemas.Metric{MetricID: fmt.Sprintf("m%07d", i), Name: "node_duration", Value: float64(i%1000) / 1000, Unit: "seconds",
			AggregationType: schemas.Histogram, Timestamp: ts, Source: schemas.Source{Service: "bench", Host: "h1"},
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%50)}}
	}
	return es, ms
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// BenchmarkSDK: RecordEvent/RecordMetric with async batching, then Flush, against the baseline of
// encoding the same records with the same codec (hamba/avro) and producing them with bare franz-go
// using the same producer settings, to the same broker, in the same iteration. See BENCHMARKS.md.
func BenchmarkSDK(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	es, ms := sdkBenchLoad()
	codec, _ := schemas.NewCodec()
	var ratios, sdkRates, bareRates, allocs, bareAllocs []float64
	var err error
	i := 0
	for b.Loop() {
		b.StopTimer()
		topics := testenv.Topics(b, brokers, 4, "events", "metrics")
		cfg := producer.DefaultConfig()
		cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "bench", EventsTopic: topics[0], MetricsTopic: topics[1], TopicPartitions: 4, TopicReplication: 1}
		cfg.Service, cfg.Host, cfg.MaxBufferedRecords = "bench", "h1", sdkBenchRecords
		if v := os.Getenv("BENCH_LINGER"); v != "" { // for sweeps: BENCH_LINGER=20ms
			if cfg.Linger, err = time.ParseDuration(v); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()

		sdk := func() float64 {
			p, err := producer.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			runtime.GC()
			ctx := context.Background()
			m0, start := mallocs(), time.Now()
			for j := range es {
				if err := p.RecordEvent(ctx, es[j]); err != nil {
					b.Fatal(err)
				}
				if err := p.RecordMetric(ctx, ms[j]); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			allocs = append(allocs, float64(mallocs()-m0)/sdkBenchRecords)
			return sdkBenchRecords / elapsed.Seconds()
		}
		bare := func() float64 {
			comp := kgo.ZstdCompression()
			cl, err := kgo.NewClient(append(cfg.Kafka.ClientOpts(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(sdkBenchRecords+1),
				kgo.ProducerLinger(cfg.Linger), kgo.ProducerBatchMaxBytes(cfg.BatchMaxBytes), kgo.ProducerBatchCompression(comp),
				kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			runtime.GC()
			ctx := context.Background()
			m0, start := mallocs(), time.Now()
			for j := range es {
				v, _ := codec.AppendEvent(nil, &es[j])
				cl.Produce(ctx, &kgo.Record{Topic: topics[0], Key: []byte(es[j].TraceID), Value: v}, nil)
				v, _ = codec.AppendMetric(nil, &ms[j])
				cl.Produce(ctx, &kgo.Record{Topic: topics[1], Key: producer.SeriesKey(&ms[j]), Value: v}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			bareAllocs = append(bareAllocs, float64(mallocs()-m0)/sdkBenchRecords)
			return sdkBenchRecords / elapsed.Seconds()
		}
		var sr, br float64
		if i%2 == 0 {
			sr, br = sdk(), bare()
		} else {
			br, sr = bare(), sdk()
		}
		i++
		sdkRates, bareRates, ratios = append(sdkRates, sr), append(bareRates, br), append(ratios, sr/br)
	}
	b.ReportMetric(median(sdkRates), "records/s")
	b.ReportMetric(median(bareRates), "bare-franz-go-records/s")
	b.ReportMetric(median(ratios), "ratio-median")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(median(allocs), "allocs/record")
	b.ReportMetric(median(bareAllocs), "bare-allocs/record")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
