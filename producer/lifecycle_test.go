package producer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// realClient returns a client on fresh topics of the real broker and a function that reads back
// everything recorded so far (after a Flush).
func realClient(t *testing.T, mod func(*producer.Config)) (*producer.Client, func() ([]schemas.Event, []schemas.Metric)) {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	topics := testenv.Topics(t, brokers, 2, "events", "metrics")
	cfg := producer.DefaultConfig()
	cfg.Kafka = kafka.Config{Brokers: brokers, ClientID: "t", EventsTopic: topics[0], MetricsTopic: topics[1], TopicPartitions: 2, TopicReplication: 1}
	cfg.Service = "test"
	if mod != nil {
		mod(&cfg)
	}
	c, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	codec, _ := schemas.NewCodec()
	read := func() ([]schemas.Event, []schemas.Metric) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		want := c.Stats().Sent
		var es []schemas.Event
		var ms []schemas.Metric
		for uint64(len(es)+len(ms)) < want && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if r.Topic == topics[0] {
					e, err := codec.DecodeEvent(r.Value)
					if err != nil {
						t.Fatal(err)
					}
					es = append(es, e)
				} else {
					m, err := codec.DecodeMetric(r.Value)
					if err != nil {
						t.Fatal(err)
					}
					ms = append(ms, m)
				}
			})
		}
		return es, ms // events of one trace share a partition: Kafka's order is the recorded order
	}
	return c, read
}

