package consumer_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// randomValue is an attribute value of any kind the SDK takes, nested up to depth levels, with
// the edges of each kind: extreme numbers, negative zero, empty and multi-byte strings, strings
// of invalid UTF-8 and strings at and one past the value size limit.
func randomValue(rng *rand.Rand, depth int) any {
	kinds := 8
	if depth <= 0 {
		kinds = 6 // scalars only
	}
	switch rng.IntN(kinds) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return []int64{0, -1, 1, math.MaxInt64, math.MinInt64, rng.Int64()}[rng.IntN(6)]
	case 3:
		return []float64{0.5, math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, -1e-300, rng.NormFloat64() * 1e6}[rng.IntN(6)]
	case 4, 5:
		return randomString(rng)
	case 6:
		l := make([]any, rng.IntN(5))
		for i := range l {
			l[i] = randomValue(rng, depth-1)
		}
		return l
	default:
		m := map[string]any{}
		for range rng.IntN(5) {
			m[randomKey(rng)] = randomValue(rng, depth-1)
		}
		return m
	}
}

func randomString(rng *rand.Rand) string {
	switch rng.IntN(10) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("x", 16384-2+rng.IntN(3)) // about MAX_ATTRIBUTE_VALUE_BYTES (16,384)
	case 2:
		return "\xff\xfe invalid utf-8 \xc3"
	case 3:
		return "quote \" backslash \\ nul \x00 tab \t newline \n"
	default:
		parts := []string{"host", "é", "日本", "🚀", "a.b", "k=v", "'", "<x>", " "}
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		return b.String()
	}
}

func randomKey(rng *rand.Rand) string {
	switch rng.IntN(12) {
	case 0:
		return strings.Repeat("k", 255+rng.IntN(3)) // about MAX_ATTRIBUTE_KEY_BYTES (256)
	case 1:
		return ""
	default:
		return fmt.Sprintf("%s_%d", []string{"host", "région", "键", "a.b.c", "🚀"}[rng.IntN(5)], rng.IntN(50))
	}
}

func randomAttributes(rng *rand.Rand) map[string]any {
	n := rng.IntN(6)
	if rng.IntN(40) == 0 {
		n = 127 + rng.IntN(3) // about MAX_ATTRIBUTES (128)
	}
	depth := rng.IntN(4)
	if rng.IntN(10) == 0 {
		depth = 14 + rng.IntN(5) // about the depth limit (16)
	}
	m := make(map[string]any, n)
	for len(m) < n {
		k := randomKey(rng)
		if depth > 4 && len(m) == 0 {
			m[k] = nest(depth)
			continue
		}
		m[k] = randomValue(rng, depth)
	}
	return m
}

// nest is a value depth levels deep (a map at each level).
func nest(depth int) any {
	var v any = "leaf"
	for range depth - 1 {
		v = map[string]any{"n": v}
	}
	return v
}

// The SDK and the consumer agree on what can be carried: random records, many at the SDK's
// limits and past them, go through the real SDK; every one it accepts reaches ClickHouse with its
// attributes intact (the stored JSON is the SDK's normalised attributes), none is dead-lettered,
// and the ones it refuses fail at the call.
func TestEveryRecordTheSDKAcceptsIsStored(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	e := newEnv(t)
	cfg := producer.DefaultConfig()
	cfg.Kafka, cfg.Service, cfg.Host = e.kcfg, "pairfuzz", "h"
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tenants := []string{"", uuid.NewString(), uuid.NewString()}
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	wantEvents, wantMetrics := map[string]string{}, map[string]string{} // id -> stored attributes JSON
	refused := 0
	at := time.Now().UTC().Add(-time.Hour)
	for i := range 1500 {
		attrs := randomAttributes(rng)
		norm, normErr := schemas.NormalizeAttributes(attrs)
		src := schemas.Source{Tenant: tenants[rng.IntN(len(tenants))]}
		ts := at.Add(time.Duration(i) * time.Millisecond)
		if i%2 == 0 {
			ev := producer.Event{EventID: uuid.NewString(), Type: randomString(rng) + "t", Name: randomString(rng) + "n",
				Timestamp: ts, Attributes: attrs, Source: src}
			if err := p.RecordEvent(ctx, ev); err != nil {
				refused++
				continue
			}
			if normErr != nil {
				t.Fatalf("event %d: the SDK accepted attributes that do not normalise: %v", i, normErr)
			}
			wantEvents[ev.EventID], _, _ = schemas.AttributeColumns(norm)
		} else {
			v := rng.NormFloat64() * 1e3
			if rng.IntN(30) == 0 {
				v = math.NaN() // refused by the SDK
			}
			m := producer.Metric{MetricID: uuid.NewString(), Name: randomString(rng) + "m", Value: v, Unit: "ms",
				AggregationType: types[rng.IntN(3)], Timestamp: ts, Attributes: attrs, Source: src}
			if err := p.RecordMetric(ctx, m); err != nil {
				refused++
				continue
			}
			if normErr != nil {
				t.Fatalf("metric %d: the SDK accepted attributes that do not normalise: %v", i, normErr)
			}
			wantMetrics[m.MetricID], _, _ = schemas.AttributeColumns(norm)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("the SDK failed to deliver what it accepted: %v", err)
	}
	accepted := len(wantEvents) + len(wantMetrics)
	t.Logf("%d records accepted, %d refused at the call", accepted, refused)
	if refused == 0 || accepted < 500 {
		t.Fatalf("%d accepted, %d refused: the generator should land on both sides of the limits", accepted, refused)
	}

	w, stop := startWorker(t, e, e.workerConfig(testenv.Unique("g")))
	testenv.Eventually(t, "every accepted record to be stored or dead-lettered", 2*time.Minute, func() bool {
		s := w.Stats()
		return s.Written+s.Poison >= uint64(accepted)
	})
	stop()
	if s := w.Stats(); s.Poison != 0 || s.Refused != 0 {
		t.Fatalf("stats %+v: records the SDK accepted were dead-lettered", s)
	}
	conn := testenv.OpenClickHouse(t, e.ch)
	for _, c := range []struct {
		table, id string
		want      map[string]string
	}{{"events", "event_id", wantEvents}, {"metrics", "metric_id", wantMetrics}} {
		rows, err := conn.Query(ctx, "SELECT "+c.id+", attributes FROM "+e.ch.Database+"."+c.table+" FINAL")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var id, attrs string
			if err := rows.Scan(&id, &attrs); err != nil {
				t.Fatal(err)
			}
			if _, dup := got[id]; dup {
				t.Fatalf("%s %s stored twice", c.table, id)
			}
			got[id] = attrs
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d rows stored, %d accepted", c.table, len(got), len(c.want))
		}
		for id, want := range c.want {
			if got[id] != want {
				t.Fatalf("%s %s: stored attributes differ from what the SDK accepted\n got %.300q\nwant %.300q", c.table, id, got[id], want)
			}
		}
	}
}
