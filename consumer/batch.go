package consumer

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// Batch holds decoded records in columns, ready for a columnar insert, and the last record of each
// partition it covers, to commit once the batch is written.
type Batch struct {
	Events  EventColumns
	Metrics MetricColumns

	// Points are the batch's metrics for the rollup engine, in offset order per partition.
	Points []rollups.Point
	// outbox holds records to produce before the commit: dead letters, then published rollups.
	outbox []*kgo.Record
	// revoked lists metrics partitions taken away before this batch was polled: the rollup engine
	// forgets them before it counts the batch.
	revoked []int32

	// eventSrc and metricSrc are the Kafka records of the rows of Events and Metrics, for
	// dead-lettering a row that ClickHouse refuses.
	eventSrc, metricSrc []*kgo.Record

	records     int // Kafka records covered, poison included
	refusedRows int // decoded rows ClickHouse refused on their own (dead-lettered, not stored)
	bytes       int
	last        map[partition]*kgo.Record

	// Stages already done, so a retry after a partial failure does not repeat them.
	eventsWritten, metricsWritten, rollupsApplied, rollupsWritten, outboxSent bool
	// isolation is the progress of writing the events' (0) or metrics' (1) rows in parts after
	// ClickHouse refused them as a whole (see Worker.isolateRaw); nil when not under way.
	isolation [2]*isolation
}

type partition struct {
	topic string
	id    int32
}

// EventColumns are the columns of the events table, one entry per event.
type EventColumns struct {
	Tenant, EventID, TraceID, SpanID, Type, Name []string
	Timestamp                                    []time.Time
	TimestampUS                                  []uint64
	Attributes                                   []string
	AttrKeys, AttrValues                         [][]string
	Service, Host                                []string
	IngestedAt                                   []time.Time
}

// MetricColumns are the columns of the metrics table, one entry per metric.
type MetricColumns struct {
	Tenant, MetricID, TraceID, Name []string
	Value                           []float64
	Unit, AggregationType           []string
	Timestamp                       []time.Time
	TimestampUS                     []uint64
	Attributes                      []string
	AttrKeys, AttrValues            [][]string
	Service, Host                   []string
	IngestedAt                      []time.Time
	Hist                            HistogramColumns
}

// HistogramColumns are the metrics table's columns of a row that holds many values (migration
// 0006): for a row of one value, count 1, min = max = the value, no buckets.
type HistogramColumns struct {
	Count, ExpZeroCount                  []uint64
	Min, Max, ExpZeroThreshold           []float64
	Bounds                               [][]float64
	Counts, ExpPositive, ExpNegative     [][]uint64
	ExpScale, ExpPosOffset, ExpNegOffset []int32
}

func (c *HistogramColumns) add(m *schemas.Metric) {
	h := m.Histogram
	var e schemas.ExponentialBuckets
	if h == nil {
		h = &schemas.Distribution{Count: 1, Min: m.Value, Max: m.Value}
	} else if h.Exponential != nil {
		e = *h.Exponential
	}
	c.Count, c.Min, c.Max = append(c.Count, h.Count), append(c.Min, h.Min), append(c.Max, h.Max)
	c.Bounds, c.Counts = append(c.Bounds, nonNil(h.Bounds)), append(c.Counts, nonNil(h.Counts))
	c.ExpScale, c.ExpZeroCount, c.ExpZeroThreshold = append(c.ExpScale, e.Scale), append(c.ExpZeroCount, e.ZeroCount), append(c.ExpZeroThreshold, e.ZeroThreshold)
	c.ExpPosOffset, c.ExpPositive = append(c.ExpPosOffset, e.PositiveOffset), append(c.ExpPositive, nonNil(e.PositiveCounts))
	c.ExpNegOffset, c.ExpNegative = append(c.ExpNegOffset, e.NegativeOffset), append(c.ExpNegative, nonNil(e.NegativeCounts))
}

