package cluster_test

// The failure tests: one part of the local clusters is killed with SIGKILL (a crash, through
// deploy/cluster.sh kill) while records flow from the producer SDK through Kafka and a consumer
// worker into ClickHouse. Each test counts the records Kafka acknowledged, those stored, those lost
// (acknowledged, never stored: must be 0) and those duplicated in the query service's answers
// (must be 0), and starts what it killed again before it ends, so the tests after it find the
// whole cluster up.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/rollups"
	"github.com/tributary/tributary/schemas"
)

// failureLoad is the number of events (and of metrics) each failure test sends, and failureRate
// the records a second it sends them at, at most failureAhead records ahead of what the worker
// stored (on this loaded machine the worker may store fewer a second): a failure lands in the
// middle of the load.
const (
	failureLoad  = 2000
	failureRate  = 300
	failureAhead = 1500
)

// One Kafka broker (the leader of a partition of the events topic) killed under load: with
// replication factor 3 and min.insync.replicas=2 the other two take over its partitions, the
// producer keeps getting acknowledgements and the consumer keeps storing, while the broker is
// still down; every acknowledged record is stored once.
func TestKafkaBrokerKilled(t *testing.T) {
	r := startFailureRun(t)
	r.waitFlowing(t)

	victim := r.partitionLeader(t, r.kcfg.EventsTopic, 0)
	down := r.mark()
	restart := crash(t, victim)
	// Both sides carry on with the broker down: 1000 more records acknowledged and stored.
	testenv.EventuallyNil(t, "the producer and the consumer to carry on with "+victim+" down", 2*time.Minute, func() error {
		if now := r.mark(); now.acked-down.acked < 1000 || now.written-down.written < 1000 {
			return fmt.Errorf("since %s was killed: %d records acknowledged, %d stored", victim, now.acked-down.acked, now.written-down.written)
		}
		return nil
	})
	on := r.mark()
	t.Logf("%s killed: 1000 more records acknowledged and stored %v later (%d acknowledged, %d stored meanwhile)",
		victim, on.at.Sub(down.at).Round(time.Millisecond), on.acked-down.acked, on.written-down.written)
	r.flow.wait(t)
	r.finish(t) // with the broker still down
	restart()
}

// One ClickHouse replica killed under load, the server the consumer and the query service talk to
// first: their connections move to the other servers, inserts go to the shard's other replica and
// queries read from it; restarted, the killed replica catches up from ZooKeeper until its local
// tables hold what its twin's do.
func TestClickHouseReplicaKilled(t *testing.T) {
	r := startFailureRun(t)
	r.waitFlowing(t)
	victim, twin := r.server(0), r.server(1)

	down := r.mark()
	restart := crash(t, "ch1")
	// Writes go on, and every query the query service answers meanwhile succeeds.
	queries := 0
	testenv.EventuallyNil(t, "writes and queries to go on with ch1 down", 2*time.Minute, func() error {
		if _, _, err := r.query.QueryEvents(context.Background(), query.Filter{Start: r.start, End: r.end, Limit: 10}); err != nil {
			t.Fatalf("query %d with ch1 down: %v", queries+1, err)
		}
		queries++
		if now := r.mark(); now.written-down.written < 1000 || queries < 5 {
			return fmt.Errorf("since ch1 was killed: %d records stored, %d queries answered", now.written-down.written, queries)
		}
		return nil
	})
	on := r.mark()
	atRestart := localCounts(t, twin)
	t.Logf("ch1 killed: %d records stored and %d queries answered in %v through the others; its twin ch2 holds %v",
		on.written-down.written, queries, on.at.Sub(down.at).Round(time.Millisecond), atRestart)
	restart()
	up := time.Now()

	// The restarted replica catches up: its local tables hold as many rows as its twin's.
	testenv.EventuallyNil(t, "ch1 to catch up with ch2 from ZooKeeper", 3*time.Minute, func() error {
		if a, b := localCounts(t, victim), localCounts(t, twin); a != b || b.events == 0 {
			return fmt.Errorf("ch1 local tables %v, ch2 %v", a, b)
		}
		return nil
	})
	t.Logf("ch1 caught up with ch2 %v after its restart", time.Since(up).Round(time.Millisecond))
	r.flow.wait(t)
	r.finish(t)
	// Once every record is stored, ch1 holds what ch2 holds, rows the shard got while it was down
	// included.
	testenv.EventuallyNil(t, "ch1 to hold ch2's rows", 3*time.Minute, func() error {
		if a, b := localCounts(t, victim), localCounts(t, twin); a != b || b.events == 0 {
			return fmt.Errorf("ch1 local tables %v, ch2 %v", a, b)
		}
		return nil
	})
	final := localCounts(t, twin)
	if final.events <= atRestart.events {
		t.Errorf("ch2 got no events after ch1 was killed (%v at the restart, %v at the end): nothing to catch up", atRestart, final)
	}
	t.Logf("%v after its restart ch1 holds %v, like ch2", time.Since(up).Round(time.Millisecond), final)
}

