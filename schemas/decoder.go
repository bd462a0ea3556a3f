package schemas

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Decoder decodes events and metrics into what the tables store, for a consumer's hot path: the
// record's strings are sliced from one copy of its body, and its attributes go straight from Avro
// to their canonical JSON and sorted flattened keys and values, without the attribute map.
// Records written with the current schemas (event.avsc, metric.v1.avsc, metric.avsc without a
// histogram) take this path; others (a writer schema added with AddWriterSchema, a metric with a
// histogram) are decoded by the Codec and converted, with the same result and the same errors
// (ErrMalformed, ErrUnknownSchema) as Codec.DecodeEvent and DecodeMetric.
//
// A Decoder holds the attributes of the last record it decoded until the next decode: it is not
// safe for concurrent use; give each goroutine its own.
type Decoder struct {
	c                      *Codec
	event, metric1, metric uint64 // fingerprints of the schemas decoded here

	body string // copy of the record's body; the decoded strings are slices of it
	pos  int
	err  error

	attrs  []attrEntry
	text   []byte                   // the attributes' flat values that are not strings, and their JSON values
	json   []byte                   // canonical JSON object of the attributes
	levels [MaxAttributeDepth]level // scratch of nested maps, by depth (a fixed array: never moves)

	// From the Codec's path: the attributes' columns as AttributeColumns gave them.
	fallback         bool
	fbJSON           string
	fbKeys, fbValues []string
}

// attrEntry is one top-level attribute: its key and where its flat value and JSON value are.
type attrEntry struct {
	key  string
	flat string // the value when it is a string, else ""
	// flat text (when not a string) and JSON text of the value, as offsets into Decoder.text
	flat0, flat1, json0, json1 int
	isString                   bool
}

// NewDecoder returns a decoder reading what c reads.
func (c *Codec) NewDecoder() *Decoder {
	return &Decoder{c: c, event: binary.LittleEndian.Uint64(c.eventH[2:]),
		metric1: binary.LittleEndian.Uint64(c.metric1H[2:]), metric: binary.LittleEndian.Uint64(c.metricH[2:])}
}

// errFallback says the record is decoded by the Codec instead (a histogram).
var errFallback = errors.New("decode with the codec")

// DecodeEvent decodes a single-object-encoded event into e, leaving e.Attributes nil: the
// attributes are held by d (AttrJSON, AttrColumns) until the next decode. The result is not
// validated (call Validate).
func (d *Decoder) DecodeEvent(data []byte, e *Event) error {
	if len(data) >= soeHeader && data[0] == soeMagic0 && data[1] == soeMagic1 &&
		binary.LittleEndian.Uint64(data[2:soeHeader]) == d.event {
		d.start(data[soeHeader:])
		*e = Event{EventID: d.readString(), TraceID: d.readOptional(), SpanID: d.readOptional(), Type: d.readString(),
			Name: d.readString(), Timestamp: d.readTimestamp()}
		d.readAttributes(KindEvent)
		e.Tenant, e.Service, e.Host = d.readString(), d.readString(), d.readString()
		return d.finish(KindEvent)
	}
	ev, err := d.c.DecodeEvent(data)
	if err != nil {
		return err
	}
	d.setFallback(ev.Attributes)
	ev.Attributes = nil
	*e = ev
	return nil
}

// DecodeMetric decodes a single-object-encoded metric into m as DecodeEvent decodes an event.
func (d *Decoder) DecodeMetric(data []byte, m *Metric) error {
	if len(data) >= soeHeader && data[0] == soeMagic0 && data[1] == soeMagic1 {
		fp := binary.LittleEndian.Uint64(data[2:soeHeader])
		if fp == d.metric1 || fp == d.metric {
			d.start(data[soeHeader:])
			*m = Metric{MetricID: d.readString(), TraceID: d.readOptional(), Name: d.readString(), Value: d.readDouble(),
				Unit: d.readString(), AggregationType: d.readAggregation(), Timestamp: d.readTimestamp()}
			d.readAttributes(KindMetric)
			m.Tenant, m.Service, m.Host = d.readString(), d.readString(), d.readString()
			if fp == d.metric && d.readUnionIndex(2) == 1 && d.err == nil {
				d.err = errFallback
			}
			err := d.finish(KindMetric)
			if !errors.Is(err, errFallback) {
				return err
			}
		}
	}
	me, err := d.c.DecodeMetric(data)
	if err != nil {
		return err
	}
	d.setFallback(me.Attributes)
	me.Attributes = nil
	*m = me
	return nil
}