func TestSamplingKeepsOrDropsWholeTraces(t *testing.T) {
	c, read := realClient(t, func(cfg *producer.Config) { cfg.SampleRate = 0.3 })
	ctx := context.Background()
	const traces, per = 300, 4
	for i := range traces {
		for j := range per {
			if err := c.RecordEvent(ctx, producer.Event{TraceID: fmt.Sprintf("trace-%d", i), Type: "t", Name: fmt.Sprint(j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 10 {
		if err := c.RecordEvent(ctx, producer.Event{Type: "global", Name: "no trace"}); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := read()
	perTrace := map[string]int{}
	globals := 0
	for _, e := range es {
		if e.TraceID == "" {
			globals++
			continue
		}
		perTrace[e.TraceID]++
	}
	other, _ := producer.New(func() producer.Config { cfg := producer.DefaultConfig(); cfg.SampleRate = 0.3; return cfg }())
	defer other.Close(ctx)
	for i := range traces {
		id := fmt.Sprintf("trace-%d", i)
		n := perTrace[id]
		if n != 0 && n != per {
			t.Fatalf("%s: %d of %d events kept; a trace must be kept or dropped whole", id, n, per)
		}
		if (n == per) != other.Sampled(id) {
			t.Fatalf("%s: another client decides differently", id)
		}
	}
	if globals != 10 {
		t.Fatalf("%d of 10 records without a trace were kept; all must be", globals)
	}
	kept := float64(len(perTrace)) / traces
	if kept < 0.2 || kept > 0.4 {
		t.Fatalf("kept %.2f of traces at rate 0.3", kept)
	}
	if s := c.Stats(); s.Sampled != uint64((traces-len(perTrace))*per) {
		t.Fatalf("Stats.Sampled = %d", s.Sampled)
	}
}

type rec struct{ kind, name string }

func sequence(es []schemas.Event, ms []schemas.Metric) []rec {
	var out []rec
	for _, e := range es {
		out = append(out, rec{"event", e.Type})
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, rec{"metric", n})
	}
	return out
}

func TestLifecycleHelpersEmitTheDocumentedRecords(t *testing.T) {
	boom := errors.New("boom")
	f := func(name string, run func(ctx context.Context, c *producer.Client) error, wantErr error, want []rec, check func(t *testing.T, es []schemas.Event, ms []schemas.Metric)) {
		t.Run(name, func(t *testing.T) {
			c, read := realClient(t, nil)
			err := run(context.Background(), c)
			if !errors.Is(err, wantErr) && !(wantErr == nil && err == nil) {
				t.Fatalf("returned %v, want %v", err, wantErr)
			}
			es, ms := read()
			if got := sequence(es, ms); !reflect.DeepEqual(got, want) {
				t.Fatalf("recorded\n %v\nwant\n %v", got, want)
			}
			trace := es[0].TraceID
			for _, e := range es {
				if e.TraceID != trace || trace == "" {
					t.Fatalf("records are not all in one trace: %q vs %q", e.TraceID, trace)
				}
			}
			if check != nil {
				check(t, es, ms)
			}
		})
	}
	ok := func(context.Context) error { return nil }
	node := producer.NodeOptions{NodeID: "transform_1", NodeType: "TransformNode"}

	f("graph and node succeed", func(ctx context.Context, c *producer.Client) error {
		return c.RunGraph(ctx, "production_workflow", nil, func(ctx context.Context) error { return c.RunNode(ctx, node, ok) })
	}, nil, []rec{{"event", "graph_started"}, {"event", "node_started"}, {"event", "node_finished"}, {"event", "graph_finished"},
		{"metric", "graph_duration"}, {"metric", "graph_execution_count"}, {"metric", "node_duration"}, {"metric", "node_execution_count"}},
		func(t *testing.T, es []schemas.Event, ms []schemas.Metric) {
			if es[1].SpanID == "" || es[1].SpanID == es[0].SpanID || es[1].Attributes["node_id"] != "transform_1" || es[0].Attributes["graph_id"] != "production_workflow" {
				t.Fatalf("spans or attributes: %+v %+v", es[0], es[1])
			}
		})

	f("node fails", func(ctx context.Context, c *producer.Client) error {
		return c.RunGraph(ctx, "g", nil, func(ctx context.Context) error {
			return c.RunNode(ctx, node, func(context.Context) error { return boom })
		})
	}, boom, []rec{{"event", "graph_started"}, {"event", "node_started"}, {"event", "node_failed"}, {"event", "graph_failed"},
		{"metric", "graph_duration"}, {"metric", "graph_execution_count"}, {"metric", "node_duration"}, {"metric", "node_error_count"}, {"metric", "node_execution_count"}},
		func(t *testing.T, es []schemas.Event, _ []schemas.Metric) {
			if es[2].Attributes["error"] != "boom" || es[3].Attributes["error"] != "boom" {
				t.Fatalf("error attribute missing: %v %v", es[2].Attributes, es[3].Attributes)
			}
		})

	f("node retries then succeeds", func(ctx context.Context, c *producer.Client) error {
		n := 0
		opt := node
		opt.Attempts, opt.Backoff = 3, time.Millisecond
		return c.RunNode(ctx, opt, func(context.Context) error {
			if n++; n < 3 {
				return boom
			}
			return nil
		})
	}, nil, []rec{{"event", "node_started"}, {"event", "node_failed"}, {"event", "node_retry"}, {"event", "node_failed"}, {"event", "node_retry"}, {"event", "node_finished"},
		{"metric", "node_duration"}, {"metric", "node_error_count"}, {"metric", "node_error_count"}, {"metric", "node_execution_count"}}, nil)

	f("graph cancelled", func(ctx context.Context, c *producer.Client) error {
		ctx, cancel := context.WithCancel(ctx)
		return c.RunGraph(ctx, "g", nil, func(ctx context.Context) error { cancel(); return ctx.Err() })
	}, context.Canceled, []rec{{"event", "graph_started"}, {"event", "graph_cancelled"}, {"metric", "graph_duration"}, {"metric", "graph_execution_count"}}, nil)

	f("rpc", func(ctx context.Context, c *producer.Client) error {
		return errors.Join(
			c.RPCRequest(ctx, "tools/list", nil, func(ctx context.Context) error {
				return errors.Join(c.RPCEvent(ctx, producer.EventRPCConnectionOpened, "conn-1", nil),
					c.RPCEvent(ctx, producer.EventRPCNotificationSent, "conn-1", nil),
					c.RPCEvent(ctx, producer.EventRPCConnectionClosed, "conn-1", nil))
			}))
	}, nil, []rec{{"event", "rpc_request_received"}, {"event", "rpc_connection_opened"}, {"event", "rpc_notification_sent"}, {"event", "rpc_connection_closed"}, {"event", "rpc_request_completed"}}, nil)

	f("agent", func(ctx context.Context, c *producer.Client) error {
		a, err := c.StartAgent(ctx, "researcher", nil)
		return errors.Join(err, a.Step(nil), a.ToolCall("search", 5*time.Millisecond, nil), a.LLMCall("model-x", 120, 40, 0.0031), a.Finish(nil))
	}, nil, []rec{{"event", "agent_started"}, {"event", "agent_step"}, {"event", "agent_tool_call"}, {"event", "llm_api_call"}, {"event", "agent_finished"},
		{"metric", "llm_api_cost"}, {"metric", "llm_input_tokens"}, {"metric", "llm_output_tokens"}, {"metric", "tool_execution_count"}},
		func(t *testing.T, _ []schemas.Event, ms []schemas.Metric) {
			for _, m := range ms {
				if m.Name == "llm_api_cost" && (m.Value != 0.0031 || m.Unit != "dollars" || m.Attributes["model"] != "model-x") {
					t.Fatalf("llm_api_cost %+v", m)
				}
			}
		})
}

// Switching a kind off means none of its records reach Kafka; the other kind still does.
func TestDisabledKindReachesNothing(t *testing.T) {
	c, read := realClient(t, func(cfg *producer.Config) { cfg.EnableEvents = false })
	ctx := context.Background()
	for range 5 {
		if err := c.RecordEvent(ctx, producer.Event{Type: "t", Name: "off"}); err != nil {
			t.Fatal(err)
		}
		if err := c.RecordMetric(ctx, producer.Metric{Name: "on", Value: 1, AggregationType: schemas.Counter}); err != nil {
			t.Fatal(err)
		}
	}
	es, ms := read()
	if len(es) != 0 || len(ms) != 5 || c.Stats().Disabled != 5 {
		t.Fatalf("%d events and %d metrics reached Kafka, stats %+v", len(es), len(ms), c.Stats())
	}
}
