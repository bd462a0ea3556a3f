package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

// histJSON and expJSON are the histogram of a /v1/metrics point as the docs name its fields;
// decoding with DisallowUnknownFields into them catches a field renamed or added.
type histJSON struct {
	Count       uint64    `json:"count"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	Bounds      []float64 `json:"bounds"`
	Counts      []uint64  `json:"counts"`
	Exponential *expJSON  `json:"exponential"`
}

type expJSON struct {
	Scale          int32    `json:"scale"`
	ZeroCount      uint64   `json:"zero_count"`
	ZeroThreshold  float64  `json:"zero_threshold"`
	PositiveOffset int32    `json:"positive_offset"`
	PositiveCounts []uint64 `json:"positive_counts"`
	NegativeOffset int32    `json:"negative_offset"`
	NegativeCounts []uint64 `json:"negative_counts"`
}

// histogramPoints are metric points of every shape the metrics table stores: one value (counter,
// gauge, the SDK's histogram points), and OTLP histograms with no buckets, empty buckets, 160
// explicit buckets, 160 exponential buckets, one side or the zero bucket only, and counts past
// 2^53 (where a float64 would round them).
func histogramPoints(t *testing.T, at time.Time) []schemas.Metric {
	var ms []schemas.Metric
	add := func(name string, typ schemas.AggregationType, v float64, h *schemas.Distribution) {
		m := schemas.Metric{MetricID: fmt.Sprintf("hp%02d", len(ms)), Name: name, Value: v, Unit: "s", AggregationType: typ,
			Timestamp: at.Add(time.Duration(len(ms)) * time.Second), Attributes: map[string]any{"k": "v"},
			Source: schemas.Source{Service: "svc", Host: "h1"}, Histogram: h}
		if err := m.Validate(); err != nil {
			t.Fatalf("%s: %v", m.MetricID, err)
		}
		ms = append(ms, m)
	}
	add("requests", schemas.Counter, 3, nil)
	add("cpu", schemas.Gauge, -1.5, nil)
	add("node_duration", schemas.Histogram, 0.25, nil) // the SDK's: one value a point
	add("rpc", schemas.Histogram, 312.05, &schemas.Distribution{Count: 7, Min: 0.05, Max: 250,
		Bounds: []float64{0, 5, 10, 25, 250}, Counts: []uint64{0, 4, 1, 1, 1, 0}}) // empty first and last buckets
	add("rpc", schemas.Histogram, 10, &schemas.Distribution{Count: 4, Min: 1, Max: 4}) // no buckets at all
	add("rpc", schemas.Histogram, 0, &schemas.Distribution{Count: 1, Min: -2, Max: 2, Bounds: []float64{-1, 1}, Counts: []uint64{0, 1, 0}})
	add("rpc", schemas.Histogram, 1.5, &schemas.Distribution{Count: 1, Min: 1.5, Max: 1.5, Bounds: []float64{1, 2}, Counts: []uint64{0, 1, 0}})
	add("rpc", schemas.Histogram, 7, &schemas.Distribution{Count: 1, Min: 7, Max: 7}) // one value and nothing more: as the SDK's

	many := &schemas.Distribution{Min: 0.001}
	for i := range 159 {
		many.Bounds = append(many.Bounds, 0.001*math.Pow(1.07, float64(i))) // neither integers nor short decimals
	}
	for i := range 160 {
		c := uint64((i * 7919) % 13) // zeros among them
		many.Counts = append(many.Counts, c)
		many.Count += c
	}
	many.Max = many.Bounds[158] * 1.5
	add("rpc", schemas.Histogram, 4321.123456789, many)

	e := &schemas.ExponentialBuckets{Scale: 4, ZeroCount: 2, ZeroThreshold: 1e-9, PositiveOffset: -20, NegativeOffset: 5}
	hist := &schemas.Distribution{Count: 2, Min: -40.5, Max: 1e6, Exponential: e}
	for i := range 100 {
		e.PositiveCounts = append(e.PositiveCounts, uint64(i%5))
		hist.Count += uint64(i % 5)
	}
	for i := range 60 {
		e.NegativeCounts = append(e.NegativeCounts, uint64(i%3))
		hist.Count += uint64(i % 3)
	}
	add("latency", schemas.Histogram, 98765.4321, hist)
	add("latency", schemas.Histogram, -9, &schemas.Distribution{Count: 3, Min: -5, Max: -1,
		Exponential: &schemas.ExponentialBuckets{Scale: -2, NegativeOffset: 3, NegativeCounts: []uint64{1, 0, 2}}})
	add("latency", schemas.Histogram, 0, &schemas.Distribution{Count: 3, Min: 0, Max: 0,
		Exponential: &schemas.ExponentialBuckets{ZeroCount: 3}}) // the zero bucket only, scale 0
	add("big", schemas.Histogram, 1e18, &schemas.Distribution{Count: 1<<60 + 5, Min: 0.5, Max: 3,
		Bounds: []float64{1}, Counts: []uint64{1 << 60, 5}})
	return ms
}

// oneValue reports whether a sent point holds one value and nothing more (the answer's histogram
// is then null).
func oneValue(m schemas.Metric) bool {
	h := m.Histogram
	return h == nil || (h.Exponential == nil && h.Count == 1 && h.Min == m.Value && h.Max == m.Value && len(h.Bounds) == 0)
}

func wantHist(m schemas.Metric) *histJSON {
	if oneValue(m) {
		return nil
	}
	h := m.Histogram
	w := &histJSON{Count: h.Count, Min: h.Min, Max: h.Max, Bounds: orEmpty(h.Bounds), Counts: orEmpty(h.Counts)}
	if e := h.Exponential; e != nil {
		w.Exponential = &expJSON{Scale: e.Scale, ZeroCount: e.ZeroCount, ZeroThreshold: e.ZeroThreshold, PositiveOffset: e.PositiveOffset,
			PositiveCounts: orEmpty(e.PositiveCounts), NegativeOffset: e.NegativeOffset, NegativeCounts: orEmpty(e.NegativeCounts)}
	}
	return w
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// GET /v1/metrics returns a histogram point's count, extremes and buckets exactly as the metrics
// table stores them, and null for a point of one value; the Go client gives back the Distribution
// that was sent.
func TestMetricsAnswerHistograms(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := histogramPoints(t, at)
	if err := consumertest.Write(ctx, conn, cfg.Database, nil, ms); err != nil {
		t.Fatal(err)
	}
	// A row as a consumer from before migration 0006 wrote it: the new columns take their defaults.
	old := schemas.Metric{MetricID: "hp-old", Name: "rpc", Value: 2.5, Unit: "s", AggregationType: schemas.Histogram,
		Timestamp: at.Add(time.Hour), Attributes: map[string]any{}}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+cfg.Database+".metrics (tenant, metric_id, trace_id, name, value, unit, "+
		"aggregation_type, timestamp, timestamp_us, attributes, attr_keys, attr_values, service, host, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Append("", old.MetricID, "", old.Name, old.Value, old.Unit, "histogram", old.Timestamp, uint64(old.Timestamp.UnixMicro()), "{}",
		[]string{}, []string{}, "", "", old.Timestamp); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	ms = append(ms, old)

	stored := map[string]*histJSON{} // what the table holds, read here without the query service
	rows, err := conn.Query(ctx, "SELECT metric_id, value, value_count, value_min, value_max, bucket_bounds, bucket_counts, exp_scale, "+
		"exp_zero_count, exp_zero_threshold, exp_positive_offset, exp_positive_counts, exp_negative_offset, exp_negative_counts FROM "+
		cfg.Database+".metrics FINAL")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for rows.Next() {
		var id string
		var v float64
		h, e := &histJSON{}, &expJSON{}
		if err := rows.Scan(&id, &v, &h.Count, &h.Min, &h.Max, &h.Bounds, &h.Counts, &e.Scale, &e.ZeroCount, &e.ZeroThreshold,
			&e.PositiveOffset, &e.PositiveCounts, &e.NegativeOffset, &e.NegativeCounts); err != nil {
			t.Fatal(err)
		}
		h.Exponential, stored[id], values[id] = e, h, v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	qcfg := query.DefaultConfig()
	qcfg.ClickHouse = cfg
	qcfg.ClickHouse.User, qcfg.ClickHouse.Password = "tributary_ro", "tributary_ro"
	url := testenv.QueryServer(t, qcfg)
	resp, err := http.Get(url + "/v1/metrics?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Metrics []map[string]json.RawMessage `json:"metrics"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/metrics: HTTP %d, %v", resp.StatusCode, err)
	}
	if len(answer.Metrics) != len(ms) {
		t.Fatalf("%d metrics, want %d", len(answer.Metrics), len(ms))
	}
	fields := "aggregation_type attributes histogram host metric_id name service tenant timestamp trace_id unit value"
	for i, got := range answer.Metrics {
		sent := ms[i]
		var id string
		_ = json.Unmarshal(got["metric_id"], &id)
		if keys := strings.Join(slices.Sorted(maps.Keys(got)), " "); keys != fields || id != sent.MetricID {
			t.Fatalf("metric %d: %s with fields %s, want %s with %s", i, id, keys, sent.MetricID, fields)
		}
		var value float64
		if err := json.Unmarshal(got["value"], &value); err != nil || value != sent.Value || value != values[id] {
			t.Errorf("%s: value %s, sent %v, stored %v", id, got["value"], sent.Value, values[id])
		}
		want, s := wantHist(sent), stored[id]
		raw := got["histogram"]
		if want == nil {
			// null loses nothing: the row holds one value, its defaults.
			if string(raw) != "null" {
				t.Errorf("%s (%s, one value): histogram %s, want null", id, sent.AggregationType, raw)
			}
			if !reflect.DeepEqual(s, &histJSON{Count: 1, Min: sent.Value, Max: sent.Value, Bounds: []float64{}, Counts: []uint64{},
				Exponential: &expJSON{PositiveCounts: []uint64{}, NegativeCounts: []uint64{}}}) {
				t.Errorf("%s: answered null but stored %+v %+v", id, s, s.Exponential)
			}
			continue
		}
		var h histJSON
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			t.Fatalf("%s: histogram %s: %v", id, raw, err)
		}
		if !reflect.DeepEqual(&h, want) {
			t.Errorf("%s: histogram\n got %s\nwant %+v %+v", id, raw, want, want.Exponential)
		}
		if want.Exponential == nil { // the stored exp_* columns are their defaults
			if !reflect.DeepEqual(s.Exponential, &expJSON{PositiveCounts: []uint64{}, NegativeCounts: []uint64{}}) {
				t.Errorf("%s: explicit buckets, stored exponential ones %+v", id, s.Exponential)
			}
			s = &histJSON{Count: s.Count, Min: s.Min, Max: s.Max, Bounds: s.Bounds, Counts: s.Counts}
		}
		if !reflect.DeepEqual(&h, s) {
			t.Errorf("%s: histogram\n got %s\nstored %+v %+v", id, raw, s, s.Exponential)
		}
		// Lists are [] when empty, never null.
		var parts, exp map[string]json.RawMessage
		_ = json.Unmarshal(raw, &parts)
		_ = json.Unmarshal(parts["exponential"], &exp)
		maps.Copy(parts, exp)
		for _, k := range []string{"bounds", "counts", "positive_counts", "negative_counts"} {
			if p, ok := parts[k]; ok && !bytes.HasPrefix(p, []byte("[")) {
				t.Errorf("%s: %s is %s, want a list", id, k, p)
			}
		}
	}

	// The Go client reads back what was sent (a point of one value with no Histogram).
	got, _, err := query.NewClient(url, nil).QueryMetrics(ctx, query.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		want := ms[i].Histogram
		if oneValue(ms[i]) {
			want = nil
		}
		if !reflect.DeepEqual(m.Histogram, want) {
			t.Errorf("client: %s: histogram %+v, want %+v", m.MetricID, m.Histogram, want)
		}
	}
	// openapi.json describes the fields the answer has.
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Properties map[string]any `json:"properties"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	getJSON(t, url+"/openapi.json", "", &doc)
	hs := doc.Components.Schemas["Histogram"].Properties
	for what, keys := range map[string][]string{
		"Metric":                slices.Sorted(maps.Keys(doc.Components.Schemas["Metric"].Properties)),
		"Histogram":             slices.Sorted(maps.Keys(hs)),
		"Histogram.exponential": slices.Sorted(maps.Keys(hs["exponential"].Properties)),
	} {
		want := map[string]string{"Metric": fields, "Histogram": "bounds count counts exponential max min",
			"Histogram.exponential": "negative_counts negative_offset positive_counts positive_offset scale zero_count zero_threshold"}[what]
		if strings.Join(keys, " ") != want {
			t.Errorf("openapi.json: %s has %v, want %s", what, keys, want)
		}
	}

	// A filter on aggregation_type keeps the histograms with their buckets.
	latest, _, err := query.NewClient(url, nil).QueryMetrics(ctx, query.Filter{Name: "latency", AggregationType: "histogram", Descending: true, Limit: 2})
	if err != nil || len(latest) != 2 || latest[1].Histogram == nil || latest[1].Histogram.Exponential == nil || latest[1].Histogram.Exponential.Scale != -2 {
		t.Fatalf("latency histograms, newest first: %+v, %v", latest, err)
	}
}
