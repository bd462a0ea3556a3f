-- Metric rows that hold many values: an OTLP histogram data point is one row of the metrics
-- table, aggregation_type histogram, whose value is the sum of value_count values, with the
-- smallest and largest (value_min, value_max) and its buckets as OTLP sent them. A row of one value
-- has value_count 1 and value_min = value_max = value (the defaults, so rows written before this
-- migration or by an older consumer read the same), and no buckets. So over any rows:
-- sum(value_count) is the number of values, sum(value) their total, min(value_min) and
-- max(value_max) the extremes (docs/analysts.md).
--
-- Explicit buckets: bucket_bounds are the upper bounds, increasing; bucket_counts has one more
-- entry (bucket i holds the values in (bounds[i-1], bounds[i]], the last those above the last
-- bound). Exponential buckets (base = 2^(2^-exp_scale)): positive bucket i holds the values in
-- (base^(exp_positive_offset+i), base^(exp_positive_offset+i+1)], negative bucket i their
-- negatives, and exp_zero_count those of magnitude at most exp_zero_threshold.
--
-- One column per statement: migrate checks system.columns before each (18.16 has no
-- ADD COLUMN IF NOT EXISTS), so the migration can be re-run after a crash at any point.

ALTER TABLE {db}.metrics ADD COLUMN value_count UInt64 DEFAULT 1;
ALTER TABLE {db}.metrics ADD COLUMN value_min Float64 DEFAULT value;
ALTER TABLE {db}.metrics ADD COLUMN value_max Float64 DEFAULT value;
ALTER TABLE {db}.metrics ADD COLUMN bucket_bounds Array(Float64);
ALTER TABLE {db}.metrics ADD COLUMN bucket_counts Array(UInt64);
ALTER TABLE {db}.metrics ADD COLUMN exp_scale Int32;
ALTER TABLE {db}.metrics ADD COLUMN exp_zero_count UInt64;
ALTER TABLE {db}.metrics ADD COLUMN exp_zero_threshold Float64;
ALTER TABLE {db}.metrics ADD COLUMN exp_positive_offset Int32;
ALTER TABLE {db}.metrics ADD COLUMN exp_positive_counts Array(UInt64);
ALTER TABLE {db}.metrics ADD COLUMN exp_negative_offset Int32;
ALTER TABLE {db}.metrics ADD COLUMN exp_negative_counts Array(UInt64);
