-- Rollups: one row per series, tier (window width), window and source partition of the metrics
-- topic. Rows of one window from different partitions add up at query time.
--
-- ReplacingMergeTree(last_offset): a window's row is rewritten with a higher last_offset each time
-- it counts more points, and after a crash the replayed row carries the same or a higher offset, so
-- reading with FINAL gives each window exactly once. Sketch buckets are parallel arrays that
-- sumMap merges across rows, partitions and windows.

CREATE TABLE IF NOT EXISTS {db}.rollups
(
    tenant            String,
    name              String,
    unit              String,
    aggregation_type  Enum8('counter' = 1, 'gauge' = 2, 'histogram' = 3),
    series_id         UInt64,
    attributes        String,
    attr_keys         Array(String),
    attr_values       Array(String),
    tier              UInt32,
    window_start      DateTime,
    source_partition  UInt32,
    last_offset       UInt64,
    count             UInt64,
    sum               Float64,
    min               Float64,
    max               Float64,
    last              Float64,
    last_ts_us        UInt64,
    sketch_pos_keys   Array(Int32),
    sketch_pos_counts Array(UInt64),
    sketch_neg_keys   Array(Int32),
    sketch_neg_counts Array(UInt64),
    sketch_zero       UInt64,
    updated_at        DateTime
)
ENGINE = ReplacingMergeTree(last_offset)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (tenant, name, tier, window_start, series_id, source_partition);
