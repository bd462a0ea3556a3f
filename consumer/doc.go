// Package consumer holds the consumer-group workers that move records from Kafka into ClickHouse.
//
// A Worker polls the events and metrics topics, decodes and validates each record, and gathers
// them into a columnar Batch. A batch is written when it reaches BatchMaxRecords records or
// BatchMaxBytes bytes, or BatchInterval after its first record. Offsets are committed only after
// the Store stored the batch; rebalances are held off while records are in hand
// (BlockRebalanceOnPoll) and the revoke callback waits for the batch being written, so a
// partition changes owner only between committed batches.
//
// A record that does not decode or validate is logged with its topic, partition, offset and reason,
// counted (Stats.Poison), and sent to the dead-letter topic: the partition keeps moving. Store
// failures are retryable or permanent (IsPermanent): retryable ones are retried with capped
// exponential backoff while nothing more is fetched, so memory stays bounded by the batch in hand,
// the batch being written and the Kafka client's fetch buffers; permanent ones are isolated (rows
// refused on their own are dead-lettered, rollups refused for good are skipped and counted), never
// retried forever.
package consumer
