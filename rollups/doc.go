// Package rollups computes tumbling event-time windows of metric points per series. Its only I/O
// is through the Store its caller passes in: Engine.Ingest loads the windows a batch of points
// touches and counts the points, Engine.Flush writes what changed and closes and sheds windows.
//
// A series is tenant + name + unit + aggregation type + attributes. Each tier (1 minute and 1 hour
// by default) keeps one Window per series, window start and source partition, holding an Aggregate:
// count, sum, min, max, last (by timestamp) and, for histograms, a mergeable quantile Sketch with a
// relative error of at most 1% (RelativeAccuracy). Windows of different partitions, tiers' windows
// and stored rows all merge: counts and sums add, min/max combine, last goes to the latest
// timestamp, sketch buckets add (SQL: sumMap).
//
// A point may hold many values (Point.Hist, an OTLP histogram data point): the window counts them
// all, with their exact count, sum, min and max, and adds each of the point's buckets to the
// sketch at one value (BucketValueOf, which states the error this adds).
//
// A window closes when its partition's watermark (newest event time minus Lateness) passes its
// end. A later point still counts: its window is loaded again, updated, stored and published again,
// and the point is counted in Stats.Late.
//
// Replays never double-count: every window remembers the highest source offset it counted and
// skips points at or below it. Stored rows carry that offset (the ReplacingMergeTree version), so a
// worker that takes over a partition after a crash loads rows that say exactly what they hold.
//
// The label-cardinality guard (Config.MaxNewSeries) admits at most that many new series per tenant
// and minute of event time; points of the series past it are counted under their metric's overflow
// series (Series.Overflow), so a metric's series and its overflow series together always hold
// exactly its points. Where a replayed point was counted is read back from the windows' offsets, so
// replays stay exact whatever the guard remembers.
package rollups
