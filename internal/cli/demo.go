package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/pipeline"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

const demoUsage = `Usage: tributary demo

Runs the whole pipeline in one process and prints what the query service answers:
  producer SDK -> Kafka -> consumer -> ClickHouse -> query service (HTTP) -> this report.

Kafka is an embedded in-process broker (franz-go kfake) unless TRIBUTARY_DEMO_KAFKA=external, which
uses TRIBUTARY_KAFKA_BROKERS. ClickHouse is the real server at TRIBUTARY_CLICKHOUSE_ADDR (make demo
starts a local one). The demo migrates the database first.

The load is TRIBUTARY_DEMO_GRAPH_RUNS simulated graph runs (default 250), each recording the spec's
lifecycle events (graph_started, node_started, node_finished or node_failed, node_retry,
graph_finished or graph_failed) and metrics (node_duration, node_execution_count, graph_duration,
llm_api_cost, cpu_percent).

Examples:
  make demo                                   (starts ClickHouse, runs this, stops it)
  TRIBUTARY_DEMO_GRAPH_RUNS=1000 tributary demo
  TRIBUTARY_DEMO_KAFKA=external TRIBUTARY_KAFKA_BROKERS=127.0.0.1:19092 tributary demo
`

type demoConfig struct {
	Kafka      kafka.Config `envconfig:"KAFKA"`
	ClickHouse chdb.Config  `envconfig:"CLICKHOUSE"`
	KafkaMode  string       `envconfig:"DEMO_KAFKA" default:"embedded"`
	GraphRuns  int          `envconfig:"DEMO_GRAPH_RUNS" default:"250"`
	ROUser     string       `envconfig:"DEMO_QUERY_USER" default:"tributary_ro"`
	ROPassword string       `envconfig:"DEMO_QUERY_PASSWORD" default:"tributary_ro"`
}

func (c *demoConfig) Validate() error {
	errs := []error{c.ClickHouse.Validate(), c.Kafka.Validate()}
	if c.KafkaMode != "embedded" && c.KafkaMode != "external" {
		errs = append(errs, fmt.Errorf("TRIBUTARY_DEMO_KAFKA %q: want embedded or external", c.KafkaMode))
	}
	if c.GraphRuns < 1 || c.GraphRuns > 100000 {
		errs = append(errs, fmt.Errorf("TRIBUTARY_DEMO_GRAPH_RUNS %d: want 1..100000", c.GraphRuns))
	}
	return errors.Join(errs...)
}

func runDemo(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var cfg demoConfig
	if err := loadConfig(&cfg); err != nil {
		return err
	}
	out := env.Stdout
	if cfg.KafkaMode == "embedded" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, cfg.Kafka.Topics()...))
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer cluster.Close()
		cfg.Kafka.Brokers = cluster.ListenAddrs()
		fmt.Fprintf(out, "Kafka:      embedded broker (kfake) at %s\n", strings.Join(cfg.Kafka.Brokers, ","))
	} else {
		if err := kafka.EnsureTopics(ctx, cfg.Kafka); err != nil {
			return err
		}
		fmt.Fprintf(out, "Kafka:      %s\n", strings.Join(cfg.Kafka.Brokers, ","))
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse, false)
	if err != nil {
		return err
	}
	_, err = chdb.MigrateConfig(ctx, conn, cfg.ClickHouse)
	conn.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ClickHouse: %s, database %s (migrated)\n", strings.Join(cfg.ClickHouse.Addr, ","), cfg.ClickHouse.Database)

	ccfg := consumer.DefaultConfig()
	ccfg.Kafka, ccfg.ClickHouse, ccfg.Group = cfg.Kafka, cfg.ClickHouse, "tributary-demo"
	ccfg.BatchMaxRecords, ccfg.BatchInterval, ccfg.RetryBackoffMax = 10000, 300*time.Millisecond, 5*time.Second
	ro := cfg.ClickHouse
	ro.User, ro.Password = cfg.ROUser, cfg.ROPassword
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse, qcfg.Listen, qcfg.Timeout = ro, "127.0.0.1:0", 30*time.Second
	stack, err := pipeline.Start(ctx, ccfg, qcfg, env.Log)
	if err != nil {
		return err
	}
	defer func() {
		if err := stack.Stop(); err != nil {
			env.Log.Error("stopping the pipeline", "err", err)
		}
	}()
	fmt.Fprintf(out, "Query API:  %s\n\n", stack.QueryURL)

	run := fmt.Sprintf("demo-%d", time.Now().UnixNano())
	pcfg := producer.DefaultConfig()
	pcfg.Kafka, pcfg.Service, pcfg.Host, pcfg.MaxBufferedRecords = cfg.Kafka, "demo-etl", "demo-host", 50000
	p, err := producer.New(pcfg)
	if err != nil {
		return err
	}
	start := time.Now()
	load, err := sendDemoLoad(ctx, p, run, cfg.GraphRuns)
	if cerr := p.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Sent %d events and %d metrics through the SDK (run %s); Kafka acknowledged all in %v.\n",
		load.events, load.metrics, run, time.Since(start).Round(time.Millisecond))

	want := uint64(load.events + load.metrics)
	for stack.Worker.Stats().Written < want {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(out, "Consumer wrote them to ClickHouse in %v (%+v).\n\n", time.Since(start).Round(time.Millisecond), stack.Worker.Stats())
	return printDemoReport(ctx, out, query.NewClient(stack.QueryURL, nil), run, load)
}