// Both replicas of shard 2 killed under load: the consumer's inserts fail, it backs off and
// retries (nothing dead-lettered), and once the shard is started again it catches up, losing
// nothing.
func TestShardDown(t *testing.T) {
	r := startFailureRun(t)
	r.waitFlowing(t)

	down := r.mark()
	restart := crash(t, "ch3", "ch4")
	testenv.EventuallyNil(t, "the consumer to fail and retry 5 times with shard 2 down", 2*time.Minute, func() error {
		if now := r.mark(); now.retries-down.retries < 5 {
			return fmt.Errorf("since shard 2 went down: %d attempts failed", now.retries-down.retries)
		}
		return nil
	})
	off := r.mark()
	t.Logf("shard 2 down for %v: %d attempts failed, %d records acknowledged by Kafka meanwhile",
		off.at.Sub(down.at).Round(time.Millisecond), off.retries-down.retries, off.acked-down.acked)
	restart()
	up := r.mark()
	testenv.EventuallyNil(t, "the consumer to store again after shard 2 is back", 3*time.Minute, func() error {
		if now := r.mark(); now.written == up.written {
			return fmt.Errorf("nothing stored since shard 2 is back (%d attempts failed)", now.retries-up.retries)
		}
		return nil
	})
	back := r.mark()
	t.Logf("the consumer stored again %v after shard 2 was ready (%d attempts failed meanwhile)",
		back.at.Sub(up.at).Round(time.Millisecond), back.retries-up.retries)
	r.flow.wait(t)
	r.finish(t)
}

