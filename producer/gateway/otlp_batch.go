package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// otlpBatch is one OTLP request converted to records. Every record remembers the OTLP item it came
// from (a log record, or a metric data point, numbered in request order), because OTLP's partial
// success counts items: a data point that becomes several records is accepted or rejected whole.
type otlpBatch struct {
	tenant     string
	maxRecords int
	req        request // eventAt / metricAt hold item numbers
	items      int     // items seen
	rejected   int     // items rejected
	firstBad   int     // item number of the first problem
	problem    string  // the first problem, for the answer's error_message
	badItems   map[int]bool
	ids        map[[32]byte]int     // identical records seen, so each gets its own id
	cum        *cumulative          // nil: the request has no cumulative data (yet)
	updates    []*stream            // cumulative state to keep once the records are accepted
	pending    map[[16]byte]*stream // the newest of updates by stream
}

func newOTLPBatch(tenant string, maxRecords int) *otlpBatch {
	return &otlpBatch{tenant: tenant, maxRecords: maxRecords, firstBad: math.MaxInt, ids: map[[32]byte]int{}}
}

// reject counts item as rejected (once), keeping the message of the earliest item.
func (b *otlpBatch) reject(item int, format string, args ...any) {
	if b.badItems == nil {
		b.badItems = map[int]bool{}
	}
	if b.badItems[item] {
		return
	}
	b.badItems[item] = true
	b.rejected++
	if item < b.firstBad {
		b.firstBad, b.problem = item, fmt.Sprintf(format, args...)
	}
}

// full reports errTooMany once the records reach maxRecords.
func (b *otlpBatch) full() error {
	if b.req.size() > b.maxRecords {
		return fmt.Errorf("%w: more than %d records in one request (a summary data point makes 2 plus one per quantile)", errTooMany, b.maxRecords)
	}
	return nil
}

func (b *otlpBatch) addEvent(item int, e schemas.Event) {
	e.EventID = b.id("e", e.Type, e.Name, e.TraceID, e.SpanID, "", e.Timestamp, 0, e.Attributes, e.Source)
	b.req.events = append(b.req.events, e)
	b.req.eventAt = append(b.req.eventAt, item)
}

func (b *otlpBatch) addMetric(item int, m schemas.Metric) {
	var hist string
	if m.Histogram != nil {
		hist = histogramDigest(m.Histogram)
	}
	m.MetricID = b.id("m", m.Name, m.Unit, string(m.AggregationType), hist, "", m.Timestamp, m.Value, m.Attributes, m.Source)
	b.req.metrics = append(b.req.metrics, m)
	b.req.metricAt = append(b.req.metricAt, item)
}

// id makes a record's id from its content (a UUID of version 5's layout over SHA-256): a client
// that re-sends a request gets the same ids, so the tables (which dedupe on timestamp and id) and
// the rollups (which skip ids they counted) store it once. Identical records within one request
// are numbered apart.
func (b *otlpBatch) id(kind, f1, f2, f3, f4, f5 string, ts time.Time, v float64, attrs map[string]any, src schemas.Source) string {
	h := sha256.New()
	var num [8]byte
	for _, s := range []string{b.tenant, kind, f1, f2, f3, f4, f5, src.Service, src.Host} {
		binary.LittleEndian.PutUint64(num[:], uint64(len(s)))
		h.Write(num[:])
		h.Write([]byte(s))
	}
	binary.LittleEndian.PutUint64(num[:], uint64(ts.UnixNano()))
	h.Write(num[:])
	binary.LittleEndian.PutUint64(num[:], math.Float64bits(v))
	h.Write(num[:])
	h.Write(schemas.AppendAttributesJSON(nil, attrs))
	var sum [32]byte
	h.Sum(sum[:0])
	n := b.ids[sum]
	b.ids[sum] = n + 1
	if n > 0 {
		binary.LittleEndian.PutUint64(num[:], uint64(n))
		h.Write(num[:])
		h.Sum(sum[:0])
	}
	u := uuid.UUID(sum[:16])
	u[6] = u[6]&0x0f | 0x50 // version 5 layout (name-based)
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// refuse counts the items of the records the producer refused as rejected, with its reasons, and
// drops every record of those items.
func (b *otlpBatch) refuse(errs []*producer.BatchError) {
	for _, be := range errs {
		if be.Kind == "metric" {
			item := b.req.metricAt[be.Index]
			b.reject(item, "data point %d (metric %q): %v", item, b.req.metrics[be.Index].Name, be.Err)
		} else {
			item := b.req.eventAt[be.Index]
			b.reject(item, "log record %d: %v", item, be.Err)
		}
	}
	b.dropRejected()
}

// dropRejected removes every record of a rejected item.
func (b *otlpBatch) dropRejected() {
	if len(b.badItems) == 0 {
		return
	}
	var r request
	for i, e := range b.req.events {
		if !b.badItems[b.req.eventAt[i]] {
			r.events, r.eventAt = append(r.events, e), append(r.eventAt, b.req.eventAt[i])
		}
	}
	for i, m := range b.req.metrics {
		if !b.badItems[b.req.metricAt[i]] {
			r.metrics, r.metricAt = append(r.metrics, m), append(r.metricAt, b.req.metricAt[i])
		}
	}
	b.req = r
}
