-- events_by_attr: an inverted index of events' top-level attributes, one row per (event, attribute),
-- ordered by (tenant, attr_key, attr_value, timestamp_us), so that a filter on an attribute reads
-- the matching events by key instead of scanning events (2.3 s -> tens of ms at 10M events; see
-- BENCHMARKS.md). It holds what the query service filters on (never the attributes' JSON text);
-- the query service finds the page of matching events here, then reads those events from events
-- by its sorting key. A materialized view writing TO it keeps it current; existing events are
-- indexed once.

CREATE TABLE IF NOT EXISTS {db}.events_by_attr
(
    tenant       String,
    attr_key     String,
    attr_value   String,
    timestamp    DateTime,
    timestamp_us UInt64,
    event_id     String,
    type         String,
    name         String,
    trace_id     String,
    span_id      String,
    attr_keys    Array(String),
    attr_values  Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (tenant, attr_key, attr_value, timestamp_us, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_attr_mv TO {db}.events_by_attr AS
SELECT tenant, attr_key, attr_value, timestamp, timestamp_us, event_id, type, name, trace_id, span_id, attr_keys, attr_values
FROM {db}.events ARRAY JOIN attr_keys AS attr_key, attr_values AS attr_value;

INSERT INTO {db}.events_by_attr (tenant, attr_key, attr_value, timestamp, timestamp_us, event_id, type, name, trace_id, span_id, attr_keys, attr_values)
SELECT tenant, attr_key, attr_value, timestamp, timestamp_us, event_id, type, name, trace_id, span_id, attr_keys, attr_values
FROM {db}.events ARRAY JOIN attr_keys AS attr_key, attr_values AS attr_value;