// A rollup window's newest version is on one replica only (its twin's fetches stopped) when that
// replica crashes. Its twin alone holds an older version: read from it and written back, the window
// would lose the points counted since (the gap TestShardDown saw before the store checked). So the
// store refuses, with a retryable error naming what the twin lacks, to read the window from the
// twin alone, and once the replica is back it reads the newest version.
func TestWindowNotReadFromAnIncompleteTwin(t *testing.T) {
	ctx := context.Background()
	ccfg := clusterConfig(t, clusterCH...)
	if _, err := chdb.MigrateConfig(ctx, open(t, ccfg, false), ccfg); err != nil {
		t.Fatal(err)
	}
	ch3, ch4 := open(t, oneServer(ccfg, 2), true), open(t, oneServer(ccfg, 3), true)
	newStore := func(conn driver.Conn) *consumer.ClickHouseStore {
		s, err := consumer.NewClickHouseStore(conn, ccfg.Database)
		if err != nil {
			t.Fatal(err)
		}
		return s.ReadReplicasAs(ccfg.User, ccfg.Password)
	}
	store := newStore(open(t, ccfg, true))
	key := rollups.Key{Series: 42, Tier: 60, Start: time.Now().Truncate(time.Minute).Unix(), Partition: 0}
	version := func(offset int64, count uint64) []*rollups.Window {
		return []*rollups.Window{{Key: key, Series: &rollups.Series{Tenant: "t", Name: "m", Type: schemas.Counter, ID: key.Series, AttrJSON: "{}"},
			Agg: rollups.Aggregate{Count: count, Sum: float64(count), Min: 1, Max: 1, Last: 1, LastOffset: offset}}}
	}
	localCount := func(conn driver.Conn) (n uint64) {
		if err := conn.QueryRow(ctx, "SELECT count() FROM rollups_local").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Version 1 on both replicas of shard 2.
	if err := newStore(ch4).Local().WriteWindows(ctx, version(10, 1)); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyNil(t, "ch3 to fetch version 1 from ch4", time.Minute, func() error {
		if n := localCount(ch3); n != 1 {
			return fmt.Errorf("ch3 holds %d rows", n)
		}
		return nil
	})
	// Version 2 on ch3 only.
	if err := ch4.Exec(ctx, "SYSTEM STOP FETCHES "+ccfg.Database+".rollups_local"); err != nil {
		t.Fatal(err)
	}
	if err := newStore(ch3).Local().WriteWindows(ctx, version(20, 2)); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyNil(t, "ch4 to queue the fetch of version 2", time.Minute, func() error {
		var n uint64
		if err := ch4.QueryRow(ctx, "SELECT toUInt64(inserts_in_queue) FROM system.replicas WHERE database = ? AND table = 'rollups_local'", ccfg.Database).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errors.New("no part in ch4's queue")
		}
		return nil
	})
	restart := crash(t, "ch3")
	// ch4 may fetch again: the part it lacks went down with ch3.
	if err := ch4.Exec(ctx, "SYSTEM START FETCHES "+ccfg.Database+".rollups_local"); err != nil {
		t.Fatal(err)
	}
	ws, err := store.LoadWindows(ctx, []rollups.Key{key})
	switch {
	case err == nil:
		t.Errorf("with ch3 down the store read the window from ch4 alone: %d windows, count %v", len(ws), counts(ws))
	case consumer.IsPermanent(err):
		t.Errorf("the refusal is permanent (it would dead-letter the batch): %v", err)
	case !strings.Contains(err.Error(), "shard 2") || !strings.Contains(err.Error(), "still to fetch"):
		t.Errorf("the refusal does not say which shard and what its replica lacks: %v", err)
	default:
		t.Logf("with ch3 down: %v", err)
	}
	if _, err := store.LatestWindows(ctx, map[int32]int64{0: key.Start - 3600}); err == nil {
		t.Errorf("with ch3 down the store anchored partition 0 on ch4 alone")
	}
	restart()
	testenv.EventuallyNil(t, "the store to read version 2 once ch3 is back", 2*time.Minute, func() error {
		ws, err := store.LoadWindows(ctx, []rollups.Key{key})
		if err != nil {
			return err
		}
		if len(ws) != 1 || ws[0].Agg.Count != 2 || ws[0].Agg.LastOffset != 20 {
			return fmt.Errorf("read %d windows, counts %v, want version 2 (count 2)", len(ws), counts(ws))
		}
		return nil
	})
}

func counts(ws []*rollups.Window) []uint64 {
	out := make([]uint64, len(ws))
	for i, w := range ws {
		out[i] = w.Agg.Count
	}
	return out
}

