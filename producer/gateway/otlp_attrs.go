package gateway

import (
	"encoding/base64"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/tributary/tributary/schemas"
)

// Keys of the attributes the OTLP mapping adds (docs/otlp.md lists them).
const (
	attrScopeName      = "otel.scope.name"
	attrScopeVersion   = "otel.scope.version"
	attrScopeAttrs     = "otel.scope.attributes"
	attrResourcePrefix = "otel.resource." // a resource attribute a record attribute of its key shadows
	attrSeverityText   = "otel.severity_text"
	attrSeverityNumber = "otel.severity_number"
	attrBody           = "otel.body"
	attrDropped        = "otel.dropped_attributes_count"
	attrEventName      = "event.name"
	resService         = "service.name"
	resHost            = "host.name"
)

// anyValue converts an OTLP AnyValue to the attribute value types Tributary carries: string, bool,
// int64 and float64 as they are; bytes as their standard base64 text (as OTLP/JSON writes them);
// arrays and key-value lists as []any and map[string]any, to any depth (the producer refuses
// nesting deeper than schemas.MaxAttributeDepth); an empty value as nil.
func anyValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		return v.Double()
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]any, s.Len())
		for i := range s.Len() {
			out[i] = anyValue(s.At(i))
		}
		return out
	case pcommon.ValueTypeMap:
		return mapValue(v.Map())
	}
	return nil
}

// mapValue converts an OTLP attribute map; a key repeated in the map (OTLP forbids it, the wire
// allows it) keeps its last value.
func mapValue(m pcommon.Map) map[string]any {
	out := make(map[string]any, m.Len())
	for k, v := range m.All() {
		out[k] = anyValue(v)
	}
	return out
}

// origin is what a record inherits from its resource and scope.
type origin struct {
	src   schemas.Source
	attrs map[string]any // resource attributes other than service.name and host.name, then scope
}

// newOrigin reads a resource and a scope: service.name and host.name go to the record's source,
// the other resource attributes and the scope's name, version and attributes become attributes.
func newOrigin(tenant string, res pcommon.Resource, scope pcommon.InstrumentationScope) origin {
	o := origin{src: schemas.Source{Tenant: tenant}, attrs: map[string]any{}}
	for k, v := range res.Attributes().All() {
		switch k {
		case resService:
			o.src.Service = v.AsString()
		case resHost:
			o.src.Host = v.AsString()
		default:
			o.attrs[k] = anyValue(v)
		}
	}
	if n := scope.Name(); n != "" {
		o.attrs[attrScopeName] = n
	}
	if v := scope.Version(); v != "" {
		o.attrs[attrScopeVersion] = v
	}
	if scope.Attributes().Len() > 0 {
		o.attrs[attrScopeAttrs] = mapValue(scope.Attributes())
	}
	return o
}

// attributes merges a record's own attributes over its origin's. A record attribute wins; the
// resource value it shadows is kept under otel.resource.<key>.
func (o *origin) attributes(own pcommon.Map, extra int) map[string]any {
	out := make(map[string]any, len(o.attrs)+own.Len()+extra)
	for k, v := range o.attrs {
		out[k] = v
	}
	for k, v := range own.All() {
		if prev, ok := out[k]; ok {
			out[attrResourcePrefix+k] = prev
		}
		out[k] = anyValue(v)
	}
	return out
}

// formatBound writes a histogram bucket bound as the le attribute carries it.
func formatBound(b float64) string { return strconv.FormatFloat(b, 'g', -1, 64) }
