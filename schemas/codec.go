package schemas

import (
	"embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

//go:embed avro/*.avsc
var avscFiles embed.FS

// EventSchemaJSON, MetricSchemaJSON and RollupSchemaJSON are the current .avsc documents, for
// other languages and for the docs. MetricV1SchemaJSON is the metric schema before histograms
// (metric.v1.avsc): metrics without a Histogram are still written with it, byte for byte as
// before, so readers that know only it keep reading every metric but those.
var (
	EventSchemaJSON    = mustRead("avro/event.avsc")
	MetricSchemaJSON   = mustRead("avro/metric.avsc")
	MetricV1SchemaJSON = mustRead("avro/metric.v1.avsc")
	RollupSchemaJSON   = mustRead("avro/rollup.avsc")
)

func mustRead(name string) string {
	b, err := avscFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Single-object encoding (Avro spec, "Single-object encoding"): two marker bytes, then the writer
// schema's CRC-64-AVRO fingerprint, little-endian.
const (
	soeMagic0  = 0xC3
	soeMagic1  = 0x01
	soeHeader  = 10
	confluent0 = 0x00 // Confluent wire format: 0x00 + 4-byte schema id
)

// Decoder bounds: a string or bytes value longer than MaxDecodedBytes, or a list with more than
// MaxDecodedListLen items, is malformed.
const (
	MaxDecodedBytes   = 1 << 20
	MaxDecodedListLen = 100_000
)

// Kind says which record a schema describes.
type Kind uint8

// The record kinds.
const (
	KindEvent Kind = iota + 1
	KindMetric
	KindRollup
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindMetric:
		return "metric"
	case KindRollup:
		return "rollup"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// writer is a schema that data may have been written with. Data is decoded with the writer schema
// straight into our Go struct: fields the struct lacks are skipped, and fields the writer lacks keep
// their zero value, which AddWriterSchema checked is the reader's default.
type writer struct {
	kind   Kind
	schema avro.Schema
}

// Codec encodes and decodes events and metrics. It is safe for concurrent use.
type Codec struct {
	api      avro.API
	readers  sync.Pool // *avro.Reader
	event    avro.Schema
	metric   avro.Schema
	metric1  avro.Schema // metric.v1.avsc, for metrics without a histogram
	rollup   avro.Schema
	eventH   [soeHeader]byte
	metricH  [soeHeader]byte
	metric1H [soeHeader]byte
	rollupH  [soeHeader]byte

	mu      sync.RWMutex
	writers map[uint64]writer // by fingerprint
}

// NewCodec returns a codec for the current schemas that also reads every writer schema added with
// AddWriterSchema.
func NewCodec() (*Codec, error) {
	api := avro.Config{
		// Bound what a forged length can make the decoder allocate (found by FuzzDecode): no real
		// message holds a longer string or list, since Kafka messages are 1 MiB by default.
		MaxByteSliceSize:  MaxDecodedBytes,
		MaxSliceAllocSize: MaxDecodedListLen,
	}.Freeze()
	api.Register("dev.tributary.v1.AttrValue", attrValue{})
	api.Register("array:dev.tributary.v1.AttrValue", []attrValue{})
	api.Register("map:dev.tributary.v1.AttrValue", map[string]attrValue{})
	c := &Codec{api: api, writers: make(map[uint64]writer)}
	c.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
	var err error
	if c.event, err = avro.ParseBytes([]byte(EventSchemaJSON)); err != nil {
		return nil, fmt.Errorf("parse event schema: %w", err)
	}
	if c.metric, err = avro.ParseBytes([]byte(MetricSchemaJSON)); err != nil {
		return nil, fmt.Errorf("parse metric schema: %w", err)
	}
	if c.metric1, err = avro.ParseBytes([]byte(MetricV1SchemaJSON)); err != nil {
		return nil, fmt.Errorf("parse metric v1 schema: %w", err)
	}
	if c.rollup, err = avro.ParseBytes([]byte(RollupSchemaJSON)); err != nil {
		return nil, fmt.Errorf("parse rollup schema: %w", err)
	}
	for _, s := range []struct {
		kind   Kind
		json   string
		schema avro.Schema
		header *[soeHeader]byte
	}{{KindEvent, EventSchemaJSON, c.event, &c.eventH}, {KindMetric, MetricSchemaJSON, c.metric, &c.metricH},
		{KindMetric, MetricV1SchemaJSON, c.metric1, &c.metric1H}, {KindRollup, RollupSchemaJSON, c.rollup, &c.rollupH}} {
		fp, err := Fingerprint(s.json)
		if err != nil {
			return nil, err
		}
		s.header[0], s.header[1] = soeMagic0, soeMagic1
		binary.LittleEndian.PutUint64(s.header[2:], fp)
		c.writers[fp] = writer{kind: s.kind, schema: s.schema}
	}
	return c, nil
}

// Fingerprint returns the CRC-64-AVRO fingerprint of a schema's Parsing Canonical Form, as the
// Avro specification defines it and Java's SchemaNormalization.parsingFingerprint64 computes it.
// The canonical form keeps only type, name, fields, symbols, items, values and size; hamba/avro's
// own fingerprint also keeps logicalType, which no other Avro library does, so the attributes are
// stripped here before hashing.
func Fingerprint(avsc string) (uint64, error) {
	var doc any
	if err := json.Unmarshal([]byte(avsc), &doc); err != nil {
		return 0, fmt.Errorf("fingerprint: %w", err)
	}
	stripped, _ := json.Marshal(stripNonParsing(doc))
	s, err := avro.ParseBytes(stripped)
	if err != nil {
		return 0, fmt.Errorf("fingerprint: %w", err)
	}
	fp, err := s.FingerprintUsing(avro.CRC64Avro)
	if err != nil {
		return 0, fmt.Errorf("fingerprint: %w", err)
	}
	return binary.BigEndian.Uint64(fp), nil
}

// stripNonParsing removes attributes the Parsing Canonical Form drops but hamba/avro keeps.
func stripNonParsing(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			switch k {
			case "logicalType", "precision", "scale", "doc", "aliases", "default", "order":
				continue
			}
			out[k] = stripNonParsing(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = stripNonParsing(e)
		}
		return out
	}
	return v
}

// AddWriterSchema makes data written with an older or newer schema of kind readable. The schemas
// must be compatible by Avro's rules, and every field of the current schema that the writer lacks
// must default to its Go zero value (null, "", 0, false, {} or []), since that is what decoding
// leaves there.
func (c *Codec) AddWriterSchema(kind Kind, avsc string) error {
	ws, err := avro.ParseBytes([]byte(avsc))
	if err != nil {
		return fmt.Errorf("parse %s writer schema: %w", kind, err)
	}
	reader := c.event
	switch kind {
	case KindMetric:
		reader = c.metric
	case KindRollup:
		reader = c.rollup
	}
	if err := avro.NewSchemaCompatibility().Compatible(reader, ws); err != nil {
		return fmt.Errorf("%s writer schema is incompatible with the current one: %w", kind, err)
	}
	if err := checkZeroDefaults(reader, ws); err != nil {
		return fmt.Errorf("%s writer schema: %w", kind, err)
	}
	fp, err := Fingerprint(avsc)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.writers[fp] = writer{kind: kind, schema: ws}
	c.mu.Unlock()
	return nil
}

func checkZeroDefaults(reader, writer avro.Schema) error {
	rr, ok1 := reader.(*avro.RecordSchema)
	wr, ok2 := writer.(*avro.RecordSchema)
	if !ok1 || !ok2 {
		return fmt.Errorf("schemas must be records")
	}
	have := make(map[string]bool, len(wr.Fields()))
	for _, f := range wr.Fields() {
		have[f.Name()] = true
	}
	for _, f := range rr.Fields() {
		if have[f.Name()] {
			continue
		}
		if !f.HasDefault() || !isZeroDefault(f.Default()) {
			return fmt.Errorf("field %q is missing and its default %v is not its Go zero value", f.Name(), f.Default())
		}
	}
	return nil
}

func isZeroDefault(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case int, int32, int64, float32, float64:
		return x == 0 || x == int32(0) || x == int64(0) || x == float32(0) || x == float64(0)
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// AppendEvent appends e in single-object encoding to dst. e's attributes must be normalised.
func (c *Codec) AppendEvent(dst []byte, e *Event) ([]byte, error) {
	if dst == nil {
		dst = make([]byte, 0, soeHeader+len(e.EventID)+len(e.TraceID)+len(e.SpanID)+len(e.Type)+len(e.Name)+
			len(e.Tenant)+len(e.Service)+len(e.Host)+sizeHint(len(e.Attributes)))
	}
	dst = append(dst, c.eventH[:]...)
	dst, err := appendEventBody(dst, e)
	if err != nil {
		return dst, fmt.Errorf("encode event: %w", err)
	}
	return dst, nil
}

// AppendMetric appends m in single-object encoding to dst. m's attributes must be normalised. A
// metric without a Histogram is written with metric.v1.avsc (see MetricV1SchemaJSON), one with it
// with the current schema.
func (c *Codec) AppendMetric(dst []byte, m *Metric) ([]byte, error) {
	v1 := m.Histogram == nil
	if dst == nil {
		n := soeHeader + len(m.MetricID) + len(m.TraceID) + len(m.Name) + len(m.Unit) + len(m.Tenant) + len(m.Service) + len(m.Host) + sizeHint(len(m.Attributes))
		if !v1 {
			n += 64 + 10*(len(m.Histogram.Bounds)+len(m.Histogram.Counts))
		}
		dst = make([]byte, 0, n)
	}
	if v1 {
		dst = append(dst, c.metric1H[:]...)
	} else {
		dst = append(dst, c.metricH[:]...)
	}
	dst, err := appendMetricBody(dst, m, v1)
	if err != nil {
		return dst, fmt.Errorf("encode metric: %w", err)
	}
	return dst, nil
}

// append is hamba/avro's encoding of v (the rollups).
func (c *Codec) append(dst, header []byte, schema avro.Schema, v any, what string) ([]byte, error) {
	body, err := c.api.Marshal(schema, v)
	if err != nil {
		return dst, fmt.Errorf("encode %s: %w", what, err)
	}
	dst = append(dst, header...)
	return append(dst, body...), nil
}

// Detect returns the kind of record data holds, from its framing and fingerprint.
func (c *Codec) Detect(data []byte) (Kind, error) {
	w, _, err := c.writerOf(data)
	return w.kind, err
}

func (c *Codec) writerOf(data []byte) (writer, []byte, error) {
	if len(data) == 0 {
		return writer{}, nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if data[0] == confluent0 {
		return writer{}, nil, fmt.Errorf("%w: Confluent wire format (schema registry ids) is not enabled", ErrUnknownSchema)
	}
	if len(data) < soeHeader || data[0] != soeMagic0 || data[1] != soeMagic1 {
		return writer{}, nil, fmt.Errorf("%w: no Avro single-object header (want C3 01 + 8-byte fingerprint)", ErrMalformed)
	}
	fp := binary.LittleEndian.Uint64(data[2:soeHeader])
	c.mu.RLock()
	w, ok := c.writers[fp]
	c.mu.RUnlock()
	if !ok {
		return writer{}, nil, fmt.Errorf("%w: fingerprint %016x", ErrUnknownSchema, fp)
	}
	return w, data[soeHeader:], nil
}

func (c *Codec) decode(data []byte, want Kind, v any) error {
	w, body, err := c.writerOf(data)
	if err != nil {
		return err
	}
	if w.kind != want {
		return fmt.Errorf("%w: a %s, not a %s", ErrUnknownSchema, w.kind, want)
	}
	r := c.readers.Get().(*avro.Reader)
	defer c.readers.Put(r)
	r.Reset(body)
	r.Error = nil // Reset keeps the last error; the pooled reader ended on io.EOF from Peek
	r.ReadVal(w.schema, v)
	if r.Error != nil { // io.EOF here means the body was cut short
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, want, r.Error)
	}
	if r.Peek(); r.Error == nil {
		return fmt.Errorf("%w: %s body has trailing bytes", ErrMalformed, want)
	}
	return nil
}

// decodeWithAttributes decodes data, a record of kind want, into v, and converts its attributes
// (*attrs, a field of v) back from their wire form.
func (c *Codec) decodeWithAttributes(data []byte, want Kind, v any, attrs *map[string]attrValue) (map[string]any, error) {
	if err := c.decode(data, want, v); err != nil {
		return nil, err
	}
	out, err := fromWireAttrs(*attrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, want, err)
	}
	return out, nil
}

// DecodeEvent decodes a single-object-encoded event. Errors wrap ErrMalformed or ErrUnknownSchema;
// the result is not validated (call Validate).
func (c *Codec) DecodeEvent(data []byte) (Event, error) {
	var w wireEvent
	attrs, err := c.decodeWithAttributes(data, KindEvent, &w, &w.Attributes)
	if err != nil {
		return Event{}, err
	}
	return Event{
		EventID: w.EventID, TraceID: deref(w.TraceID), SpanID: deref(w.SpanID), Type: w.Type, Name: w.Name,
		Timestamp: w.Timestamp.UTC(), Attributes: attrs,
		Source: Source{Tenant: w.Tenant, Service: w.Service, Host: w.Host},
	}, nil
}

// DecodeMetric decodes a single-object-encoded metric. Errors wrap ErrMalformed or ErrUnknownSchema;
// the result is not validated (call Validate).
func (c *Codec) DecodeMetric(data []byte) (Metric, error) {
	var w wireMetric
	attrs, err := c.decodeWithAttributes(data, KindMetric, &w, &w.Attributes)
	if err != nil {
		return Metric{}, err
	}
	h, err := fromWireHistogram(w.Histogram)
	if err != nil {
		return Metric{}, err
	}
	return Metric{
		MetricID: w.MetricID, TraceID: deref(w.TraceID), Name: w.Name, Value: w.Value, Unit: w.Unit,
		AggregationType: AggregationType(w.AggregationType), Timestamp: w.Timestamp.UTC(), Attributes: attrs,
		Source: Source{Tenant: w.Tenant, Service: w.Service, Host: w.Host}, Histogram: h,
	}, nil
}