// ZooKeeper killed under load: replicated tables turn read-only, the consumer's inserts fail with
// a retryable error and it retries (no good record dead-lettered); once ZooKeeper is back, inserts
// work again without restarting ClickHouse and nothing is lost.
func TestZooKeeperDown(t *testing.T) {
	r := startFailureRun(t)
	r.waitFlowing(t)

	down := r.mark()
	restart := crash(t, "zookeeper")
	testenv.EventuallyNil(t, "the consumer to fail and retry 5 times with ZooKeeper down", 2*time.Minute, func() error {
		if now := r.mark(); now.retries-down.retries < 5 {
			return fmt.Errorf("since ZooKeeper went down: %d attempts failed", now.retries-down.retries)
		}
		return nil
	})
	off := r.mark()
	codes := r.errorCodes()
	t.Logf("ZooKeeper down for %v: %d attempts failed (ClickHouse error codes %v), %d records acknowledged by Kafka meanwhile",
		off.at.Sub(down.at).Round(time.Millisecond), off.retries-down.retries, codes, off.acked-down.acked)
	if !strings.Contains(codes, "242") {
		t.Errorf("the consumer's failed attempts gave ClickHouse codes %v, none 242 (table is in read-only mode)", codes)
	}
	restart()
	up := r.mark()
	testenv.EventuallyNil(t, "the consumer to store again after ZooKeeper is back", 2*time.Minute, func() error {
		if now := r.mark(); now.written == up.written {
			return fmt.Errorf("nothing stored since ZooKeeper is back (%d attempts failed)", now.retries-up.retries)
		}
		return nil
	})
	back := r.mark()
	t.Logf("the consumer stored again %v after ZooKeeper was ready", back.at.Sub(up.at).Round(time.Millisecond))
	r.flow.wait(t)
	r.finish(t)
}

// failureRun is one failure test's pipeline: fresh topics on the Kafka cluster, a fresh database
// on the ClickHouse cluster, a worker writing through all four servers (the first one first), the
// query service reading through them, and a flow of records from the producer SDK.
type failureRun struct {
	kcfg       kafka.Config
	ccfg       chdb.Config
	conn       driver.Conn // the cluster, through all four servers
	w          *consumer.Worker
	group      string
	logs       *testenv.SyncBuffer
	query      *query.Client
	flow       *flow
	start, end time.Time // the records' time range, padded
}

func startFailureRun(t *testing.T) *failureRun {
	t.Helper()
	ctx := context.Background()
	began := time.Now()
	r := &failureRun{kcfg: failureTopics(t), ccfg: clusterConfig(t, clusterCH...), logs: &testenv.SyncBuffer{}}
	if _, err := chdb.MigrateConfig(ctx, open(t, r.ccfg, false), r.ccfg); err != nil {
		t.Fatal(err)
	}
	r.conn = open(t, r.ccfg, true)
	cfg := workerConfig(r.kcfg, r.ccfg)
	cfg.WriteTimeout = 15 * time.Second // an attempt stuck on a dead server is abandoned and retried
	r.w, r.group = consumertest.Run(t, cfg, slog.New(slog.NewTextHandler(r.logs, nil))), cfg.Group
	r.query = queryClient(t, r.ccfg)
	t.Logf("topics and database made in %v", time.Since(began).Round(time.Millisecond))
	r.flow = startFlow(t, r.kcfg, failureLoad, failureRate, func() uint64 { return r.w.Stats().Written })
	r.start, r.end = r.flow.es[0].Timestamp.Add(-time.Minute), r.flow.es[len(r.flow.es)-1].Timestamp.Add(time.Minute)
	t.Cleanup(func() {
		if t.Failed() {
			all := r.logs.String()
			t.Logf("worker %+v; last worker logs:\n%s", r.w.Stats(), all[max(0, len(all)-6000):])
		}
	})
	return r
}

// waitFlowing waits until the flow's first records are stored (the worker runs), lets the rest of
// the load go and waits until it flows end to end, before the test breaks something. It fails the
// test when by then the producer has sent most of the load: the failure would not happen under
// load.
func (r *failureRun) waitFlowing(t *testing.T) {
	t.Helper()
	warm := uint64(2 * flowWarmUp)
	testenv.EventuallyNil(t, "the first records to be stored", time.Minute, func() error {
		if m := r.mark(); m.written < warm {
			return fmt.Errorf("%d of the first %d records stored", m.written, warm)
		}
		return nil
	})
	close(r.flow.gate)
	testenv.EventuallyNil(t, "records to flow end to end", time.Minute, func() error {
		if m := r.mark(); m.acked < warm+400 || m.written < warm+100 {
			return fmt.Errorf("%d records acknowledged, %d stored", m.acked, m.written)
		}
		return nil
	})
	m, total := r.mark(), uint64(2*len(r.flow.es))
	t.Logf("records flow: %d of %d acknowledged, %d stored", m.acked, total, m.written)
	if m.acked > total-1000 {
		t.Fatalf("%d of %d records were acknowledged before the first %d were stored: too few left to break the cluster under load", m.acked, total, m.written)
	}
}

