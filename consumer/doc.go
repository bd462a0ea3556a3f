// Package consumer holds the consumer-group workers that move records from Kafka into ClickHouse.
//
// A Worker polls the events and metrics topics, decodes and validates each record, and gathers
// them into a columnar Batch. A batch is written when it reaches BatchMaxRecords records or
// BatchMaxBytes bytes, or BatchInterval after its first record. Offsets are committed only after
// the Sink stored the batch; rebalances are held off while a batch is in hand (BlockRebalanceOnPoll),
// so a partition changes owner only between committed batches.
//
// A record that does not decode or validate is logged with its topic, partition, offset and reason,
// counted (Stats.Poison), and skipped: the partition keeps moving. While the sink fails, the worker
// retries with capped exponential backoff and fetches nothing, so its memory stays bounded by one
// batch plus the Kafka client's fetch buffers.
package consumer
