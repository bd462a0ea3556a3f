package producer

// Standard event types of the Events and Metrics Reference. Any other non-empty type is allowed.
const (
	EventGraphStarted   = "graph_started"   // graph execution begins
	EventGraphFinished  = "graph_finished"  // graph execution completes successfully
	EventGraphFailed    = "graph_failed"    // graph execution fails
	EventGraphCancelled = "graph_cancelled" // graph execution is cancelled

	EventNodeStarted  = "node_started"  // node execution begins
	EventNodeFinished = "node_finished" // node execution completes successfully
	EventNodeFailed   = "node_failed"   // node execution fails
	EventNodeRetry    = "node_retry"    // node retry attempt

	EventRPCRequestReceived  = "rpc_request_received"  // RPC request received
	EventRPCRequestCompleted = "rpc_request_completed" // RPC request completed
	EventRPCNotificationSent = "rpc_notification_sent" // server notification sent
	EventRPCConnectionOpened = "rpc_connection_opened" // WebSocket connection opened
	EventRPCConnectionClosed = "rpc_connection_closed" // WebSocket connection closed

	EventAgentStarted  = "agent_started"   // agent processing begins
	EventAgentStep     = "agent_step"      // agent reasoning step
	EventAgentToolCall = "agent_tool_call" // tool execution
	EventAgentFinished = "agent_finished"  // agent processing completes
	EventLLMAPICall    = "llm_api_call"    // LLM API invocation

	EventCheckpoint = "checkpoint" // custom checkpoint reached
	EventMilestone  = "milestone"  // business milestone
	EventAlert      = "alert"      // alert condition detected
)

// Standard metric names of the Events and Metrics Reference, recorded by the lifecycle helpers.
const (
	MetricNodeExecutionCount  = "node_execution_count"  // counter, count: executions per node
	MetricNodeDuration        = "node_duration"         // histogram, seconds
	MetricNodeErrorCount      = "node_error_count"      // counter, count: failures per node
	MetricGraphExecutionCount = "graph_execution_count" // counter, count: graph runs
	MetricGraphDuration       = "graph_duration"        // histogram, seconds
	MetricLLMInputTokens      = "llm_input_tokens"      // counter, count
	MetricLLMOutputTokens     = "llm_output_tokens"     // counter, count
	MetricLLMAPICost          = "llm_api_cost"          // counter, dollars
	MetricToolExecutionCount  = "tool_execution_count"  // counter, count
)
