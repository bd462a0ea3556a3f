// Package producer is Tributary's Go SDK: a Client records events and metrics (the spec's
// record_event / record_metric) and sends them to Kafka as Avro, asynchronously and in batches.
//
// Guarantees: a Record call that returns nil has validated the record, checked that Kafka can take
// it (MaxRecordBytes, within one produce batch; else ErrRecordTooLarge) and placed it in a buffer
// bounded in records and bytes (MaxBufferedRecords, MaxBufferedBytes; the call blocks while the
// buffer is full, until its context ends). Flush returns only when Kafka has answered (acks=all,
// idempotent producer) every record accepted before it, and reports the failures of untracked
// records since the previous Flush. RecordBatchDelivery tracks one call's records: its Delivery's
// Wait reports their fate only. Close flushes, then refuses new records with ErrClosed.
//
// Partition keys: trace_id for events, so a trace stays ordered on one partition; the series key
// (SeriesKey) for metrics, so one consumer owns a series' rollup windows.
package producer
