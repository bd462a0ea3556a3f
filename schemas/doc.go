// Package schemas is Tributary's data contract: the Avro schemas of the records carried on Kafka
// (embedded .avsc files), their Go types, the codec that frames them, the lossless JSON form of
// attributes, and the ClickHouse DDL applied by the migrate step.
//
// # Records
//
// [Event] and [Metric] carry every field of the Events and Metrics Reference plus the source
// identity fleet ingestion needs (tenant, service, host). Attribute values are normalised by
// [NormalizeAttributes] to one of: nil, bool, int64, float64, string, []any, map[string]any, nested to
// at most [MaxAttributeDepth] levels. Those round-trip losslessly through Avro and through
// [AppendAttributesJSON] / [ParseAttributesJSON] (floats always carry a '.' or an exponent, so 2.0
// stays a float and 2 stays an integer).
//
// # Framing
//
// Messages use Avro single-object encoding: 0xC3 0x01, the schema's 8-byte little-endian
// CRC-64-AVRO fingerprint, then the Avro binary body. Any Avro library can decode it with the .avsc
// files alone (Java's BinaryMessageDecoder reads it natively). [Codec] detects the framing from the
// magic bytes, looks the writer schema up by fingerprint among every published version, and
// resolves it against the current reader schema, so old data stays readable after a schema change.
// A [Decoder] (Codec.NewDecoder) is the consumer's fast path: records of the current schemas are
// decoded straight into what the tables store (attributes as canonical JSON and sorted flattened
// keys and values, no map), the rest through the Codec, with the same results.
package schemas
