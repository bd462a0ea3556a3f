package consumer

import (
	"strings"

	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// maxCachedSeries bounds the series a worker's poll loop remembers (a few hundred bytes each):
// past it the cache starts over.
const maxCachedSeries = 1 << 15

// seriesCache remembers the series of recent metrics, so a point of a series seen before takes
// its identity (id, canonical JSON, flattened attributes) from the cache instead of building it
// again: a series repeats across many points. Series are never changed once made, so points,
// batches and rollup windows share them. Not safe for concurrent use: the poll loop owns it.
type seriesCache struct {
	m map[uint64]*rollups.Series
}

func newSeriesCache() *seriesCache { return &seriesCache{m: make(map[uint64]*rollups.Series)} }

// of returns the series of m, just decoded by d (whose attributes are m's).
func (c *seriesCache) of(m *schemas.Metric, d *schemas.Decoder) *rollups.Series {
	attrJSON := d.AttrJSON()
	id := rollups.SeriesIDBytes(m.Tenant, m.Name, m.Unit, string(m.AggregationType), attrJSON)
	if s, ok := c.m[id]; ok && s.Tenant == m.Tenant && s.Name == m.Name && s.Unit == m.Unit &&
		s.Type == m.AggregationType && s.AttrJSON == string(attrJSON) {
		return s
	}
	// A new series outlives the record it came from (in rollup windows): its strings are copies,
	// not slices of the record.
	json, keys, values := d.AttrColumns()
	s := &rollups.Series{ID: id, Tenant: strings.Clone(m.Tenant), Name: strings.Clone(m.Name), Unit: strings.Clone(m.Unit),
		Type: schemas.AggregationType(strings.Clone(string(m.AggregationType))), AttrJSON: json,
		AttrKeys: cloneAll(keys), AttrValues: cloneAll(values)}
	if len(c.m) >= maxCachedSeries {
		clear(c.m)
	}
	c.m[id] = s
	return s
}

func cloneAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	if ss == nil {
		return nil
	}
	return out
}