// AttrJSON returns the canonical JSON object (AppendAttributesJSON) of the last decoded record's
// attributes. It is valid until the next decode.
func (d *Decoder) AttrJSON() []byte { return d.json }

// AttrColumns returns the last decoded record's attributes as AttributeColumns gives them: the
// canonical JSON and the flattened keys and values in ascending key order. The strings are new
// (they outlive the decoder's next decode); they share one allocation.
func (d *Decoder) AttrColumns() (json string, keys, values []string) {
	if d.fallback {
		return d.fbJSON, d.fbKeys, d.fbValues
	}
	n := len(d.attrs)
	if n == 0 {
		return "{}", nil, []string{}
	}
	size := len(d.json)
	for i := range d.attrs {
		size += d.attrs[i].flat1 - d.attrs[i].flat0
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(d.json)
	for i := range d.attrs {
		sb.Write(d.text[d.attrs[i].flat0:d.attrs[i].flat1])
	}
	s := sb.String()
	kv := make([]string, 2*n)
	keys, values = kv[:n:n], kv[n:]
	off := len(d.json)
	for i := range d.attrs {
		a := &d.attrs[i]
		keys[i] = a.key
		if a.isString {
			values[i] = a.flat
			continue
		}
		l := a.flat1 - a.flat0
		values[i] = s[off : off+l]
		off += l
	}
	return s[:len(d.json)], keys, values
}

func (d *Decoder) setFallback(attrs map[string]any) {
	d.fallback = true
	d.fbJSON, d.fbKeys, d.fbValues = AttributeColumns(attrs)
	d.json = append(d.json[:0], d.fbJSON...)
}

func (d *Decoder) start(body []byte) {
	d.body, d.pos, d.err, d.fallback = string(body), 0, nil, false
	d.fbJSON, d.fbKeys, d.fbValues = "", nil, nil
	d.attrs, d.text, d.json = d.attrs[:0], d.text[:0], d.json[:0]
}

func (d *Decoder) finish(kind Kind) error {
	switch {
	case errors.Is(d.err, errFallback):
		return d.err
	case d.err != nil:
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, kind, d.err)
	case d.pos != len(d.body):
		return fmt.Errorf("%w: %s body has trailing bytes", ErrMalformed, kind)
	}
	return nil
}

// fail records the first error; every read after it returns a zero value.
func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

var errShort = errors.New("unexpected end of the record")

// readVarint reads a zig-zag varint of at most maxBytes bytes, as hamba/avro reads ints (5) and
// longs (10).
func (d *Decoder) readVarint(maxBytes int) uint64 {
	var v uint64
	var s uint
	for i := 0; i < maxBytes; i++ {
		if d.pos >= len(d.body) {
			d.fail(errShort)
			return 0
		}
		b := d.body[d.pos]
		d.pos++
		v |= uint64(b&0x7f) << s
		if b&0x80 == 0 {
			return v
		}
		s += 7
	}
	d.fail(errors.New("int overflow"))
	return 0
}

func (d *Decoder) readLong() int64 {
	if d.err != nil {
		return 0
	}
	v := d.readVarint(10)
	return int64((v >> 1) ^ -(v & 1))
}

func (d *Decoder) readInt() int32 {
	if d.err != nil {
		return 0
	}
	v := uint32(d.readVarint(5))
	return int32((v >> 1) ^ -(v & 1))
}