type demoLoad struct {
	events, metrics int
	trace           string // one trace to show in order
}

// sendDemoLoad records graph runs shaped like the spec's automatic lifecycle recording.
func sendDemoLoad(ctx context.Context, p *producer.Client, run string, graphs int) (demoLoad, error) {
	rng := rand.New(rand.NewPCG(42, 7))
	nodes := []string{"load_1", "transform_1", "validate_1", "save_1"}
	var l demoLoad
	t0 := time.Now().Add(-time.Duration(graphs) * time.Second)
	rec := func(e producer.Event) error { l.events++; return p.RecordEvent(ctx, e) }
	met := func(m producer.Metric) error { l.metrics++; return p.RecordMetric(ctx, m) }
	for g := range graphs {
		trace := fmt.Sprintf("%s-trace-%04d", run, g)
		if g == 0 {
			l.trace = trace
		}
		ts := t0.Add(time.Duration(g) * time.Second)
		common := map[string]any{"demo_run": run, "graph_id": "production_workflow"}
		if err := rec(producer.Event{TraceID: trace, Type: "graph_started", Name: "Graph Started", Timestamp: ts, Attributes: common}); err != nil {
			return l, err
		}
		failed := false
		for i, node := range nodes {
			ts = ts.Add(time.Duration(10+rng.IntN(40)) * time.Millisecond)
			attrs := map[string]any{"demo_run": run, "node_id": node, "node_type": "Node", "execution_count": g + 1}
			if err := rec(producer.Event{TraceID: trace, SpanID: fmt.Sprintf("%s-span-%d", trace, i), Type: "node_started", Name: node + " Started", Timestamp: ts, Attributes: attrs}); err != nil {
				return l, err
			}
			d := 0.005 + rng.ExpFloat64()*0.05
			if rng.IntN(25) == 0 {
				attrs["error"] = "timeout after 30s"
				attrs["attempt"] = 1
				if err := rec(producer.Event{TraceID: trace, Type: "node_failed", Name: node + " Failed", Timestamp: ts.Add(time.Millisecond), Attributes: attrs}); err != nil {
					return l, err
				}
				if err := met(producer.Metric{TraceID: trace, Name: "node_error_count", Value: 1, Unit: "count", AggregationType: schemas.Counter, Timestamp: ts, Attributes: map[string]any{"node_id": node, "demo_run": run}}); err != nil {
					return l, err
				}
				failed = true
				break
			}
			attrs["outputs"] = map[string]any{"success": true, "rows": 1000 + rng.IntN(9000)}
			if err := rec(producer.Event{TraceID: trace, Type: "node_finished", Name: node + " Completed", Timestamp: ts.Add(time.Duration(d * float64(time.Second))), Attributes: attrs}); err != nil {
				return l, err
			}
			labels := map[string]any{"node_id": node, "demo_run": run}
			if err := met(producer.Metric{TraceID: trace, Name: "node_duration", Value: d, Unit: "seconds", AggregationType: schemas.Histogram, Timestamp: ts, Attributes: labels}); err != nil {
				return l, err
			}
			if err := met(producer.Metric{TraceID: trace, Name: "node_execution_count", Value: 1, Unit: "count", AggregationType: schemas.Counter, Timestamp: ts, Attributes: labels}); err != nil {
				return l, err
			}
			ts = ts.Add(time.Duration(d * float64(time.Second))) // the next node starts after this one
		}
		end := "graph_finished"
		if failed {
			end = "graph_failed"
		}
		if err := rec(producer.Event{TraceID: trace, Type: end, Name: "Graph Done", Timestamp: ts.Add(100 * time.Millisecond), Attributes: common}); err != nil {
			return l, err
		}
		if err := met(producer.Metric{Name: "cpu_percent", Value: 20 + rng.Float64()*60, Unit: "percent", AggregationType: schemas.Gauge, Timestamp: ts, Attributes: map[string]any{"host": fmt.Sprintf("worker-%02d", g%4), "demo_run": run}}); err != nil {
			return l, err
		}
		if err := met(producer.Metric{TraceID: trace, Name: "llm_api_cost", Value: 0.001 * float64(1+rng.IntN(20)), Unit: "dollars", AggregationType: schemas.Counter, Timestamp: ts, Attributes: map[string]any{"model": "demo-model", "demo_run": run}}); err != nil {
			return l, err
		}
	}
	return l, nil
}

