package producer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/tributary/tributary/schemas"
)

// Lifecycle recording: the spec's automatic events and metrics, for Go code that runs graphs of
// nodes, serves RPCs or drives agents. Every helper records through c and carries the trace and
// span in ctx (see WithSpan); record errors are returned joined with fn's error, never swallowed.

func merge(base map[string]any, extra map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(extra))
	maps.Copy(out, extra)
	maps.Copy(out, base) // the helper's own keys win
	return out
}

func cancelled(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || (err != nil && ctx.Err() != nil)
}

// RunGraph runs fn as a graph execution in a new span (in ctx's trace, or a new trace) and records:
// graph_started; then graph_finished, graph_failed (attribute "error") or graph_cancelled (when fn
// returns a context error or ctx ends); graph_execution_count (counter, 1) and graph_duration
// (histogram, seconds). Every record carries graph_id and attrs. It returns fn's error joined with
// any recording error.
func (c *Client) RunGraph(ctx context.Context, graphID string, attrs map[string]any, fn func(ctx context.Context) error) error {
	ctx, _ = StartSpan(ctx)
	base := merge(map[string]any{"graph_id": graphID}, attrs)
	recErr := c.RecordEvent(ctx, Event{Type: EventGraphStarted, Name: "Graph " + graphID + " Started", Attributes: base})
	start := time.Now()
	err := fn(ctx)
	dur := time.Since(start).Seconds()
	end := Event{Type: EventGraphFinished, Name: "Graph " + graphID + " Completed", Attributes: merge(base, map[string]any{"duration_seconds": dur})}
	switch {
	case cancelled(ctx, err):
		end.Type, end.Name = EventGraphCancelled, "Graph "+graphID+" Cancelled"
	case err != nil:
		end.Type, end.Name = EventGraphFailed, "Graph "+graphID+" Failed"
		end.Attributes["error"] = err.Error()
	}
	recCtx := context.WithoutCancel(ctx) // a cancelled graph's end is still recorded
	recErr = errors.Join(recErr,
		c.RecordEvent(recCtx, end),
		c.RecordMetric(recCtx, Metric{Name: MetricGraphExecutionCount, Value: 1, Unit: "count", AggregationType: schemas.Counter, Attributes: base}),
		c.RecordMetric(recCtx, Metric{Name: MetricGraphDuration, Value: dur, Unit: "seconds", AggregationType: schemas.Histogram, Attributes: base}))
	return errors.Join(err, recErr)
}

// NodeOptions describe a node execution for RunNode.
type NodeOptions struct {
	NodeID   string
	NodeType string
	// Attempts is how many times fn may run (default 1); between attempts node_retry is recorded
	// and Backoff waited.
	Attempts int
	Backoff  time.Duration
	// Attributes are added to every record.
	Attributes map[string]any
}

// RunNode runs fn as a node execution in a new span and records: node_started; on failure
// node_failed (attributes "error" and "attempt") and node_error_count, then node_retry before each
// further attempt; node_finished on success; node_execution_count and node_duration (seconds, all
// attempts) in every case. Records carry node_id, node_type and execution_count (the attempt).
func (c *Client) RunNode(ctx context.Context, opt NodeOptions, fn func(ctx context.Context) error) error {
	if opt.Attempts < 1 {
		opt.Attempts = 1
	}
	ctx, _ = StartSpan(ctx)
	base := merge(map[string]any{"node_id": opt.NodeID, "node_type": opt.NodeType}, opt.Attributes)
	labels := merge(map[string]any{"node_id": opt.NodeID}, nil)
	var recErr, err error
	start := time.Now()
	recErr = c.RecordEvent(ctx, Event{Type: EventNodeStarted, Name: opt.NodeID + " Started", Attributes: base})
	for attempt := 1; attempt <= opt.Attempts; attempt++ {
		if attempt > 1 {
			recErr = errors.Join(recErr, c.RecordEvent(ctx, Event{Type: EventNodeRetry, Name: opt.NodeID + " Retry",
				Attributes: merge(base, map[string]any{"attempt": attempt, "previous_error": err.Error()})}))
			select {
			case <-time.After(opt.Backoff):
			case <-ctx.Done():
			}
		}
		if err = fn(ctx); err == nil || cancelled(ctx, err) {
			break
		}
		recCtx := context.WithoutCancel(ctx)
		recErr = errors.Join(recErr,
			c.RecordEvent(recCtx, Event{Type: EventNodeFailed, Name: opt.NodeID + " Failed",
				Attributes: merge(base, map[string]any{"error": err.Error(), "attempt": attempt})}),
			c.RecordMetric(recCtx, Metric{Name: MetricNodeErrorCount, Value: 1, Unit: "count", AggregationType: schemas.Counter, Attributes: labels}))
	}
	dur := time.Since(start).Seconds()
	recCtx := context.WithoutCancel(ctx)
	if err == nil {
		recErr = errors.Join(recErr, c.RecordEvent(recCtx, Event{Type: EventNodeFinished, Name: opt.NodeID + " Completed",
			Attributes: merge(base, map[string]any{"duration_seconds": dur})}))
	} else if cancelled(ctx, err) {
		recErr = errors.Join(recErr, c.RecordEvent(recCtx, Event{Type: EventNodeFailed, Name: opt.NodeID + " Cancelled",
			Attributes: merge(base, map[string]any{"error": err.Error(), "cancelled": true})}))
	}
	recErr = errors.Join(recErr,
		c.RecordMetric(recCtx, Metric{Name: MetricNodeExecutionCount, Value: 1, Unit: "count", AggregationType: schemas.Counter, Attributes: labels}),
		c.RecordMetric(recCtx, Metric{Name: MetricNodeDuration, Value: dur, Unit: "seconds", AggregationType: schemas.Histogram, Attributes: labels}))
	return errors.Join(err, recErr)
}