func (c *HistogramColumns) slice(i, j int) HistogramColumns {
	return HistogramColumns{Count: c.Count[i:j], ExpZeroCount: c.ExpZeroCount[i:j], Min: c.Min[i:j], Max: c.Max[i:j],
		ExpZeroThreshold: c.ExpZeroThreshold[i:j], Bounds: c.Bounds[i:j], Counts: c.Counts[i:j], ExpPositive: c.ExpPositive[i:j],
		ExpNegative: c.ExpNegative[i:j], ExpScale: c.ExpScale[i:j], ExpPosOffset: c.ExpPosOffset[i:j], ExpNegOffset: c.ExpNegOffset[i:j]}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newBatch() *Batch { return &Batch{last: make(map[partition]*kgo.Record)} }

// newBatchAfter returns an empty batch whose columns have room for as many events and metrics as
// prev held: batches at a steady rate are alike, so the next one gathers without growing them.
func newBatchAfter(prev *Batch) *Batch {
	b := &Batch{last: make(map[partition]*kgo.Record, len(prev.last))}
	if n := len(prev.Events.EventID); n > 0 {
		b.Events.grow(n)
		b.eventSrc = make([]*kgo.Record, 0, n)
	}
	if n := len(prev.Metrics.MetricID); n > 0 {
		b.Metrics.grow(n)
		b.metricSrc = make([]*kgo.Record, 0, n)
		b.Points = make([]rollups.Point, 0, n)
	}
	return b
}

// grow gives every column room for n more rows.
func (c *EventColumns) grow(n int) {
	for _, s := range []*[]string{&c.Tenant, &c.EventID, &c.TraceID, &c.SpanID, &c.Type, &c.Name, &c.Attributes, &c.Service, &c.Host} {
		*s = slices.Grow(*s, n)
	}
	c.Timestamp, c.IngestedAt = slices.Grow(c.Timestamp, n), slices.Grow(c.IngestedAt, n)
	c.TimestampUS = slices.Grow(c.TimestampUS, n)
	c.AttrKeys, c.AttrValues = slices.Grow(c.AttrKeys, n), slices.Grow(c.AttrValues, n)
}

// grow gives every column room for n more rows.
func (c *MetricColumns) grow(n int) {
	for _, s := range []*[]string{&c.Tenant, &c.MetricID, &c.TraceID, &c.Name, &c.Unit, &c.AggregationType, &c.Attributes, &c.Service, &c.Host} {
		*s = slices.Grow(*s, n)
	}
	c.Value = slices.Grow(c.Value, n)
	c.Timestamp, c.IngestedAt = slices.Grow(c.Timestamp, n), slices.Grow(c.IngestedAt, n)
	c.TimestampUS = slices.Grow(c.TimestampUS, n)
	c.AttrKeys, c.AttrValues = slices.Grow(c.AttrKeys, n), slices.Grow(c.AttrValues, n)
	h := &c.Hist
	h.Count, h.ExpZeroCount = slices.Grow(h.Count, n), slices.Grow(h.ExpZeroCount, n)
	h.Min, h.Max, h.ExpZeroThreshold = slices.Grow(h.Min, n), slices.Grow(h.Max, n), slices.Grow(h.ExpZeroThreshold, n)
	h.Bounds = slices.Grow(h.Bounds, n)
	h.Counts, h.ExpPositive, h.ExpNegative = slices.Grow(h.Counts, n), slices.Grow(h.ExpPositive, n), slices.Grow(h.ExpNegative, n)
	h.ExpScale, h.ExpPosOffset, h.ExpNegOffset = slices.Grow(h.ExpScale, n), slices.Grow(h.ExpPosOffset, n), slices.Grow(h.ExpNegOffset, n)
}

// NewBatch returns a batch of events and metrics ingested at now, gathered as a worker gathers the
// records it polls, for a Store's Write without Kafka (package consumertest fills tables with it).
// It covers no Kafka records, so Len is 0 and there is nothing to commit; its points are those of
// partition 0 at offset 0. The records must be valid with normalised attributes.
func NewBatch(events []schemas.Event, metrics []schemas.Metric, now time.Time) *Batch {
	b := newBatch()
	now = now.UTC().Truncate(time.Second)
	for i := range events {
		b.addEvent(&events[i], now)
	}
	for i := range metrics {
		b.addMetric(&metrics[i], now, nil)
	}
	return b
}

// Len is the number of Kafka records the batch covers.
func (b *Batch) Len() int { return b.records }

func (b *Batch) track(r *kgo.Record) {
	b.records++
	b.bytes += len(r.Value)
	b.last[partition{r.Topic, r.Partition}] = r
}

func (b *Batch) commitList() []*kgo.Record {
	out := make([]*kgo.Record, 0, len(b.last))
	for _, r := range b.last {
		out = append(out, r)
	}
	return out
}

func (b *Batch) addEvent(e *schemas.Event, now time.Time) {
	attrJSON, keys, values := schemas.AttributeColumns(e.Attributes)
	b.addEventRow(e, attrJSON, keys, values, now)
}

// addEventRow adds e with its attributes in their stored forms (e.Attributes is not read).
func (b *Batch) addEventRow(e *schemas.Event, attrJSON string, keys, values []string, now time.Time) {
	c := &b.Events
	c.Tenant = append(c.Tenant, e.Tenant)
	c.EventID = append(c.EventID, e.EventID)
	c.TraceID = append(c.TraceID, e.TraceID)
	c.SpanID = append(c.SpanID, e.SpanID)
	c.Type = append(c.Type, e.Type)
	c.Name = append(c.Name, e.Name)
	c.Timestamp = append(c.Timestamp, e.Timestamp.Truncate(time.Second))
	c.TimestampUS = append(c.TimestampUS, uint64(e.Timestamp.UnixMicro()))
	c.Attributes = append(c.Attributes, attrJSON)
	c.AttrKeys = append(c.AttrKeys, keys)
	c.AttrValues = append(c.AttrValues, values)
	c.Service = append(c.Service, e.Service)
	c.Host = append(c.Host, e.Host)
	c.IngestedAt = append(c.IngestedAt, now)
}

func (b *Batch) addMetric(m *schemas.Metric, now time.Time, r *kgo.Record) {
	b.addMetricRow(m, rollups.SeriesOf(m), now, r)
}

// addMetricRow adds m, of series (whose attributes are m's; m.Attributes is not read).
func (b *Batch) addMetricRow(m *schemas.Metric, series *rollups.Series, now time.Time, r *kgo.Record) {
	c := &b.Metrics
	keys, values := series.AttrKeys, series.AttrValues
	c.Tenant = append(c.Tenant, m.Tenant)
	c.MetricID = append(c.MetricID, m.MetricID)
	c.TraceID = append(c.TraceID, m.TraceID)
	c.Name = append(c.Name, m.Name)
	c.Value = append(c.Value, m.Value)
	c.Unit = append(c.Unit, m.Unit)
	c.AggregationType = append(c.AggregationType, string(m.AggregationType))
	c.Timestamp = append(c.Timestamp, m.Timestamp.Truncate(time.Second))
	c.TimestampUS = append(c.TimestampUS, uint64(m.Timestamp.UnixMicro()))
	c.Attributes = append(c.Attributes, series.AttrJSON)
	c.AttrKeys = append(c.AttrKeys, keys)
	c.AttrValues = append(c.AttrValues, values)
	c.Service = append(c.Service, m.Service)
	c.Host = append(c.Host, m.Host)
	c.IngestedAt = append(c.IngestedAt, now)
	c.Hist.add(m)
	var part int32
	var off int64
	if r != nil {
		part, off = r.Partition, r.Offset
	}
	b.Points = append(b.Points, rollups.Point{Series: series, Value: m.Value, TS: m.Timestamp.UnixMicro(), Partition: part, Offset: off,
		ID: rollups.RecordID(m.Tenant, m.MetricID), Hist: m.Histogram})
}

// partitions returns the partitions of the batch's points.
func (b *Batch) partitions() []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, p := range b.Points {
		if !seen[p.Partition] {
			seen[p.Partition] = true
			out = append(out, p.Partition)
		}
	}
	return out
}

