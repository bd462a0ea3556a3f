-- events_by_attr_hash replaces events_by_attr (0004) as the index of events by top-level attribute:
-- one row per (event, attribute) as before, but the attribute is one number, attr_hash =
-- cityHash64(attr_key, attr_value), in place of the key and value texts, and the row no longer
-- carries the event's whole attr_keys/attr_values arrays (so a row's size no longer grows with the
-- event's attribute count: with n attributes the old index stored n^2 array entries per event).
-- On ClickHouse 18.16 this cut what the index costs every insert of events to about a third
-- (BENCHMARKS.md, "the attribute index"). A filter on several attributes takes the rows of every
-- one and keeps the events that have them all (GROUP BY ... HAVING); the query service checks each
-- page's events against the attributes in events itself, so a hash collision cannot return an
-- event that does not match.
--
-- Every statement can run again after a crash at any point and beside another migrate: the new
-- table and view are created if missing, the old ones dropped if present, and the backfill's
-- repeated rows are the same rows (ReplacingMergeTree merges them; queries group them anyway).

CREATE TABLE IF NOT EXISTS {db}.events_by_attr_hash
(
    tenant       String,
    attr_hash    UInt64,
    timestamp    DateTime,
    timestamp_us UInt64,
    event_id     String,
    type         String,
    name         String,
    trace_id     String,
    span_id      String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (tenant, attr_hash, timestamp_us, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_attr_hash_mv TO {db}.events_by_attr_hash AS
SELECT tenant, cityHash64(attr_key, attr_value) AS attr_hash, timestamp, timestamp_us, event_id, type, name, trace_id, span_id
FROM {db}.events ARRAY JOIN attr_keys AS attr_key, attr_values AS attr_value;

DROP TABLE IF EXISTS {db}.events_by_attr_mv;

DROP TABLE IF EXISTS {db}.events_by_attr;

INSERT INTO {db}.events_by_attr_hash (tenant, attr_hash, timestamp, timestamp_us, event_id, type, name, trace_id, span_id)
SELECT tenant, cityHash64(attr_key, attr_value) AS attr_hash, timestamp, timestamp_us, event_id, type, name, trace_id, span_id
FROM {db}.events ARRAY JOIN attr_keys AS attr_key, attr_values AS attr_value;