func (d *Decoder) readString() string {
	n := d.readLong()
	switch {
	case d.err != nil:
		return ""
	case n < 0:
		d.fail(errors.New("invalid string length"))
		return ""
	case n > MaxDecodedBytes:
		d.fail(fmt.Errorf("string of %d bytes, more than %d", n, MaxDecodedBytes))
		return ""
	case int(n) > len(d.body)-d.pos:
		d.fail(errShort)
		return ""
	}
	s := d.body[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return s
}

func (d *Decoder) readUnionIndex(n int32) int32 {
	i := d.readInt()
	if d.err == nil && (i < 0 || i >= n) {
		d.fail(fmt.Errorf("union index %d out of range", i))
	}
	return i
}

// readOptional reads a ["null", "string"] union; null is "".
func (d *Decoder) readOptional() string {
	if d.readUnionIndex(2) == 1 {
		return d.readString()
	}
	return ""
}

func (d *Decoder) readDouble() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.body)-d.pos < 8 {
		d.fail(errShort)
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64([]byte(d.body[d.pos : d.pos+8])))
	d.pos += 8
	return f
}

func (d *Decoder) readBool() bool {
	if d.err != nil {
		return false
	}
	if d.pos >= len(d.body) {
		d.fail(errShort)
		return false
	}
	b := d.body[d.pos]
	d.pos++
	if b > 1 {
		d.fail(errors.New("invalid bool"))
	}
	return b == 1
}

var aggregationSymbols = [...]AggregationType{Counter, Gauge, Histogram}

func (d *Decoder) readAggregation() AggregationType {
	i := d.readInt()
	if d.err != nil {
		return ""
	}
	if i < 0 || int(i) >= len(aggregationSymbols) {
		d.fail(fmt.Errorf("unknown enum symbol %d", i))
		return ""
	}
	return aggregationSymbols[i]
}

// readTimestamp reads a timestamp-micros as hamba/avro does.
func (d *Decoder) readTimestamp() time.Time {
	i := d.readLong()
	sec := i / 1e6
	return time.Unix(sec, (i-sec*1e6)*1e3).UTC()
}

// readBlockLen reads an array or map block's item count (the block's byte size, when given, is
// skipped over as hamba/avro does).
func (d *Decoder) readBlockLen() int64 {
	n := d.readLong()
	if n < 0 {
		d.readLong()
		n = -n
	}
	if n < 0 && d.err == nil {
		d.fail(errors.New("invalid block length"))
	}
	return n
}

// readAttributes reads the attributes map and writes its sorted, deduplicated entries (a repeated
// key keeps its last value, as decoding into a map does) and canonical JSON.
func (d *Decoder) readAttributes(kind Kind) {
	for d.err == nil {
		n := d.readBlockLen()
		if n == 0 || d.err != nil {
			break
		}
		for ; n > 0 && d.err == nil; n-- {
			key := d.readString()
			d.readTopValue(key)
		}
	}
	if d.err != nil || len(d.attrs) == 0 {
		d.json = append(d.json, "{}"...)
		return
	}
	slices.SortStableFunc(d.attrs, func(a, b attrEntry) int { return cmp.Compare(a.key, b.key) })
	out := d.attrs[:0]
	for i := range d.attrs {
		if i+1 < len(d.attrs) && d.attrs[i+1].key == d.attrs[i].key {
			continue
		}
		out = append(out, d.attrs[i])
	}
	d.attrs = out
	d.json = append(d.json, '{')
	for i := range d.attrs {
		if i > 0 {
			d.json = append(d.json, ',')
		}
		d.json = appendJSONString(d.json, d.attrs[i].key)
		d.json = append(d.json, ':')
		d.json = append(d.json, d.text[d.attrs[i].json0:d.attrs[i].json1]...)
	}
	d.json = append(d.json, '}')
}

// AttrValue union branches.
const (
	avNull = iota
	avBool
	avLong
	avDouble
	avString
	avArray
	avMap
	avBranches
)