// rawRows is the number of event rows (events true) or metric rows.
func (b *Batch) rawRows(events bool) int {
	if events {
		return len(b.Events.EventID)
	}
	return len(b.Metrics.MetricID)
}

// rawWritten is the flag saying b's event rows (events true) or metric rows are stored.
func (b *Batch) rawWritten(events bool) *bool {
	if events {
		return &b.eventsWritten
	}
	return &b.metricsWritten
}

// rawSources are the Kafka records of b's event rows (events true) or metric rows.
func (b *Batch) rawSources(events bool) []*kgo.Record {
	if events {
		return b.eventSrc
	}
	return b.metricSrc
}

// rawSlice returns a batch holding only rows [i, j) of b's events (events true) or metrics, for
// writing part of a batch that ClickHouse refused as a whole.
func (b *Batch) rawSlice(events bool, i, j int) *Batch {
	out := newBatch()
	if events {
		c := &b.Events
		out.Events = EventColumns{
			Tenant: c.Tenant[i:j], EventID: c.EventID[i:j], TraceID: c.TraceID[i:j], SpanID: c.SpanID[i:j], Type: c.Type[i:j],
			Name: c.Name[i:j], Timestamp: c.Timestamp[i:j], TimestampUS: c.TimestampUS[i:j], Attributes: c.Attributes[i:j],
			AttrKeys: c.AttrKeys[i:j], AttrValues: c.AttrValues[i:j], Service: c.Service[i:j], Host: c.Host[i:j],
			IngestedAt: c.IngestedAt[i:j],
		}
		out.eventSrc = b.eventSrc[i:j]
	} else {
		c := &b.Metrics
		out.Metrics = MetricColumns{
			Tenant: c.Tenant[i:j], MetricID: c.MetricID[i:j], TraceID: c.TraceID[i:j], Name: c.Name[i:j], Value: c.Value[i:j],
			Unit: c.Unit[i:j], AggregationType: c.AggregationType[i:j], Timestamp: c.Timestamp[i:j],
			TimestampUS: c.TimestampUS[i:j], Attributes: c.Attributes[i:j], AttrKeys: c.AttrKeys[i:j],
			AttrValues: c.AttrValues[i:j], Service: c.Service[i:j], Host: c.Host[i:j], IngestedAt: c.IngestedAt[i:j],
			Hist: c.Hist.slice(i, j),
		}
		out.metricSrc = b.metricSrc[i:j]
	}
	out.records = j - i
	return out
}
