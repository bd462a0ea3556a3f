package producer_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// exampleClient returns a client on an embedded broker (franz-go's kfake) and a function that
// closes the client and returns what it sent, events then metrics, each in the order recorded, as
// lines; attribute keys named in drop (durations, which vary) are left out.
func exampleClient() (*producer.Client, func(drop ...string) []string) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events", "metrics"))
	if err != nil {
		panic(err)
	}
	cfg := producer.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Kafka.EventsTopic, cfg.Kafka.MetricsTopic = cluster.ListenAddrs(), "events", "metrics"
	cfg.Service, cfg.Host = "example", "worker-01"
	c, err := producer.New(cfg)
	if err != nil {
		panic(err)
	}
	return c, func(drop ...string) []string {
		defer cluster.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			panic(err)
		}
		return readTopics(ctx, cluster.ListenAddrs(), int(c.Stats().Sent), drop)
	}
}

func readTopics(ctx context.Context, brokers []string, n int, drop []string) []string {
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("events", "metrics"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	codec, _ := schemas.NewCodec()
	strip := func(a map[string]any) string {
		for _, k := range drop {
			delete(a, k)
		}
		return string(schemas.AppendAttributesJSON(nil, a))
	}
	var events, metrics []string
	for len(events)+len(metrics) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Topic == "events" {
				e, _ := codec.DecodeEvent(r.Value)
				events = append(events, fmt.Sprintf("event  %s %q %s", e.Type, e.Name, strip(e.Attributes)))
			} else {
				m, _ := codec.DecodeMetric(r.Value)
				metrics = append(metrics, fmt.Sprintf("metric %s %s %g %s %s", m.AggregationType, m.Name, m.Value, m.Unit, strip(m.Attributes)))
			}
		})
	}
	return append(events, metrics...)
}

func printLines(lines []string) {
	for _, l := range lines {
		fmt.Println(l)
	}
}

// Manual event recording: the spec's DataProcessingNode records a checkpoint, an alert and a
// milestone in the node's trace.
func Example_manualEvents() {
	c, done := exampleClient()
	ctx := producer.WithSpan(context.Background(), producer.Span{TraceID: "550e8400-e29b-41d4-a716-446655440000"})
	data, errs, result := make([]int, 1000), []string{"row 7: missing id", "row 9: bad date"}, make([]int, 990)
	_ = c.RecordEvent(ctx, producer.Event{Type: producer.EventCheckpoint, Name: "Data Loaded",
		Attributes: map[string]any{"rows": len(data), "source": "database", "load_time": 1.23}})
	if len(errs) > 0 {
		_ = c.RecordEvent(ctx, producer.Event{Type: producer.EventAlert, Name: "Validation Errors Detected",
			Attributes: map[string]any{"error_count": len(errs), "severity": "warning", "errors": errs}})
	}
	_ = c.RecordEvent(ctx, producer.Event{Type: producer.EventMilestone, Name: "Data Processing Complete",
		Attributes: map[string]any{"input_rows": len(data), "output_rows": len(result), "transformation": "normalize"}})
	_ = c.RecordEvent(context.Background(), producer.Event{Type: "system", Name: "Cache Cleared", Attributes: map[string]any{"cache_size_mb": 512}})
	printLines(done())
	// Output:
	// event  checkpoint "Data Loaded" {"load_time":1.23,"rows":1000,"source":"database"}
	// event  alert "Validation Errors Detected" {"error_count":2,"errors":["row 7: missing id","row 9: bad date"],"severity":"warning"}
	// event  milestone "Data Processing Complete" {"input_rows":1000,"output_rows":990,"transformation":"normalize"}
	// event  system "Cache Cleared" {"cache_size_mb":512}
}

// The Metric Recording API: a counter, a gauge, a histogram and a global metric.
func Example_customMetrics() {
	c, done := exampleClient()
	ctx := context.Background()
	_ = c.RecordMetric(ctx, producer.Metric{Name: "requests_total", Value: 1, Unit: "count", AggregationType: schemas.Counter,
		Attributes: map[string]any{"endpoint": "/api/process", "method": "POST"}})
	_ = c.RecordMetric(ctx, producer.Metric{Name: "memory_usage_mb", Value: 4096, Unit: "megabytes", AggregationType: schemas.Gauge,
		Attributes: map[string]any{"host": "worker-01"}})
	_ = c.RecordMetric(ctx, producer.Metric{Name: "query_duration", Value: 0.234, Unit: "seconds", AggregationType: schemas.Histogram,
		Attributes: map[string]any{"query_type": "SELECT", "table": "users"}})
	_ = c.RecordMetric(ctx, producer.Metric{Name: "system_cpu_percent", Value: 45.2, Unit: "percent", AggregationType: schemas.Gauge})
	printLines(done())
	// Output:
	// metric counter requests_total 1 count {"endpoint":"/api/process","method":"POST"}
	// metric gauge memory_usage_mb 4096 megabytes {"host":"worker-01"}
	// metric histogram query_duration 0.234 seconds {"query_type":"SELECT","table":"users"}
	// metric gauge system_cpu_percent 45.2 percent {}
}

