package query_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/rollups"
)

// The SQL that merges sketches in ClickHouse answers exactly what rollups.QuantileOfArrays answers
// on the merged sketch: the same rank, the same bucket, the same value. Each trial concatenates the
// buckets of a few random sketches, unsorted and with repeated keys, as the merge query does.
func TestSketchQuantileSQLMatchesGo(t *testing.T) {
	conn := testenv.OpenClickHouse(t, testenv.ClickHouse(t))
	qs := []float64{0.5, 0.9, 0.95, 0.99}
	var sel []string
	for _, q := range qs {
		sel = append(sel, query.SketchQuantileSQL(q))
	}
	rng := rand.New(rand.NewPCG(11, 12))
	list := func(vs []string) string { return "[" + strings.Join(vs, ",") + "]" }
	for trial := range 60 {
		var merged rollups.Sketch
		var pk, pc, nk, nc []string
		var zero uint64
		for range 1 + rng.IntN(4) {
			var s rollups.Sketch
			for range rng.IntN(200) * (trial % 5) / 4 { // some trials empty, some one-sided
				switch rng.IntN(6) {
				case 0:
					s.Add(0)
				case 1, 2:
					s.Add(-math.Exp(rng.NormFloat64() * 3))
				default:
					s.Add(math.Exp(rng.NormFloat64() * 3))
				}
			}
			merged.Merge(&s)
			zero += s.Zero
			keys, counts := rollups.Arrays(s.Pos)
			for i := range keys {
				pk, pc = append(pk, fmt.Sprint(keys[i])), append(pc, fmt.Sprint(counts[i]))
			}
			keys, counts = rollups.Arrays(s.Neg)
			for i := range keys {
				nk, nc = append(nk, fmt.Sprint(keys[i])), append(nc, fmt.Sprint(counts[i]))
			}
		}
		sql := "SELECT " + strings.Join(sel, ", ") + " FROM (SELECT CAST(" + list(pk) + " AS Array(Int32)) AS _pk," +
			" CAST(" + list(pc) + " AS Array(UInt64)) AS _pc, CAST(" + list(nk) + " AS Array(Int32)) AS _nk," +
			" CAST(" + list(nc) + " AS Array(UInt64)) AS _nc, toUInt64(" + fmt.Sprint(zero) + ") AS _z, " + query.SketchAliases + ")"
		got := make([]float64, len(qs))
		dest := make([]any, len(qs))
		for i := range got {
			dest[i] = &got[i]
		}
		if err := conn.QueryRow(context.Background(), sql).Scan(dest...); err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, sql)
		}
		pkeys, pcounts := rollups.Arrays(merged.Pos)
		nkeys, ncounts := rollups.Arrays(merged.Neg)
		for i, q := range qs {
			want := rollups.QuantileOfArrays(pkeys, pcounts, nkeys, ncounts, merged.Zero, q)
			if math.IsNaN(want) != math.IsNaN(got[i]) || math.Abs(got[i]-want) > 1e-12*math.Abs(want) {
				t.Fatalf("trial %d (%d values), q %v: SQL %v, Go %v", trial, merged.Count(), q, got[i], want)
			}
		}
	}
}
