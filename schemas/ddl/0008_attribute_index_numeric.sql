-- events_attr_index replaces events_by_attr_hash (0007) as the index of events by top-level
-- attribute: one row per (event, attribute) as before, every column a number. The event's tenant,
-- id, type and name are their cityHash64 (tenant_hash, event_hash, type_hash, name_hash) instead of
-- their texts, and trace_id and span_id are gone (a filter with a trace reads the trace index; one
-- with a span id and attributes reads events). Writing those texts on a row per attribute was
-- most of what the index cost: on ClickHouse 18.16, storing 100,000 of the load generator's events
-- (4.25 attributes each) cost the server 0.40 s of CPU without an attribute index, 1.01 s with
-- 0007's and 0.70 s with this one (medians of 5), and at 10M events the index takes 771 MiB on
-- disk instead of 1,818 MiB. BENCHMARKS.md measures it beside 0007's on every run.
-- The query service finds a page's events here by (tenant_hash, timestamp_us, event_hash), reads
-- them from events, orders them by (timestamp_us, event_id) there and checks every condition of
-- the filter against them, so a hash collision cannot put a wrong event in a page.
--
-- Every statement can run again after a crash at any point and beside another migrate: the new
-- table and view are created if missing, the old ones dropped if present, and the backfill's
-- repeated rows are the same rows (ReplacingMergeTree merges them; queries group them anyway).

CREATE TABLE IF NOT EXISTS {db}.events_attr_index
(
    tenant_hash  UInt64,
    attr_hash    UInt64,
    timestamp    DateTime,
    timestamp_us UInt64,
    event_hash   UInt64,
    type_hash    UInt64,
    name_hash    UInt64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (tenant_hash, attr_hash, timestamp_us, event_hash);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_attr_index_mv TO {db}.events_attr_index AS
SELECT cityHash64(tenant) AS tenant_hash, cityHash64(attr_key, attr_value) AS attr_hash, timestamp, timestamp_us,
    cityHash64(event_id) AS event_hash, cityHash64(type) AS type_hash, cityHash64(name) AS name_hash
FROM {db}.events ARRAY JOIN attr_keys AS attr_key, attr_values AS attr_value;

DROP TABLE IF EXISTS {db}.events_by_attr_hash_mv;

DROP TABLE IF EXISTS {db}.events_by_attr_hash;

INSERT INTO {db}.events_attr_index (tenant_hash, attr_hash, timestamp, timestamp_us, event_hash, type_hash, name_hash)
SELECT cityHash64(tenant) AS tenant_hash, cityHash64(attr_key, attr_value) AS attr_hash, timestamp, timestamp_us,
    cityHash64(event_id) AS event_hash, cityHash64(type) AS type_hash, cityHash64(name) AS name_hash
FROM {db}.events ARRAY JOIN attr_keys AS attr_key, attr_values AS attr_value;