func printDemoReport(ctx context.Context, out io.Writer, qc *query.Client, run string, load demoLoad) error {
	only := map[string]string{"demo_run": run}
	events, err := query.All(ctx, query.Filter{Attributes: only, Limit: 10000}, qc.QueryEvents)
	if err != nil {
		return err
	}
	metrics, err := query.All(ctx, query.Filter{Attributes: only, Limit: 10000}, qc.QueryMetrics)
	if err != nil {
		return err
	}
	if len(events) != load.events || len(metrics) != load.metrics {
		return fmt.Errorf("query service returned %d events and %d metrics of this run, %d and %d were sent",
			len(events), len(metrics), load.events, load.metrics)
	}
	fmt.Fprintf(out, "GET /v1/events?attr.demo_run=%s -> %d events; /v1/metrics -> %d points (all that were sent)\n\n", run, len(events), len(metrics))

	byType := map[string]int{}
	for _, e := range events {
		byType[e.Type]++
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TYPE\tCOUNT")
	for _, k := range sortedMapKeys(byType) {
		fmt.Fprintf(tw, "%s\t%d\n", k, byType[k])
	}
	tw.Flush()

	failures, _, err := qc.QueryEvents(ctx, query.Filter{Types: []string{"node_failed"}, Attributes: only, Limit: 5})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nGET /v1/events?type=node_failed&limit=5 (the spec's \"node failure events\"):\n")
	for _, e := range failures {
		fmt.Fprintf(out, "  Node failed: %v  error=%q  trace=%s\n", e.Attributes["node_id"], e.Attributes["error"], e.TraceID)
	}

	trace, _, err := qc.QueryEvents(ctx, query.Filter{TraceID: load.trace, Limit: 100})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nGET /v1/events?trace_id=%s (one trace, in time order):\n", load.trace)
	for _, e := range trace {
		fmt.Fprintf(out, "  %s  %-14s %s\n", e.Timestamp.Format("15:04:05.000000"), e.Type, e.Name)
	}

	durations, err := query.All(ctx, query.Filter{Name: "node_duration", Attributes: only, Limit: 10000}, qc.QueryMetrics)
	if err != nil {
		return err
	}
	if len(durations) == 0 {
		return errors.New("no node_duration points came back")
	}
	perNode := map[string][]float64{}
	for _, m := range durations {
		n, _ := m.Attributes["node_id"].(string)
		perNode[n] = append(perNode[n], m.Value)
	}
	fmt.Fprintf(out, "\nGET /v1/metrics?name=node_duration (the spec's latency statistics, per node):\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCOUNT\tMIN (s)\tMAX (s)\tAVG (s)")
	for _, n := range sortedMapKeys(perNode) {
		v := perNode[n]
		sort.Float64s(v)
		sum := 0.0
		for _, x := range v {
			sum += x
		}
		fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%.4f\n", n, len(v), v[0], v[len(v)-1], sum/float64(len(v)))
	}
	tw.Flush()

	// The same question answered by the rollups the consumer computed (minute windows merged).
	start := durations[0].Timestamp.Truncate(time.Minute)
	end := durations[len(durations)-1].Timestamp.Truncate(time.Minute).Add(time.Minute)
	for _, m := range durations {
		start = minTime(start, m.Timestamp.Truncate(time.Minute))
		end = maxTime(end, m.Timestamp.Truncate(time.Minute).Add(time.Minute))
	}
	a, err := qc.Aggregate(ctx, query.AggregateQuery{Name: "node_duration", Bucket: 24 * time.Hour, Start: start, End: end,
		Aggregates: []string{"count", "avg", "p50", "p95", "p99"}, GroupBy: []string{"node_id"}, Attributes: only})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nGET /v1/aggregate?name=node_duration&group_by=node_id&aggregates=count,avg,p50,p95,p99 (answered from %s):\n", a.Source)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCOUNT\tAVG (s)\tP50 (s)\tP95 (s)\tP99 (s)")
	for _, sr := range a.Series {
		for _, p := range sr.Points {
			v := p.Values
			fmt.Fprintf(tw, "%s\t%.0f\t%.4f\t%.4f\t%.4f\t%.4f\n", sr.Group["node_id"], v["count"], v["avg"], v["p50"], v["p95"], v["p99"])
		}
	}
	tw.Flush()
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
