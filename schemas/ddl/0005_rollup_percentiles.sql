-- Percentiles of each rollup window's sketch (p50, p90, p95, p99), computed by the consumer when it
-- writes the window. A query cell made of one window row (one series in one partition: the common
-- case when grouping by the attributes that identify a series) reads these four numbers instead
-- of merging sketches. nan: the window has no sketch (not a histogram) or was written before this
-- migration; the query service then merges the sketch columns.

-- One column per statement: migrate checks system.columns before each (18.16 has no
-- ADD COLUMN IF NOT EXISTS), so the migration can be re-run after a crash at any point.

ALTER TABLE {db}.rollups ADD COLUMN sketch_p50 Float64 DEFAULT nan;
ALTER TABLE {db}.rollups ADD COLUMN sketch_p90 Float64 DEFAULT nan;
ALTER TABLE {db}.rollups ADD COLUMN sketch_p95 Float64 DEFAULT nan;
ALTER TABLE {db}.rollups ADD COLUMN sketch_p99 Float64 DEFAULT nan;