// RPCRequest records rpc_request_received, runs fn, then records rpc_request_completed with
// "method", "status" ("ok" or "error"), "duration_seconds" and, on failure, "error".
func (c *Client) RPCRequest(ctx context.Context, method string, attrs map[string]any, fn func(ctx context.Context) error) error {
	ctx, _ = StartSpan(ctx)
	base := merge(map[string]any{"method": method}, attrs)
	recErr := c.RecordEvent(ctx, Event{Type: EventRPCRequestReceived, Name: method + " Received", Attributes: base})
	start := time.Now()
	err := fn(ctx)
	done := merge(base, map[string]any{"status": "ok", "duration_seconds": time.Since(start).Seconds()})
	if err != nil {
		done["status"], done["error"] = "error", err.Error()
	}
	recErr = errors.Join(recErr, c.RecordEvent(context.WithoutCancel(ctx), Event{Type: EventRPCRequestCompleted, Name: method + " Completed", Attributes: done}))
	return errors.Join(err, recErr)
}

// RPCEvent records one of the RPC connection events (rpc_notification_sent,
// rpc_connection_opened, rpc_connection_closed) with "connection_id".
func (c *Client) RPCEvent(ctx context.Context, eventType, connectionID string, attrs map[string]any) error {
	switch eventType {
	case EventRPCNotificationSent, EventRPCConnectionOpened, EventRPCConnectionClosed:
	default:
		return fmt.Errorf("rpc event type %q: want %s, %s or %s", eventType, EventRPCNotificationSent, EventRPCConnectionOpened, EventRPCConnectionClosed)
	}
	return c.RecordEvent(ctx, Event{Type: eventType, Name: eventType, Attributes: merge(map[string]any{"connection_id": connectionID}, attrs)})
}

// Agent records an agent's run: Start, then Step, ToolCall and LLMCall as they happen, then Finish.
// Make one with Client.StartAgent. Safe for use by one goroutine at a time.
type Agent struct {
	c     *Client
	ctx   context.Context
	id    string
	start time.Time
	steps int
}

// StartAgent records agent_started in a new span and returns the agent's recorder.
func (c *Client) StartAgent(ctx context.Context, agentID string, attrs map[string]any) (*Agent, error) {
	ctx, _ = StartSpan(ctx)
	a := &Agent{c: c, ctx: ctx, id: agentID, start: time.Now()}
	return a, c.RecordEvent(ctx, Event{Type: EventAgentStarted, Name: agentID + " Started", Attributes: merge(map[string]any{"agent_id": agentID}, attrs)})
}

// Context is the agent's context (its span), for work done on its behalf.
func (a *Agent) Context() context.Context { return a.ctx }

// Step records agent_step with the step number and attrs.
func (a *Agent) Step(attrs map[string]any) error {
	a.steps++
	return a.c.RecordEvent(a.ctx, Event{Type: EventAgentStep, Name: fmt.Sprintf("%s Step %d", a.id, a.steps),
		Attributes: merge(map[string]any{"agent_id": a.id, "step": a.steps}, attrs)})
}

// ToolCall records agent_tool_call ("tool", "duration_seconds", "error" on failure) and
// tool_execution_count.
func (a *Agent) ToolCall(tool string, duration time.Duration, err error) error {
	attrs := map[string]any{"agent_id": a.id, "tool": tool, "duration_seconds": duration.Seconds(), "success": err == nil}
	if err != nil {
		attrs["error"] = err.Error()
	}
	return errors.Join(
		a.c.RecordEvent(a.ctx, Event{Type: EventAgentToolCall, Name: tool + " Called", Attributes: attrs}),
		a.c.RecordMetric(a.ctx, Metric{Name: MetricToolExecutionCount, Value: 1, Unit: "count", AggregationType: schemas.Counter,
			Attributes: map[string]any{"agent_id": a.id, "tool": tool}}))
}

// LLMCall records llm_api_call and the metrics llm_input_tokens, llm_output_tokens and llm_api_cost
// (dollars), labelled with the model.
func (a *Agent) LLMCall(model string, inputTokens, outputTokens int, costDollars float64) error {
	labels := map[string]any{"agent_id": a.id, "model": model}
	return errors.Join(
		a.c.RecordEvent(a.ctx, Event{Type: EventLLMAPICall, Name: model + " Call",
			Attributes: merge(labels, map[string]any{"input_tokens": inputTokens, "output_tokens": outputTokens, "cost": costDollars})}),
		a.c.RecordMetric(a.ctx, Metric{Name: MetricLLMInputTokens, Value: float64(inputTokens), Unit: "count", AggregationType: schemas.Counter, Attributes: labels}),
		a.c.RecordMetric(a.ctx, Metric{Name: MetricLLMOutputTokens, Value: float64(outputTokens), Unit: "count", AggregationType: schemas.Counter, Attributes: labels}),
		a.c.RecordMetric(a.ctx, Metric{Name: MetricLLMAPICost, Value: costDollars, Unit: "dollars", AggregationType: schemas.Counter, Attributes: labels}))
}

// Finish records agent_finished with the number of steps, the duration and, on failure, "error".
func (a *Agent) Finish(err error) error {
	attrs := map[string]any{"agent_id": a.id, "steps": a.steps, "duration_seconds": time.Since(a.start).Seconds(), "success": err == nil}
	if err != nil {
		attrs["error"] = err.Error()
	}
	return a.c.RecordEvent(context.WithoutCancel(a.ctx), Event{Type: EventAgentFinished, Name: a.id + " Finished", Attributes: attrs})
}
