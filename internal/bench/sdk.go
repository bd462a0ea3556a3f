package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// sdkLoad is n records, half events and half metrics, with ids and times set and a few attributes.
func sdkLoad(n int) ([]schemas.Event, []schemas.Metric) {
	es := make([]schemas.Event, n/2)
	ms := make([]schemas.Metric, n/2)
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

// runSDK: RecordEvent/RecordMetric with async batching and a final Flush, against (a) encoding
// the same records with the same codec and producing them with bare franz-go, and (b) bare
// franz-go producing the records already encoded, all with the same producer settings to the
// same broker, the three sides alternating their order run to run.
func runSDK(ctx context.Context, e *Env, s *Section) error {
	n, runs := pick(e, 600000, 20000), pick(e, 7, 1)
	es, ms := sdkLoad(n)
	codec, err := schemas.NewCodec()
	if err != nil {
		return err
	}
	var sdkR, encR, rawR, sdkA, encA []float64
	for run := range runs {
		k, err := e.topics(ctx, 4)
		if err != nil {
			return err
		}
		cfg := producer.DefaultConfig()
		cfg.Kafka = k
		cfg.Service, cfg.Host, cfg.MaxBufferedRecords = "bench", "h1", n
		if v := os.Getenv("BENCH_LINGER"); v != "" { // for sweeps: BENCH_LINGER=20ms
			if cfg.Linger, err = time.ParseDuration(v); err != nil {
				return fmt.Errorf("BENCH_LINGER: %w", err)
			}
		}
		sdk := func() (float64, float64, error) {
			p, err := producer.New(cfg)
			if err != nil {
				return 0, 0, err
			}
			defer p.Close(context.Background())
			runtime.GC()
			stop, err := startProfile("sdk")
			if err != nil {
				return 0, 0, err
			}
			defer stop()
			m0, start := mallocs(), time.Now()
			for j := range es {
				if err := p.RecordEvent(ctx, es[j]); err != nil {
					return 0, 0, err
				}
				if err := p.RecordMetric(ctx, ms[j]); err != nil {
					return 0, 0, err
				}
			}
			if err := p.Flush(ctx); err != nil {
				return 0, 0, err
			}
			return float64(n) / time.Since(start).Seconds(), float64(mallocs()-m0) / float64(n), nil
		}
		bare := func(pre [][]byte) (float64, float64, error) {
			cl, err := kgo.NewClient(append(cfg.Kafka.ClientOpts(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(n+1),
				kgo.ProducerLinger(cfg.Linger), kgo.ProducerBatchMaxBytes(cfg.BatchMaxBytes), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
				kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
			if err != nil {
				return 0, 0, err
			}
			defer cl.Close()
			runtime.GC()
			side := "bare-encode"
			if pre != nil {
				side = "bare-pre-encoded"
			}
			stop, err := startProfile(side)
			if err != nil {
				return 0, 0, err
			}
			defer stop()
			m0, start := mallocs(), time.Now()
			for j := range es {
				var ev, mv []byte
				if pre != nil {
					ev, mv = pre[2*j], pre[2*j+1]
				} else {
					ev, _ = codec.AppendEvent(nil, &es[j])
					mv, _ = codec.AppendMetric(nil, &ms[j])
				}
				cl.Produce(ctx, &kgo.Record{Topic: k.EventsTopic, Key: []byte(es[j].TraceID), Value: ev}, nil)
				cl.Produce(ctx, &kgo.Record{Topic: k.MetricsTopic, Key: producer.SeriesKey(&ms[j]), Value: mv}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				return 0, 0, err
			}
			return float64(n) / time.Since(start).Seconds(), float64(mallocs()-m0) / float64(n), nil
		}
		pre := make([][]byte, 0, n)
		for j := range es {
			ev, _ := codec.AppendEvent(nil, &es[j])
			mv, _ := codec.AppendMetric(nil, &ms[j])
			pre = append(pre, ev, mv)
		}
		sides := []func() error{
			func() error { r, a, err := sdk(); sdkR, sdkA = append(sdkR, r), append(sdkA, a); return err },
			func() error { r, a, err := bare(nil); encR, encA = append(encR, r), append(encA, a); return err },
			func() error { r, _, err := bare(pre); rawR = append(rawR, r); return err },
		}
		for i := range sides {
			if err := sides[(i+run)%len(sides)](); err != nil {
				return err
			}
		}
		e.logf("sdk run %d: SDK %.0f/s, encode+franz-go %.0f/s, franz-go pre-encoded %.0f/s", run+1, sdkR[run], encR[run], rawR[run])
		e.cleanup()
	}
	f := compare("SDK records/s", "records/s", sdkR, "encode + bare franz-go", encR)
	s.Figures = append(s.Figures,
		f.target("ratio ≥ 0.95", f.Ratio >= 0.95),
		compare("SDK records/s vs pre-encoded", "records/s", sdkR, "bare franz-go, records pre-encoded", rawR),
		compare("SDK allocations per record", "allocs", sdkA, "encode + bare franz-go", encA),
	)
	s.Notes = append(s.Notes, fmt.Sprintf("Each run sends %s records (half events, half metrics, ids and times set, a few attributes) "+
		"with `RecordEvent`/`RecordMetric` and async batching, then `Flush`; the baselines produce the same records with bare "+
		"franz-go and the same settings (acks=all, idempotent, zstd, %v linger, murmur2 keys) to the same broker, one encoding them "+
		"with the same codec (schemas.Codec) as it goes, one with the records encoded beforehand. The three sides alternate their "+
		"order. `BENCH_LINGER=20ms` sweeps the linger.", thousands(int64(n)), producer.DefaultConfig().Linger))
	return nil
}
