package rollups

import (
	"github.com/cespare/xxhash/v2"

	"github.com/tributary/tributary/schemas"
)

// Series identifies what a rollup row aggregates: tenant, metric name, unit, aggregation type and
// the attributes. Points differing in any of these are never mixed. The attributes are kept in
// their stored forms only (canonical JSON and flattened columns), not as a map: a consumer holds
// the series of every window in memory, and the map is most of a series' size.
type Series struct {
	ID         uint64 // xxhash64 of the identity; stable across processes and versions
	Tenant     string
	Name       string
	Unit       string
	Type       schemas.AggregationType
	AttrJSON   string // canonical JSON (sorted keys); schemas.ParseAttributesJSON gives the map back
	AttrKeys   []string
	AttrValues []string
}

// SeriesOf returns m's series.
func SeriesOf(m *schemas.Metric) *Series {
	s := &Series{Tenant: m.Tenant, Name: m.Name, Unit: m.Unit, Type: m.AggregationType}
	s.AttrJSON, s.AttrKeys, s.AttrValues = schemas.AttributeColumns(m.Attributes)
	s.ID = SeriesID(s.Tenant, s.Name, s.Unit, string(s.Type), s.AttrJSON)
	return s
}

// SeriesID hashes a series identity; attrJSON must be canonical (schemas.AppendAttributesJSON).
func SeriesID(tenant, name, unit, aggregationType, attrJSON string) uint64 {
	return seriesID(tenant, name, unit, aggregationType, attrJSON)
}

// SeriesIDBytes is SeriesID of attributes held as bytes (a decoder's buffer), without copying them.
func SeriesIDBytes(tenant, name, unit, aggregationType string, attrJSON []byte) uint64 {
	return seriesID(tenant, name, unit, aggregationType, attrJSON)
}

func seriesID[J string | []byte](tenant, name, unit, aggregationType string, attrJSON J) uint64 {
	var d xxhash.Digest
	d.Reset()
	zero := []byte{0}
	for _, part := range [...]string{tenant, name, unit, aggregationType} {
		_, _ = d.WriteString(part)
		_, _ = d.Write(zero)
	}
	switch j := any(attrJSON).(type) {
	case string:
		_, _ = d.WriteString(j)
	case []byte:
		_, _ = d.Write(j)
	}
	_, _ = d.Write(zero)
	return d.Sum64()
}
