package faults

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/internal/testenv/chaosproxy"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/schemas"
)

var chaosSeed = flag.Uint64("chaos-seed", 0, "the seed of TestClickHouseChaos's faults (0: a new one, logged)")

// ClickHouse answers the consumer at random, through a proxy in front of the real server: passed
// on, delayed, stalled past the consumer's per-attempt timeout, cut before a request went upstream,
// or cut after it went (the server stored the rows, the answer is lost); and it refuses, for real,
// rows it cannot store. The partitions never stop (committed offsets reach the end), every record
// ClickHouse accepts is stored exactly once, the dead-letter topic holds exactly the refused rows
// and the undecodable records, and the rollups count every point once and agree with the raw rows.
func TestClickHouseChaos(t *testing.T) {
	seed := *chaosSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("chaos seed %d (repeat with -args -chaos-seed=%d)", seed, seed)
	brokers := testenv.KafkaBrokers(t)
	k := topicsConfig(brokers, testenv.Topics(t, brokers, 4, "events", "metrics", "rollups", "dlq"))
	ch := testenv.ClickHouse(t)
	direct := testenv.OpenClickHouse(t, ch)
	refuseMarkedRows(t, direct, ch.Database)
	countWrites(t, direct, ch.Database)

	l, refused := chaosLoad(3000, 400)
	p := newProducer(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := send(ctx, p, l, 1e6); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	poison := producePoison(t, brokers, k.EventsTopic, k.MetricsTopic)

	proxy := chaosproxy.Start(t, chaosproxy.Config{Upstream: ch.Addr[0], Delay: 30 * time.Millisecond, AnswerWait: 500 * time.Millisecond})
	proxied := ch
	proxied.Addr, proxied.DialTimeout = []string{proxy.Addr()}, time.Second
	group := testenv.Unique("group")
	cfg := workerConfig(k, proxied, group)
	cfg.BatchMaxRecords, cfg.BatchInterval, cfg.RetryBackoffMax = 400, 100*time.Millisecond, 200*time.Millisecond
	cfg.WriteTimeout = time.Second // a stalled attempt is abandoned after a second and retried
	logs := &testenv.SyncBuffer{}
	start := time.Now()
	w := runWorkerLogging(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	proxy.SetPolicy(chaosPolicy(seed))

	lag := committedLag(t, brokers, group, k.EventsTopic, k.MetricsTopic)
	testenv.EventuallyNil(t, "the consumer to commit every record", 90*time.Second, func() error {
		if n := lag(); n != 0 {
			all := logs.String()
			return fmt.Errorf("the consumer lags %d records (-1: a partition has no commit yet): a partition stopped; worker %+v, proxy %+v; last logs:\n%s",
				n, w.Stats(), proxy.Stats(), all[max(0, len(all)-4000):])
		}
		return nil
	})
	proxy.SetPolicy(nil)
	ps, ws := proxy.Stats(), w.Stats()
	t.Logf("all committed after %v; proxy %+v; worker %+v", time.Since(start).Round(time.Millisecond), ps, ws)

	// Exactly once, by id: the accepted records all, the refused ones not at all.
	wantEvents, wantMetrics := map[string]bool{}, map[string]bool{}
	for i := range l.events {
		if id := l.events[i].EventID; !refused[id] {
			wantEvents[id] = true
		}
		if id := l.metrics[i].MetricID; !refused[id] {
			wantMetrics[id] = true
		}
	}
	checkIDs(t, direct, "SELECT event_id FROM "+ch.Database+".events FINAL", wantEvents)
	checkIDs(t, direct, "SELECT metric_id FROM "+ch.Database+".metrics FINAL", wantMetrics)
	// The rollups count every point once, refused raw rows included (the worker documents that),
	// and agree with the raw rows for every series that had none refused.
	testenv.CheckRollups(t, testenv.ReadRollups(t, direct, ch.Database), l.metrics, []int64{60, 3600})
	if n := testenv.RollupsMatchRaw(t, direct, ch.Database, []int64{60, 3600}, "name != 'refused'"); n < 400 {
		t.Fatalf("only %d windows compared", n)
	}
	checkDeadLetters(t, k, refused, poison)

	// The chaos happened: each fault, answers lost after the server stored the rows (written
	// again and collapsed by FINAL), attempts abandoned at the per-attempt timeout, and refusals.
	for _, f := range []chaosproxy.Fault{chaosproxy.Delay, chaosproxy.Stall, chaosproxy.CutBefore, chaosproxy.CutAfter} {
		if ps.Faults[f] == 0 {
			t.Errorf("the proxy never chose %v: %+v", f, ps)
		}
	}
	rewritten := count(t, direct, "SELECT toUInt64(count() - uniqExact(event_id)) FROM "+ch.Database+".event_writes") +
		count(t, direct, "SELECT toUInt64(count() - uniqExact(metric_id)) FROM "+ch.Database+".metric_writes")
	timeouts := strings.Count(logs.String(), "i/o timeout") + strings.Count(logs.String(), "deadline exceeded")
	t.Logf("%d rows written again after a lost answer, %d attempts timed out", rewritten, timeouts)
	if ps.LostAnswers == 0 || rewritten == 0 {
		t.Errorf("no insert was stored with its answer lost (%d lost answers, %d rows written twice)", ps.LostAnswers, rewritten)
	}
	if timeouts == 0 {
		t.Error("no attempt timed out: the stalls did not reach the consumer's write timeout")
	}
	if ws.Refused != uint64(len(refused)) || ws.Poison != uint64(len(poison)) || ws.Retries == 0 {
		t.Errorf("worker %+v: want %d refused, %d poison, some retries", ws, len(refused), len(poison))
	}
}

// refuseMarkedRows makes database's events and metrics refuse, for real, every row whose id starts
// with "refuse-": ClickHouse computes a MATERIALIZED column on insert that cannot parse it (code 6,
// CANNOT_PARSE_TEXT) and refuses the whole block before storing any of it, as it refuses a block
// for one bad row.
func refuseMarkedRows(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	for table, id := range map[string]string{"events": "event_id", "metrics": "metric_id"} {
		q := fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN refused_for_test UInt8 MATERIALIZED toUInt8(if(startsWith(%s, 'refuse-'), 'x', '1'))", db, table, id)
		if err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// countWrites adds materialized views that keep every event and metric row ever inserted in
// plain MergeTree tables (event_writes, metric_writes), so rows inserted twice can be counted after
// FINAL has collapsed them.
func countWrites(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	for table, id := range map[string]string{"event": "event_id", "metric": "metric_id"} {
		q := fmt.Sprintf("CREATE MATERIALIZED VIEW %[1]s.%[2]s_writes ENGINE = MergeTree() ORDER BY %[3]s AS SELECT %[3]s FROM %[1]s.%[2]ss", db, table, id)
		if err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// chaosLoad is n events and n metrics over series series (plus one series, "refused", of metrics
// ClickHouse refuses), a point every 20 ms; one event and one metric in 600 have an id
// refuseMarkedRows refuses. It returns the load and the refused ids.
func chaosLoad(n, series int) (load, map[string]bool) {
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	types := []schemas.AggregationType{schemas.Counter, schemas.Gauge, schemas.Histogram}
	var l load
	refused := map[string]bool{}
	for i := range n {
		ts := base.Add(time.Duration(i) * 20 * time.Millisecond)
		e := schemas.Event{
			EventID: fmt.Sprintf("ev-%07d", i), TraceID: fmt.Sprintf("trace-%d", i%200), Type: "node_finished",
			Name: "n", Timestamp: ts, Attributes: map[string]any{"i": int64(i)},
		}
		s := i % series
		m := schemas.Metric{
			MetricID: fmt.Sprintf("me-%07d", i), Name: fmt.Sprintf("metric_%d", s%8), Unit: "s", AggregationType: types[s%3],
			Value: math.Round(float64((i*7919)%10007)) / 100, Timestamp: ts, Attributes: map[string]any{"host": fmt.Sprintf("h%d", s)},
		}
		if i%600 == 300 {
			e.EventID = "refuse-" + e.EventID
			m.MetricID, m.Name, m.Attributes = "refuse-"+m.MetricID, "refused", map[string]any{"host": "refused"}
			refused[e.EventID], refused[m.MetricID] = true, true
		}
		l.events, l.metrics = append(l.events, e), append(l.metrics, m)
	}
	return l, refused
}

// producePoison writes records that do not decode to each topic and returns their values.
func producePoison(t *testing.T, brokers []string, topics ...string) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]bool{}
	var recs []*kgo.Record
	for i, topic := range topics {
		for j := range 2 {
			v := fmt.Sprintf("poison-%d-%d: not Avro", i, j)
			out[v] = true
			recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return out
}

// chaosPolicy picks a fault at random for each chunk the consumer sends ClickHouse, more often a
// cut after the chunk for the first chunk of an insert's data (the chunk after the INSERT
// statement on its connection), so that inserts stored with their answer lost are common. The
// first INSERT statement it sees is stalled.
func chaosPolicy(seed uint64) chaosproxy.Policy {
	anyChunk := chaosproxy.Random(seed, map[chaosproxy.Fault]int{
		chaosproxy.Pass: 86, chaosproxy.Delay: 8, chaosproxy.Stall: 1, chaosproxy.CutBefore: 3, chaosproxy.CutAfter: 2,
	})
	insertData := chaosproxy.Random(seed+1, map[chaosproxy.Fault]int{
		chaosproxy.Pass: 82, chaosproxy.Delay: 5, chaosproxy.CutAfter: 10, chaosproxy.CutBefore: 3,
	})
	var mu sync.Mutex
	afterInsert := map[int]bool{}
	stalled := false
	return func(c *chaosproxy.Chunk) chaosproxy.Fault {
		mu.Lock()
		data := afterInsert[c.Conn]
		insert := bytes.Contains(c.Data, []byte("INSERT INTO"))
		afterInsert[c.Conn] = insert
		first := insert && !stalled
		stalled = stalled || insert
		mu.Unlock()
		switch {
		case first:
			return chaosproxy.Stall // whatever the seed, an attempt reaches the write timeout
		case data:
			return insertData(c)
		}
		return anyChunk(c)
	}
}

// committedLag returns a function summing group's lag (end offset minus committed) on topics, or
// -1 while a partition of theirs has no commit (or its lag cannot be read).
func committedLag(t *testing.T, brokers []string, group string, topics ...string) func() int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	return func() int64 {
		lags, err := adm.Lag(context.Background(), group)
		if gl, ok := lags[group]; err != nil || !ok || gl.Error() != nil {
			return -1
		}
		var total int64
		for _, topic := range topics {
			ls := lags[group].Lag[topic]
			if len(ls) == 0 {
				return -1 // nothing committed yet
			}
			for _, l := range ls {
				if l.Err != nil || l.Commit.At < 0 {
					return -1
				}
				total += l.Lag
			}
		}
		return total
	}
}

// checkIDs: q's ids are want's, each once.
func checkIDs(t *testing.T, conn driver.Conn, q string, want map[string]bool) {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("%s: %s stored twice", q, id)
		}
		if !want[id] {
			t.Fatalf("%s: %s stored, but it was refused or never sent", q, id)
		}
		seen[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("%s: %d of %d records stored", q, len(seen), len(want))
	}
}

// checkDeadLetters: the dead-letter topic holds each refused record and each poison value once,
// and nothing else; the refused ones name ClickHouse's reason.
func checkDeadLetters(t *testing.T, k kafka.Config, refused, poison map[string]bool) {
	t.Helper()
	want := len(refused) + len(poison)
	topic := k.DLQTopic
	recs := testenv.ReadTopics(t, k.Brokers, 30*time.Second, topic)
	if len(recs) != want {
		t.Fatalf("the dead-letter topic holds %d records, want %d (%d refused, %d poison)", len(recs), want, len(refused), len(poison))
	}
	codec, err := schemas.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		key, reason, source := string(r.Value), "", ""
		for _, h := range r.Headers {
			switch h.Key {
			case consumer.HeaderReason:
				reason = string(h.Value)
			case consumer.HeaderTopic:
				source = string(h.Value)
			}
		}
		// A refused record is named by its id, a poison one by its value.
		if e, err := codec.DecodeEvent(r.Value); err == nil && source == k.EventsTopic {
			key = e.EventID
		} else if m, err := codec.DecodeMetric(r.Value); err == nil && source == k.MetricsTopic {
			key = m.MetricID
		}
		switch {
		case seen[key]:
			t.Fatalf("dead letter %q twice", key)
		case refused[key]:
			if !strings.Contains(reason, "clickhouse refused the row") || !strings.Contains(reason, "Cannot parse") {
				t.Fatalf("dead letter %s: reason %q does not name ClickHouse's refusal", key, reason)
			}
		case !poison[key]:
			t.Fatalf("dead letter %q (reason %q) was neither refused nor poison", key, reason)
		}
		seen[key] = true
	}
}
