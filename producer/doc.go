// Package producer is Tributary's Go SDK: a Client records events and metrics (the spec's
// record_event / record_metric) and sends them to Kafka as Avro, asynchronously and in batches.
//
// Guarantees: a Record call that returns nil has validated the record and placed it in a bounded
// buffer (MaxBufferedRecords; the call blocks while the buffer is full, until its context ends).
// Flush returns only when Kafka has acknowledged (acks=all, idempotent producer) every record accepted
// before it. Close flushes, then refuses new records with ErrClosed.
//
// Partition keys: trace_id for events, so a trace stays ordered on one partition; the series key
// (SeriesKey) for metrics, so one consumer owns a series' rollup windows.
package producer
