package gateway

import (
	"encoding/binary"
	"hash/fnv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/tributary/tributary/schemas"
)

// Names and units of the metric points a summary data point becomes.
const (
	suffixCount  = ".count"
	suffixSum    = ".sum"
	unitCount    = "count"
	attrQuantile = "quantile"
)

// metricConv converts the data points of one OTLP metric.
type metricConv struct {
	b    *otlpBatch
	o    *origin
	m    pmetric.Metric
	kind string // the stream's kind, part of a cumulative stream's key
}

// convertMetrics turns every data point of md into metric points (docs/otlp.md has the mapping).
// Item numbers count data points in request order. cum holds the cumulative streams' state; the
// batch takes its request lock at its first cumulative point.
func (b *otlpBatch) convertMetrics(md pmetric.Metrics, cum *cumulative) error {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			sm := sms.At(j)
			o := newOrigin(b.tenant, rm.Resource(), sm.Scope())
			ms := sm.Metrics()
			for k := range ms.Len() {
				c := metricConv{b: b, o: &o, m: ms.At(k)}
				if err := c.convert(cum); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (c *metricConv) convert(cum *cumulative) error {
	m := c.m
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return c.numbers(m.Gauge().DataPoints(), nil, schemas.Gauge)
	case pmetric.MetricTypeSum:
		s := m.Sum()
		switch {
		case !s.IsMonotonic():
			return c.numbers(s.DataPoints(), nil, schemas.Gauge)
		case s.AggregationTemporality() == pmetric.AggregationTemporalityDelta:
			return c.numbers(s.DataPoints(), nil, schemas.Counter)
		case s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative:
			c.kind = "sum"
			return c.numbers(s.DataPoints(), cum, schemas.Counter)
		}
		return c.rejectAll(s.DataPoints().Len(), "sum %q: aggregation temporality unspecified (want delta or cumulative)", m.Name())
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		switch h.AggregationTemporality() {
		case pmetric.AggregationTemporalityDelta:
			cum = nil
		case pmetric.AggregationTemporalityCumulative:
			c.kind = "histogram"
		default:
			return c.rejectAll(h.DataPoints().Len(), "histogram %q: aggregation temporality unspecified (want delta or cumulative)", m.Name())
		}
		return c.histograms(h.DataPoints(), cum)
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		switch h.AggregationTemporality() {
		case pmetric.AggregationTemporalityDelta:
			cum = nil
		case pmetric.AggregationTemporalityCumulative:
			c.kind = "exphistogram"
		default:
			return c.rejectAll(h.DataPoints().Len(), "exponential histogram %q: aggregation temporality unspecified (want delta or cumulative)", m.Name())
		}
		return c.expHistograms(h.DataPoints(), cum)
	case pmetric.MetricTypeSummary:
		c.kind = "summary"
		return c.summaries(m.Summary().DataPoints(), cum)
	}
	return c.rejectAll(1, "metric %q: no data (gauge, sum, histogram, exponential histogram or summary)", m.Name())
}

// rejectAll rejects the next n items.
func (c *metricConv) rejectAll(n int, format string, args ...any) error {
	for range n {
		c.b.reject(c.b.items, format, args...)
		c.b.items++
	}
	return nil
}

// point is one data point being converted: its item number, attributes and time.
type point struct {
	item  int
	attrs map[string]any
	ts    pcommon.Timestamp
	start pcommon.Timestamp
}

func (c *metricConv) next(attrs pcommon.Map, ts, start pcommon.Timestamp, flags pmetric.DataPointFlags) (point, bool) {
	p := point{item: c.b.items, attrs: c.o.attributes(attrs, 1), ts: ts, start: start}
	c.b.items++
	return p, !flags.NoRecordedValue()
}

// emit adds one metric point of the data point p.
func (c *metricConv) emit(p point, suffix, unit string, agg schemas.AggregationType, v float64, extra ...any) {
	attrs := p.attrs
	if len(extra) > 0 {
		attrs = make(map[string]any, len(p.attrs)+1)
		for k, v := range p.attrs {
			attrs[k] = v
		}
		attrs[extra[0].(string)] = extra[1]
	}
	c.b.addMetric(p.item, schemas.Metric{Name: c.m.Name() + suffix, Value: v, Unit: unit, AggregationType: agg,
		Timestamp: otlpTime(p.ts), Attributes: attrs, Source: c.o.src})
}

// increase turns a cumulative point's values (next.vals) into increases (cum nil: they are
// increases already).
func (c *metricConv) increase(cum *cumulative, p point, next stream) (increase, bool) {
	if cum == nil {
		return increase{vals: next.vals, exp: next.exp}, true
	}
	b := c.b
	if b.cum == nil {
		cum.reqMu.Lock() // released by the request once its records are handed over
		b.cum = cum
	}
	next.key, next.start, next.last = c.streamKey(p.attrs), uint64(p.start), uint64(p.ts)
	prev := b.pending[next.key]
	if prev == nil {
		prev = cum.lookup(next.key)
	}
	d, ok := cum.delta(prev, &next)
	if prev == nil || ok {
		if b.pending == nil {
			b.pending = map[[16]byte]*stream{}
		}
		b.pending[next.key] = &next
		b.updates = append(b.updates, &next)
	}
	return d, ok
}

// streamKey identifies a cumulative stream: tenant, source, kind, name, unit and every attribute
// (resource, scope and the point's own).
func (c *metricConv) streamKey(attrs map[string]any) [16]byte {
	h := fnv.New128a()
	var n [8]byte
	for _, s := range []string{c.b.tenant, c.o.src.Service, c.o.src.Host, c.kind, c.m.Name(), c.m.Unit()} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write(schemas.AppendAttributesJSON(nil, attrs))
	var k [16]byte
	h.Sum(k[:0])
	return k
}

func (c *metricConv) numbers(dps pmetric.NumberDataPointSlice, cum *cumulative, agg schemas.AggregationType) error {
	for i := range dps.Len() {
		dp := dps.At(i)
		p, ok := c.next(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp(), dp.Flags())
		if !ok {
			continue
		}
		var v float64
		switch dp.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			v = float64(dp.IntValue())
		case pmetric.NumberDataPointValueTypeDouble:
			v = dp.DoubleValue()
		default:
			c.b.reject(p.item, "data point %d (metric %q): no value", p.item, c.m.Name())
			continue
		}
		if cum != nil {
			d, ok := c.increase(cum, p, stream{vals: []float64{v}})
			if !ok {
				continue
			}
			v = d.vals[0]
		}
		c.emit(p, "", c.m.Unit(), agg, v)
		if err := c.b.full(); err != nil {
			return err
		}
	}
	return nil
}

func (c *metricConv) summaries(dps pmetric.SummaryDataPointSlice, cum *cumulative) error {
	for i := range dps.Len() {
		dp := dps.At(i)
		p, ok := c.next(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp(), dp.Flags())
		if !ok {
			continue
		}
		qs := dp.QuantileValues()
		for j := range qs.Len() {
			c.emit(p, "", c.m.Unit(), schemas.Gauge, qs.At(j).Value(), attrQuantile, qs.At(j).Quantile())
		}
		d, ok := c.increase(cum, p, stream{vals: []float64{float64(dp.Count()), dp.Sum()}})
		if !ok {
			continue
		}
		c.emit(p, suffixCount, unitCount, schemas.Counter, d.vals[0])
		c.emit(p, suffixSum, c.m.Unit(), schemas.Counter, d.vals[1])
		if err := c.b.full(); err != nil {
			return err
		}
	}
	return nil
}
