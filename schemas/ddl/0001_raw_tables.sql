-- Raw events and metrics, one row per record. Valid on ClickHouse 18.16 and current releases.
-- {db} is replaced by the configured database name (checked against [A-Za-z_][A-Za-z0-9_]*).
--
-- ReplacingMergeTree with the record's id in the sorting key: a record replayed after a crash has
-- the same key and collapses at merge time (queries that must be exact use FINAL).
-- Daily partitions (toYYYYMMDD) make retention a matter of dropping whole partitions.

CREATE TABLE IF NOT EXISTS {db}.events
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
ORDER BY (tenant, type, timestamp, event_id);

CREATE TABLE IF NOT EXISTS {db}.metrics
(
    tenant           String,
    metric_id        String,
    trace_id         String,
    name             String,
    value            Float64,
    unit             String,
    aggregation_type Enum8('counter' = 1, 'gauge' = 2, 'histogram' = 3),
    timestamp        DateTime,
    timestamp_us     UInt64,
    attributes       String,
    attr_keys        Array(String),
    attr_values      Array(String),
    service          String,
    host             String,
    ingested_at      DateTime
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (tenant, name, timestamp, metric_id);
