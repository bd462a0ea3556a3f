-- events_by_trace: the events that belong to a trace, ordered by trace, so that a trace's events
-- are read with the sorting key instead of a scan (1.7 s -> milliseconds at 10M events). Kept up to
-- date by a materialized view writing TO it (portable across ClickHouse versions, unlike an
-- implicit .inner table); existing events are copied once. Same columns as events.

CREATE TABLE IF NOT EXISTS {db}.events_by_trace
(
    tenant       String,
    event_id     String,
    trace_id     String,
    span_id      String,
    type         String,
    name         String,
    timestamp    DateTime,
    timestamp_us UInt64,
    attributes   String,
    attr_keys    Array(String),
    attr_values  Array(String),
    service      String,
    host         String,
    ingested_at  DateTime
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (tenant, trace_id, timestamp_us, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_trace_mv TO {db}.events_by_trace AS
SELECT tenant, event_id, trace_id, span_id, type, name, timestamp, timestamp_us, attributes, attr_keys, attr_values,
       service, host, ingested_at
FROM {db}.events
WHERE trace_id != '';

INSERT INTO {db}.events_by_trace
SELECT tenant, event_id, trace_id, span_id, type, name, timestamp, timestamp_us, attributes, attr_keys, attr_values,
       service, host, ingested_at
FROM {db}.events
WHERE trace_id != '';