// progress is the flow's state at one moment.
type progress struct {
	at                      time.Time
	acked, written, retries uint64 // records Kafka acknowledged; records stored and failed attempts of the worker
}

func (r *failureRun) mark() progress {
	s := r.w.Stats()
	return progress{at: time.Now(), acked: uint64(r.flow.acked.Load()), written: s.Written, retries: s.Retries}
}

// server is a config for the database on the i-th ClickHouse server (0-based) alone.
func (r *failureRun) server(i int) chdb.Config { return oneServer(r.ccfg, i) }

// oneServer is cfg for the i-th ClickHouse server (0-based) alone.
func oneServer(cfg chdb.Config, i int) chdb.Config {
	cfg.Addr, cfg.MaxOpenConns = []string{clusterCH[i]}, 1
	return cfg
}

var codeRE = regexp.MustCompile(`code: (\d+)`)

// errorCodes lists the ClickHouse error codes in the worker's logs, sorted, each once.
func (r *failureRun) errorCodes() string {
	seen := map[string]bool{}
	for _, m := range codeRE.FindAllStringSubmatch(r.logs.String(), -1) {
		seen[m[1]] = true
	}
	codes := make([]string, 0, len(seen))
	for c := range seen {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return strings.Join(codes, " ")
}

// partitionLeader names the cluster.sh node leading topic's partition.
func (r *failureRun) partitionLeader(t *testing.T, topic string, partition int32) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok || p.Leader < 1 {
		t.Fatalf("metadata of %s: no leader for partition %d: %+v", topic, partition, md.Topics[topic])
	}
	return fmt.Sprintf("kafka%d", p.Leader)
}

