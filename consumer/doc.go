// Package consumer holds the consumer-group workers that move records from Kafka into ClickHouse.
//
// A Worker polls the events and metrics topics, decodes and validates each record, and gathers
// them into a columnar Batch (the current schemas' records are decoded by a schemas.Decoder
// straight into the columns, and a metric's series identity comes from a bounded cache). A batch
// is stored when it reaches BatchMaxRecords records or BatchMaxBytes bytes, or BatchInterval after
// its first record, or BatchLinger after it if the previous batch is stored by then. Storing it (one attempt bounded by
// WriteTimeout) writes its raw rows through the Store (ClickHouseStore: the events and metrics
// tables), rolls its metric points up (package rollups: the windows it touches are loaded from and
// written to the rollups table), and produces its dead letters and the rollup windows that closed
// or were shed, on the rollups topic. Offsets are committed only after all of that succeeded.
// While one batch is stored, the next is polled and decoded: at most one batch in flight.
// Rebalances are held off while records are in hand (BlockRebalanceOnPoll) and the revoke callback
// waits for the batch being stored, so a partition changes owner only between committed batches;
// the rollup engine then forgets the partitions taken away.
//
// A record that does not decode or validate is logged with its topic, partition, offset and
// reason, counted (Stats.Poison), and sent to the dead-letter topic with headers naming the reason
// and its origin (HeaderReason, ...): the partition keeps moving. Store failures are retryable or
// permanent (IsPermanent). Retryable ones are retried with capped exponential backoff while
// nothing more is fetched; a retry repeats only the stages that failed (raw rows, rollup counting,
// rollup writing, the outbox), so no point is counted twice in the rollups, and a raw row written
// twice has the same row identity, which the tables collapse. Permanent ones are isolated,
// never retried forever: rows ClickHouse refuses on their own are dead-lettered (Stats.Refused), a
// batch whose rollups cannot be stored is left out of the rollups (Stats.RollupSkip), and an outbox
// record Kafka refuses is sent without its value (HeaderValueDropped), or dropped and counted
// (Stats.OutboxDrop) if even that is refused.
//
// Memory is bounded by settings, not by the input rate or the backlog: the batch being decoded
// and the one being stored, the Kafka client's fetch buffers (FetchMaxBytes), and the rollup
// engine's windows (RollupMaxWindows), remembered record ids (RollupDedupeIDs) and known series
// (RollupKnownSeries). docs/operations.md gives each part's size with the defaults.
//
// The worker's counters are Stats; Worker.Register exports them as tributary_consumer_* (records
// consumed and written, batches, retries, commits, dead letters, refused rows, outbox drops, lag,
// batch size, store time by stage) and tributary_rollup_* (windows written, open, closed and
// published, late, replayed, re-sent, skipped and overflow points, new series, capped minutes,
// known series, the dedupe horizon), beside franz-go's client metrics (tributary_kafka_*).
//
// Package consumertest fills the tables the way a worker does, without Kafka, for tests of what
// reads them.
package consumer