// readTopValue reads a top-level attribute value (depth 1) into an entry: its flat text and JSON
// text, as FlattenAttributes and AppendAttributesJSON write them.
func (d *Decoder) readTopValue(key string) {
	a := attrEntry{key: key}
	a.flat0 = len(d.text)
	switch i := d.readUnionIndex(avBranches); i {
	case avNull:
		a.flat1 = a.flat0
		a.json0 = len(d.text)
		d.text = append(d.text, "null"...)
	case avBool:
		d.text = strconv.AppendBool(d.text, d.readBool())
		a.flat1, a.json0, a.json1 = len(d.text), a.flat0, len(d.text)
	case avLong:
		d.text = strconv.AppendInt(d.text, d.readLong(), 10)
		a.flat1, a.json0, a.json1 = len(d.text), a.flat0, len(d.text)
	case avDouble:
		f := d.readFiniteDouble(key)
		d.text = strconv.AppendFloat(d.text, f, 'g', -1, 64)
		a.flat1 = len(d.text)
		a.json0 = len(d.text)
		d.text = appendJSONFloat(d.text, f)
	case avString:
		a.flat, a.isString = d.readString(), true
		a.flat1 = a.flat0
		a.json0 = len(d.text)
		d.text = appendJSONString(d.text, a.flat)
	case avArray, avMap:
		// A list's or map's flat value is its JSON.
		d.text = d.appendNested(d.text, i, key, 1)
		a.flat1, a.json0 = len(d.text), a.flat0
	}
	a.json1 = len(d.text)
	if d.err == nil {
		d.attrs = append(d.attrs, a)
	}
}

func (d *Decoder) readFiniteDouble(key string) float64 {
	f := d.readDouble()
	if d.err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		d.fail(fmt.Errorf("attribute %q: %w, got %v", key, ErrBadValue, f))
	}
	return f
}

// nestedEntry is one entry of a nested map while it is read: its key, and its value's JSON in
// the level's buffer.
type nestedEntry struct {
	key          string
	json0, json1 int
}

// level is the scratch space of one nesting depth, reused across records.
type level struct {
	buf     []byte
	entries []nestedEntry
}

// appendNested appends the JSON of a list or map (union branch i) at depth (a top-level value is
// at 1), with the limits fromWireValue enforces, as AppendJSONValue writes it: map keys sorted, a
// repeated key's last value kept.
func (d *Decoder) appendNested(dst []byte, i int32, key string, depth int) []byte {
	if depth >= MaxAttributeDepth {
		d.fail(fmt.Errorf("attribute %q: %w: nested deeper than %d levels", key, ErrBadAttribute, MaxAttributeDepth))
		return dst
	}
	if i == avArray {
		dst = append(dst, '[')
		items := 0
		for d.err == nil {
			n := d.readBlockLen()
			if n == 0 || d.err != nil {
				break
			}
			if n > int64(MaxDecodedListLen-items) {
				d.fail(fmt.Errorf("list of more than %d items", MaxDecodedListLen))
				break
			}
			for ; n > 0 && d.err == nil; n-- {
				if items > 0 {
					dst = append(dst, ',')
				}
				items++
				dst = d.appendValue(dst, key, depth+1)
			}
		}
		return append(dst, ']')
	}
	lv := &d.levels[depth]
	lv.buf, lv.entries = lv.buf[:0], lv.entries[:0]
	for d.err == nil {
		n := d.readBlockLen()
		if n == 0 || d.err != nil {
			break
		}
		for ; n > 0 && d.err == nil; n-- {
			k := d.readString()
			j0 := len(lv.buf)
			lv.buf = d.appendValue(lv.buf, key, depth+1)
			lv.entries = append(lv.entries, nestedEntry{key: k, json0: j0, json1: len(lv.buf)})
		}
	}
	slices.SortStableFunc(lv.entries, func(a, b nestedEntry) int { return cmp.Compare(a.key, b.key) })
	dst = append(dst, '{')
	first := true
	for j, e := range lv.entries {
		if j+1 < len(lv.entries) && lv.entries[j+1].key == e.key {
			continue // a repeated key keeps its last value
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, e.key)
		dst = append(dst, ':')
		dst = append(dst, lv.buf[e.json0:e.json1]...)
	}
	return append(dst, '}')
}

// appendValue reads a nested attribute value at depth and appends its JSON.
func (d *Decoder) appendValue(dst []byte, key string, depth int) []byte {
	i := d.readUnionIndex(avBranches)
	if d.err != nil {
		return dst
	}
	switch i {
	case avNull:
		return append(dst, "null"...)
	case avBool:
		return strconv.AppendBool(dst, d.readBool())
	case avLong:
		return strconv.AppendInt(dst, d.readLong(), 10)
	case avDouble:
		return appendJSONFloat(dst, d.readFiniteDouble(key))
	case avString:
		return appendJSONString(dst, d.readString())
	}
	return d.appendNested(dst, i, key, depth)
}