// finish waits until every record Kafka acknowledged is stored (at most 3 minutes), and until the
// group committed everything; then counts and checks: acknowledged, stored, lost (acknowledged,
// not stored) and duplicated in the query service's answers must be as sent, nothing dead-lettered
// and the rollups exact.
func (r *failureRun) finish(t *testing.T) {
	t.Helper()
	f := r.flow
	f.mu.Lock()
	acked, failed, gap := len(f.ackedIDs), f.failed, f.maxGap
	f.mu.Unlock()
	t.Logf("the producer's longest wait between two acknowledgements: %v", gap.Round(time.Millisecond))
	if failed != 0 || acked != 2*len(f.es) {
		t.Errorf("Kafka acknowledged %d of %d records, %d failed: the producer did not carry on", acked, 2*len(f.es), failed)
	}
	lost := func() []string {
		stored := r.storedIDs(t)
		var out []string
		f.mu.Lock()
		defer f.mu.Unlock()
		for id := range f.ackedIDs {
			if !stored[id] {
				out = append(out, id)
			}
		}
		sort.Strings(out)
		return out
	}
	testenv.EventuallyNil(t, "every acknowledged record to be stored", 3*time.Minute, func() error {
		if l := lost(); len(l) > 0 {
			return fmt.Errorf("%d acknowledged records not stored, first %s", len(l), l[0])
		}
		return nil
	})
	testenv.EventuallyNil(t, "the group to commit every record", time.Minute, func() error {
		if n := r.lag(t); n != 0 {
			return fmt.Errorf("lag %d (-1: a partition has no commit yet)", n)
		}
		return nil
	})
	// Replication is asynchronous (and a replica restarted after a crash fetches nothing until its
	// old ZooKeeper session expired): until the replicas of each shard agree, queries through the
	// Distributed tables answer from either and may differ from one to the next.
	began := time.Now()
	testenv.EventuallyNil(t, "the replicas of each shard to agree", 3*time.Minute, func() error {
		for i := 0; i < len(clusterCH); i += 2 {
			if a, b := localCounts(t, r.server(i)), localCounts(t, r.server(i+1)); a != b || a.events == 0 {
				return fmt.Errorf("shard %d: %s holds %v, %s %v", i/2+1, clusterCH[i], a, clusterCH[i+1], b)
			}
		}
		return nil
	})
	t.Logf("the replicas of each shard agreed %v after the group committed everything", time.Since(began).Round(time.Millisecond))

	// What the query service answers: every record once.
	answered, dups := map[string]int{}, 0
	evs, next, err := r.query.QueryEvents(context.Background(), query.Filter{Start: r.start, End: r.end, Limit: 10000})
	if err != nil || next != -1 {
		t.Fatalf("query events: next page %d, %v", next, err)
	}
	ms, next, err := r.query.QueryMetrics(context.Background(), query.Filter{Start: r.start, End: r.end, Limit: 10000})
	if err != nil || next != -1 {
		t.Fatalf("query metrics: next page %d, %v", next, err)
	}
	for _, e := range evs {
		answered[e.EventID]++
	}
	for _, m := range ms {
		answered[m.MetricID]++
	}
	for id, n := range answered {
		if n > 1 {
			dups += n - 1
		}
		if !f.sentIDs[id] {
			t.Errorf("the query service answered %s, which was never sent", id)
		}
	}
	stored := len(r.storedIDs(t))
	l := lost()
	t.Logf("records: %d acknowledged, %d stored, %d lost, %d duplicated in query results (%d answered)", acked, stored, len(l), dups, len(evs)+len(ms))
	if len(l) != 0 || dups != 0 || len(answered) != acked {
		t.Errorf("%d lost (first %v), %d duplicated; the query service answered %d distinct records of %d acknowledged", len(l), l[:min(5, len(l))], dups, len(answered), acked)
	}
	if s := r.w.Stats(); s.Refused != 0 || s.Poison != 0 {
		t.Errorf("worker dead-lettered good records: %+v", s)
	}
	if n := r.endOffsets(t, r.kcfg.DLQTopic); n != 0 {
		t.Errorf("the dead-letter topic holds %d records, want none", n)
	}
	// The rollups count every point once (all windows written once the group caught up), also
	// when a window's newest version was on one replica only when it crashed: the engine does not
	// read a window from its twin alone until the twin has every part (consumer/replicas.go).
	var points uint64
	testenv.EventuallyNil(t, "the rollups to count every metric", time.Minute, func() error {
		points = 0
		for k, m := range testenv.ReadRollups(t, r.conn, r.ccfg.Database) {
			if k.Tier == 60 {
				points += m.N
			}
		}
		if points != uint64(len(f.ms)) {
			return fmt.Errorf("minute rollups count %d points, want %d", points, len(f.ms))
		}
		return nil
	})
	testenv.CheckRollups(t, testenv.ReadRollups(t, r.conn, r.ccfg.Database), f.ms, []int64{60, 3600})
}

// storedIDs is the set of event and metric ids stored on the cluster (through the Distributed
// tables), or nil when the cluster cannot answer now.
func (r *failureRun) storedIDs(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]bool{}
	for _, q := range []string{"SELECT event_id FROM events FINAL", "SELECT metric_id FROM metrics FINAL"} {
		rows, err := r.conn.Query(ctx, q)
		if err != nil {
			t.Logf("%s: %v", q, err)
			return nil
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			t.Logf("%s: %v", q, err)
			return nil
		}
	}
	return out
}

