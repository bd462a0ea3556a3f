package query

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// Series.MarshalJSON writes exactly what encoding/json writes for the same series.
func TestSeriesJSONMatchesEncodingJSON(t *testing.T) {
	type plain Series // no MarshalJSON
	rng := rand.New(rand.NewPCG(3, 4))
	values := []float64{0, 1, -1, 0.1, 1e-7, -3.5e-9, 1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, 5e-324, 1e20}
	for trial := range 50 {
		s := Series{Group: map[string]string{"host": "h\"1<", "node_id": "n\u00e9"}}
		for i := range rng.IntN(20) {
			v := map[string]float64{}
			for _, k := range []string{"p95", "count", "avg", "max"}[:1+rng.IntN(4)] {
				if rng.IntN(2) == 0 {
					v[k] = values[rng.IntN(len(values))]
				} else {
					v[k] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
				}
			}
			s.Points = append(s.Points, Point{Time: time.Unix(int64(1700000000+i*60), int64(rng.IntN(2))*500).UTC(), Values: v})
		}
		got, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(plain(s))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("trial %d:\n got %s\nwant %s", trial, got, want)
		}
	}
}

// The aggregate answer's own writer matches json.Encoder's output for the same answer.
func TestAggregateAnswerJSONMatchesEncoder(t *testing.T) {
	type plainSeries Series
	a := AggregateAnswer{Name: "n<&>", Source: "rollups", BucketSeconds: 60, Start: "s", End: "e"}
	for _, series := range [][]Series{nil, {}, {{Group: map[string]string{"h": "1"}, Points: []Point{{Time: time.Unix(60, 0).UTC(), Values: map[string]float64{"p95": 0.5}}}}, {Group: map[string]string{}}}} {
		a.Series = series
		got, err := a.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(a); err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Fatalf("\n got %s\nwant %s", got, want.String())
		}
	}
}

// The service's compact points write what the same points with Values maps write.
func TestCompactPointsJSONMatchesMaps(t *testing.T) {
	names := []string{"avg", "count", "p95", "p99"}
	compact, maps := Series{Group: map[string]string{"host": "h1"}}, Series{Group: map[string]string{"host": "h1"}}
	for i := range 50 {
		vals := []float64{float64(i) / 3, float64(i), 1e-7 * float64(i), 12345.678}
		set := []bool{true, true, i%3 != 0, i%5 == 0}
		ts := time.Unix(int64(60*i), 0).UTC()
		compact.Points = append(compact.Points, Point{Time: ts, names: names, vals: vals, set: set})
		m := map[string]float64{}
		for j, n := range names {
			if set[j] {
				m[n] = vals[j]
			}
		}
		maps.Points = append(maps.Points, Point{Time: ts, Values: m})
	}
	maps.Points = append(maps.Points, Point{Time: time.Unix(0, 0).UTC()}) // no values at all: null
	compact.Points = append(compact.Points, Point{Time: time.Unix(0, 0).UTC()})
	got, err := json.Marshal(compact)
	if err != nil {
		t.Fatal(err)
	}
	type plain Series
	want, err := json.Marshal(plain(maps))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}
