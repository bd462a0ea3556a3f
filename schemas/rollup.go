package schemas

import (
	"fmt"
	"time"
)

// Rollup is a window's aggregate as published on the rollups topic (see avro/rollup.avsc).
type Rollup struct {
	Tenant          string
	Name            string
	Unit            string
	AggregationType AggregationType
	SeriesID        uint64
	Attributes      map[string]any
	TierSeconds     int32
	WindowStart     time.Time
	SourcePartition int32
	LastOffset      int64
	Count           uint64
	Sum, Min, Max   float64
	Last            float64
	LastTimestamp   time.Time
	Sketch          *RollupSketch // histograms only
	Final           bool
}

// RollupSketch holds a histogram's sketch buckets as sorted parallel arrays.
type RollupSketch struct {
	RelativeAccuracy float64
	PositiveKeys     []int32
	PositiveCounts   []uint64
	NegativeKeys     []int32
	NegativeCounts   []uint64
	ZeroCount        uint64
}

type wireSketch struct {
	RelativeAccuracy float64 `avro:"relative_accuracy"`
	PositiveKeys     []int32 `avro:"positive_keys"`
	PositiveCounts   []int64 `avro:"positive_counts"`
	NegativeKeys     []int32 `avro:"negative_keys"`
	NegativeCounts   []int64 `avro:"negative_counts"`
	ZeroCount        int64   `avro:"zero_count"`
}

type wireRollup struct {
	Tenant          string               `avro:"tenant"`
	Name            string               `avro:"name"`
	Unit            string               `avro:"unit"`
	AggregationType string               `avro:"aggregation_type"`
	SeriesID        int64                `avro:"series_id"`
	Attributes      map[string]attrValue `avro:"attributes"`
	TierSeconds     int32                `avro:"tier_seconds"`
	WindowStart     time.Time            `avro:"window_start"`
	SourcePartition int32                `avro:"source_partition"`
	LastOffset      int64                `avro:"last_offset"`
	Count           int64                `avro:"count"`
	Sum             float64              `avro:"sum"`
	Min             float64              `avro:"min"`
	Max             float64              `avro:"max"`
	Last            float64              `avro:"last"`
	LastTimestamp   time.Time            `avro:"last_timestamp"`
	Sketch          *wireSketch          `avro:"sketch"`
	Final           bool                 `avro:"final"`
}

func toSigned(u []uint64) []int64 {
	out := make([]int64, len(u))
	for i, v := range u {
		out[i] = int64(v)
	}
	return out
}

func toUnsigned(s []int64) []uint64 {
	out := make([]uint64, len(s))
	for i, v := range s {
		out[i] = uint64(v)
	}
	return out
}

// AppendRollup appends r in single-object encoding to dst.
func (c *Codec) AppendRollup(dst []byte, r *Rollup) ([]byte, error) {
	attrs, err := toWireAttrs(r.Attributes)
	if err != nil {
		return dst, fmt.Errorf("encode rollup: %w", err)
	}
	w := wireRollup{
		Tenant: r.Tenant, Name: r.Name, Unit: r.Unit, AggregationType: string(r.AggregationType),
		SeriesID: int64(r.SeriesID), Attributes: attrs, TierSeconds: r.TierSeconds, WindowStart: r.WindowStart.UTC(),
		SourcePartition: r.SourcePartition, LastOffset: r.LastOffset, Count: int64(r.Count),
		Sum: r.Sum, Min: r.Min, Max: r.Max, Last: r.Last, LastTimestamp: r.LastTimestamp.UTC(), Final: r.Final,
	}
	if s := r.Sketch; s != nil {
		w.Sketch = &wireSketch{
			RelativeAccuracy: s.RelativeAccuracy, PositiveKeys: nonNil(s.PositiveKeys), PositiveCounts: toSigned(s.PositiveCounts),
			NegativeKeys: nonNil(s.NegativeKeys), NegativeCounts: toSigned(s.NegativeCounts), ZeroCount: int64(s.ZeroCount),
		}
	}
	return c.append(dst, c.rollupH[:], c.rollup, &w, "rollup")
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// DecodeRollup decodes a single-object-encoded rollup.
func (c *Codec) DecodeRollup(data []byte) (Rollup, error) {
	var w wireRollup
	attrs, err := c.decodeWithAttributes(data, KindRollup, &w, &w.Attributes)
	if err != nil {
		return Rollup{}, err
	}
	r := Rollup{
		Tenant: w.Tenant, Name: w.Name, Unit: w.Unit, AggregationType: AggregationType(w.AggregationType),
		SeriesID: uint64(w.SeriesID), Attributes: attrs, TierSeconds: w.TierSeconds, WindowStart: w.WindowStart.UTC(),
		SourcePartition: w.SourcePartition, LastOffset: w.LastOffset, Count: uint64(w.Count),
		Sum: w.Sum, Min: w.Min, Max: w.Max, Last: w.Last, LastTimestamp: w.LastTimestamp.UTC(), Final: w.Final,
	}
	if s := w.Sketch; s != nil {
		r.Sketch = &RollupSketch{
			RelativeAccuracy: s.RelativeAccuracy, PositiveKeys: s.PositiveKeys, PositiveCounts: toUnsigned(s.PositiveCounts),
			NegativeKeys: s.NegativeKeys, NegativeCounts: toUnsigned(s.NegativeCounts), ZeroCount: uint64(s.ZeroCount),
		}
	}
	return r, nil
}