// lag is the group's lag on the events and metrics topics, -1 while a partition has no commit.
func (r *failureRun) lag(t *testing.T) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lags, err := kadm.NewClient(cl).Lag(context.Background(), r.group)
	gl, ok := lags[r.group]
	if err != nil || !ok || gl.Error() != nil {
		return -1
	}
	var total int64
	for _, topic := range []string{r.kcfg.EventsTopic, r.kcfg.MetricsTopic} {
		ls := gl.Lag[topic]
		if len(ls) == 0 {
			return -1
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

// endOffsets sums topic's end offsets: the records ever written to it.
func (r *failureRun) endOffsets(t *testing.T, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// tableCounts is the row count of each local table of one server.
type tableCounts struct{ events, eventsByTrace, eventsByAttr, metrics, rollups uint64 }

func (c tableCounts) String() string {
	return fmt.Sprintf("events %d, events_trace_index %d, events_attr_index %d, metrics %d, rollups %d",
		c.events, c.eventsByTrace, c.eventsByAttr, c.metrics, c.rollups)
}

// localCounts counts the rows of cfg's server's local tables as queries see them (FINAL), or
// returns zeros with the error logged when it cannot answer. Not every row: an insert cut off by
// ZooKeeper can fail with UNKNOWN_STATUS_OF_INSERT (319) after it wrote its part locally. The
// consumer retries it and the retry is replicated, but that server keeps the first part, the same
// rows again, until it checks it against ZooKeeper five minutes later and drops it. Its raw
// count() is higher meanwhile; FINAL collapses the copies.
func localCounts(t *testing.T, cfg chdb.Config) tableCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := chdb.Open(ctx, cfg, true)
	if err != nil {
		t.Logf("count on %v: %v", cfg.Addr, err)
		return tableCounts{}
	}
	defer conn.Close()
	var c tableCounts
	err = conn.QueryRow(ctx, "SELECT (SELECT count() FROM events_local FINAL), (SELECT count() FROM events_trace_index_local FINAL), "+
		"(SELECT count() FROM events_attr_index_local FINAL), (SELECT count() FROM metrics_local FINAL), (SELECT count() FROM rollups_local FINAL)").
		Scan(&c.events, &c.eventsByTrace, &c.eventsByAttr, &c.metrics, &c.rollups)
	if err != nil {
		t.Logf("count on %v: %v", cfg.Addr, err)
		return tableCounts{}
	}
	return c
}

// failureTopics creates fresh topics of 4 partitions on the Kafka cluster with replication factor
// 3 (min.insync.replicas 2: the brokers' default), deleted when the test ends.
func failureTopics(t *testing.T) kafka.Config {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	topics := []string{testenv.Unique("events"), testenv.Unique("metrics"), testenv.Unique("rollups"), testenv.Unique("dlq")}
	resp, err := adm.CreateTopics(context.Background(), 4, 3, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topics on the Kafka cluster: %v", err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topics...); cl.Close() })
	return kafka.Config{Brokers: clusterKafka, ClientID: "cluster-failure", EventsTopic: topics[0], MetricsTopic: topics[1],
		RollupsTopic: topics[2], DLQTopic: topics[3], TopicPartitions: 4, TopicReplication: 3}
}

// flowWarmUp is how many events (and metrics) a flow sends before its gate opens.
const flowWarmUp = 200

// flow sends records(n) through the producer SDK in the background, 10 events and 10 metrics per
// call at about rate records a second and at most failureAhead ahead of stored() (the first flowWarmUp of each, then nothing more until gate
// is closed: the test waits for the worker to store them first), and keeps the ids of the records Kafka acknowledged (every
// record of their call acknowledged: the call's Delivery answered nil).
type flow struct {
	es      []schemas.Event
	ms      []schemas.Metric
	sentIDs map[string]bool
	acked   atomic.Int64

	mu       sync.Mutex
	ackedIDs map[string]bool
	failed   int // records of calls Kafka did not acknowledge in full
	lastAck  time.Time
	maxGap   time.Duration // the longest time between two calls' acknowledgements
	err      error         // the first error of a call
	done     chan struct{}
	gate     chan struct{} // closed by the test to send the rest of the load
}

func startFlow(t *testing.T, kcfg kafka.Config, n, rate int, stored func() uint64) *flow {
	t.Helper()
	pcfg := producer.DefaultConfig()
	pcfg.Kafka, pcfg.Service, pcfg.Host, pcfg.MaxBufferedRecords, pcfg.BufferFullTimeout = kcfg, "cluster-failure", "h", 100000, time.Minute
	p, err := producer.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	es, ms := records(n)
	f := &flow{es: es, ms: ms, sentIDs: map[string]bool{}, ackedIDs: map[string]bool{}, done: make(chan struct{}),
		gate: make(chan struct{})}
	for i := range es {
		f.sentIDs[es[i].EventID], f.sentIDs[ms[i].MetricID] = true, true
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(f.done)
		var answers sync.WaitGroup
		defer answers.Wait()
		start, sent := time.Now(), 0
		for i := 0; i < n; i += 10 {
			if i == flowWarmUp {
				select {
				case <-f.gate:
				case <-ctx.Done():
					return
				}
				start, sent = time.Now(), i
			}
			for uint64(2*i) > stored()+failureAhead { // flow control, not a wait for an event
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
			j := min(i+10, n)
			d, err := p.RecordBatchDelivery(ctx, es[i:j], ms[i:j])
			if err != nil {
				f.fail(2*(j-i), fmt.Errorf("record %d..%d: %w", i, j, err))
				return
			}
			answers.Add(1)
			go func() {
				defer answers.Done()
				if err := d.Wait(ctx); err != nil {
					f.fail(d.Accepted(), err)
					return
				}
				f.mu.Lock()
				if now := time.Now(); !f.lastAck.IsZero() && now.Sub(f.lastAck) > f.maxGap {
					f.maxGap = now.Sub(f.lastAck)
				}
				f.lastAck = time.Now()
				for k := i; k < j; k++ {
					f.ackedIDs[es[k].EventID], f.ackedIDs[ms[k].MetricID] = true, true
				}
				f.mu.Unlock()
				f.acked.Add(int64(d.Accepted()))
			}()
			if ahead := time.Duration(float64(2*(j-sent))/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead) // pacing the load, not waiting for anything
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
		ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		_ = p.Close(ctx)
	})
	return f
}

func (f *flow) fail(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed += n
	if f.err == nil {
		f.err = err
	}
}

// wait waits (at most 3 minutes) until every record was sent and Kafka answered it.
func (f *flow) wait(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("after 3 minutes the producer still waits for Kafka: %d records acknowledged", f.acked.Load())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		t.Errorf("producer: %d records not acknowledged, first error: %v", f.failed, f.err)
	}
}

// crash kills nodes of the local clusters with SIGKILL (deploy/cluster.sh kill) and returns a
// function starting them again (cluster.sh start-node) and waiting until cluster.sh status finds
// the whole cluster up; the test's cleanup calls it too, if the test did not.
func crash(t *testing.T, nodes ...string) (restart func()) {
	t.Helper()
	for _, n := range nodes {
		clusterCmd(t, "kill", n)
	}
	var once sync.Once
	restart = func() {
		once.Do(func() {
			start := time.Now()
			for _, n := range nodes {
				clusterCmd(t, "start-node", n)
			}
			testenv.EventuallyNil(t, "cluster.sh status to find every node up", 2*time.Minute, func() error {
				if down, status := downNodes(); len(down) > 0 {
					return fmt.Errorf("%v down:\n%s", down, status)
				}
				return nil
			})
			t.Logf("%v started again and the cluster up in %v", nodes, time.Since(start).Round(time.Millisecond))
		})
	}
	t.Cleanup(restart)
	return restart
}

// clusterCmd runs deploy/cluster.sh with args (the environment's CLUSTER_PORT_BASE applies), and
// fails the test with its output when it fails.
func clusterCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("bash", append([]string{clusterSh}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