// The CacheNode recipe: hit and miss counters and a hit-rate gauge.
func Example_cacheHitRate() {
	c, done := exampleClient()
	ctx := context.Background()
	cache, hits, misses := map[string]string{}, 0, 0
	for _, key := range []string{"a", "b", "a", "a"} {
		name := "cache_misses"
		if _, ok := cache[key]; ok {
			hits++
			name = "cache_hits"
		} else {
			misses++
			cache[key] = "value"
		}
		_ = c.RecordMetric(ctx, producer.Metric{Name: name, Value: 1, Unit: "count", AggregationType: schemas.Counter,
			Attributes: map[string]any{"node_id": "cache_1"}})
	}
	_ = c.RecordMetric(ctx, producer.Metric{Name: "cache_hit_rate", Value: float64(hits) / float64(hits+misses), Unit: "ratio",
		AggregationType: schemas.Gauge, Attributes: map[string]any{"node_id": "cache_1"}})
	printLines(done())
	// Output:
	// metric counter cache_misses 1 count {"node_id":"cache_1"}
	// metric counter cache_misses 1 count {"node_id":"cache_1"}
	// metric counter cache_hits 1 count {"node_id":"cache_1"}
	// metric counter cache_hits 1 count {"node_id":"cache_1"}
	// metric gauge cache_hit_rate 0.5 ratio {"node_id":"cache_1"}
}

// Rate metrics: requests per minute, recorded when a window ends. Rates also come from rollups:
// a counter's sum per minute window is its per-minute rate.
func Example_rateMetrics() {
	c, done := exampleClient()
	window, count := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC), 0
	for _, at := range []time.Duration{5 * time.Second, 20 * time.Second, 59 * time.Second, 61 * time.Second} {
		now := window.Add(at)
		count++
		if now.Sub(window) >= time.Minute {
			_ = c.RecordMetric(context.Background(), producer.Metric{Name: "requests_per_minute", Value: float64(count), Unit: "count",
				AggregationType: schemas.Gauge, Timestamp: now, Attributes: map[string]any{"node_id": "rate_limited_1"}})
			count, window = 0, now
		}
	}
	printLines(done())
	// Output:
	// metric gauge requests_per_minute 4 count {"node_id":"rate_limited_1"}
}

// Percentile metrics: each latency as a histogram point (rollups give p50..p99 per window within
// 1%), and, as the spec also shows, percentiles computed in the process as gauges.
func Example_percentileMetrics() {
	c, done := exampleClient()
	ctx := context.Background()
	var latencies []float64
	for i := range 101 {
		l := 0.010 + float64(i)*0.001
		latencies = append(latencies, l)
		_ = c.RecordMetric(ctx, producer.Metric{Name: "operation_latency", Value: l, Unit: "seconds", AggregationType: schemas.Histogram,
			Attributes: map[string]any{"node_id": "tracker_1"}})
	}
	sort.Float64s(latencies)
	for _, p := range []int{50, 95, 99} {
		_ = c.RecordMetric(ctx, producer.Metric{Name: fmt.Sprintf("operation_latency_p%d", p), Value: latencies[p], Unit: "seconds",
			AggregationType: schemas.Gauge, Attributes: map[string]any{"node_id": "tracker_1"}})
	}
	points := 0
	for _, l := range done() {
		if strings.HasPrefix(l, "metric histogram") {
			points++
		} else {
			fmt.Println(l)
		}
	}
	fmt.Println("histogram points:", points)
	// Output:
	// metric gauge operation_latency_p50 0.060000000000000005 seconds {"node_id":"tracker_1"}
	// metric gauge operation_latency_p95 0.105 seconds {"node_id":"tracker_1"}
	// metric gauge operation_latency_p99 0.109 seconds {"node_id":"tracker_1"}
	// histogram points: 101
}

// Cost metrics: an agent's LLM cost and token counts, with the agent helper.
func Example_costMetrics() {
	c, done := exampleClient()
	ctx := producer.WithSpan(context.Background(), producer.Span{TraceID: "trace-cost"})
	a, _ := c.StartAgent(ctx, "summarizer", nil)
	_ = a.LLMCall("model-x", 1200, 300, 0.0042)
	_ = a.Finish(nil)
	printLines(done("duration_seconds"))
	// Output:
	// event  agent_started "summarizer Started" {"agent_id":"summarizer"}
	// event  llm_api_call "model-x Call" {"agent_id":"summarizer","cost":0.0042,"input_tokens":1200,"model":"model-x","output_tokens":300}
	// event  agent_finished "summarizer Finished" {"agent_id":"summarizer","steps":0,"success":true}
	// metric counter llm_input_tokens 1200 count {"agent_id":"summarizer","model":"model-x"}
	// metric counter llm_output_tokens 300 count {"agent_id":"summarizer","model":"model-x"}
	// metric counter llm_api_cost 0.0042 dollars {"agent_id":"summarizer","model":"model-x"}
}

// Resource metrics: CPU and memory gauges per host.
func Example_resourceMetrics() {
	c, done := exampleClient()
	ctx := context.Background()
	for name, v := range map[string]float64{"cpu_percent": 37.5, "memory_used_mb": 6144, "memory_percent": 75} {
		unit := map[string]string{"cpu_percent": "percent", "memory_used_mb": "megabytes", "memory_percent": "percent"}[name]
		_ = c.RecordMetric(ctx, producer.Metric{Name: name, Value: v, Unit: unit, AggregationType: schemas.Gauge,
			Attributes: map[string]any{"host": "worker-01"}})
	}
	printLines(done())
	// Unordered output:
	// metric gauge cpu_percent 37.5 percent {"host":"worker-01"}
	// metric gauge memory_used_mb 6144 megabytes {"host":"worker-01"}
	// metric gauge memory_percent 75 percent {"host":"worker-01"}
}
