package gateway

import (
	"encoding/json"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/tributary/tributary/schemas"
)

// defaultLogType is the event type of a log record with no event name.
const defaultLogType = "log"

// convertLogs turns every log record of ld into an event (docs/otlp.md has the mapping field by
// field). Item numbers count log records in request order.
func (b *otlpBatch) convertLogs(ld plog.Logs) error {
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			sl := sls.At(j)
			o := newOrigin(b.tenant, rl.Resource(), sl.Scope())
			lrs := sl.LogRecords()
			for k := range lrs.Len() {
				b.addEvent(b.items, logEvent(&o, lrs.At(k)))
				b.items++
				if err := b.full(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func logEvent(o *origin, lr plog.LogRecord) schemas.Event {
	attrs := o.attributes(lr.Attributes(), 4)
	e := schemas.Event{Type: lr.EventName(), Source: o.src}
	if e.Type == "" {
		if v, ok := lr.Attributes().Get(attrEventName); ok && v.AsString() != "" {
			e.Type = v.AsString()
		} else {
			e.Type = defaultLogType
		}
	}
	switch body := lr.Body(); body.Type() {
	case pcommon.ValueTypeStr:
		e.Name = body.Str()
	case pcommon.ValueTypeEmpty:
	default: // the name is the body as JSON text; the attribute keeps its types
		v := anyValue(body)
		attrs[attrBody] = v
		if js, err := json.Marshal(v); err == nil {
			e.Name = string(js)
		}
	}
	if e.Name == "" {
		e.Name = e.Type
	}
	if t := lr.SeverityText(); t != "" {
		attrs[attrSeverityText] = t
	}
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		attrs[attrSeverityNumber] = int64(n)
	}
	if n := lr.DroppedAttributesCount(); n > 0 {
		attrs[attrDropped] = int64(n)
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		e.TraceID = id.String()
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		e.SpanID = id.String()
	}
	e.Timestamp = otlpTime(lr.Timestamp(), lr.ObservedTimestamp())
	if len(attrs) > 0 {
		e.Attributes = attrs
	}
	return e
}

// otlpTime is the first non-zero of the given times, or zero (the gateway then fills it in).
func otlpTime(ts ...pcommon.Timestamp) time.Time {
	for _, t := range ts {
		if t != 0 {
			return time.Unix(0, int64(t)).UTC()
		}
	}
	return time.Time{}
}
