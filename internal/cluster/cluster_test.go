// Package cluster_test runs Tributary on the local clusters of deploy/cluster.sh (ClickHouse 2
// shards x 2 replicas with ZooKeeper, Kafka 3 KRaft nodes) and checks that it gives the answers
// one server gives. The clusters start once for this test binary (and are stopped after, unless
// they were running already); a test fails loudly if they cannot start.
package cluster_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
)

// Migrate, four at once through different servers and then once more, leaves on every server
// Replicated local tables and Distributed tables with the columns one server's tables have.
func TestMigrateOnCluster(t *testing.T) {
	ref := testenv.ClickHouse(t)
	single := tables(t, open(t, ref, true), ref.Database)
	cfg := clusterConfig(t, clusterCH...)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Addr = []string{clusterCH[i]}
			conn, err := chdb.Open(ctx, c, false)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close()
			_, errs[i] = chdb.MigrateConfig(ctx, conn, c)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate %d (via %s): %v", i, clusterCH[i], err)
		}
	}
	applied, err := chdb.MigrateConfig(ctx, open(t, cfg, false), cfg)
	if err != nil || len(applied) != 0 {
		t.Fatalf("migrate again: applied %v, %v; want nothing", applied, err)
	}
	var first map[string]string
	for i, addr := range clusterCH {
		c := cfg
		c.Addr = []string{addr}
		got := tables(t, open(t, c, false), cfg.Database)
		if i == 0 {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("server %s has schema\n%v\nserver %s has\n%v", addr, got, clusterCH[0], first)
		}
	}
	for name, desc := range single {
		engine, cols, _ := strings.Cut(desc, ":")
		if name == "schema_migrations" {
			if first[name] != "Replicated"+desc {
				t.Errorf("schema_migrations on the cluster: %q, want Replicated%s", first[name], desc)
			}
			continue
		}
		wantDist, wantLocal := "Distributed:"+cols, "Replicated"+engine+":"+cols
		if strings.HasSuffix(name, "_mv") {
			wantDist, wantLocal = desc, ""
		}
		if first[name] != wantDist {
			t.Errorf("cluster table %s: %q, want %q", name, first[name], wantDist)
		}
		if wantLocal != "" && first[name+"_local"] != wantLocal {
			t.Errorf("cluster table %s_local: %q, want %q", name, first[name+"_local"], wantLocal)
		}
	}
	if len(first) != 2*len(single)-3 { // every table twice but schema_migrations and the two views
		t.Errorf("cluster has %d tables, want %d: %v", len(first), 2*len(single)-3, first)
	}
}

// Events and metrics consumed from the Kafka cluster by a worker writing to the ClickHouse cluster
// and by one writing to the single server give the same answers, replays included.
func TestClusterAnswersEqualSingleNode(t *testing.T) {
	ctx := context.Background()
	kcfg, es := loadKafka(t)

	// The ClickHouse cluster, through its first server; and the single server.
	ccfg := clusterConfig(t, clusterCH[0])
	if _, err := chdb.MigrateConfig(ctx, open(t, ccfg, false), ccfg); err != nil {
		t.Fatal(err)
	}
	scfg := testenv.ClickHouse(t)
	for _, ch := range []chdb.Config{ccfg, scfg} {
		runWorker(t, workerConfig(kcfg, ch))
	}
	cconn, sconn := open(t, ccfg, true), open(t, scfg, true)

	// Every record arrives (FINAL counts the replays once); the raw counts before FINAL show the
	// replays were stored on the shard of their first copy and collapse there.
	count := func(conn driver.Conn, sql string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	waitStored(t, cconn, sconn)
	// Both shards hold rows, and per shard no event id is stored on the other one.
	for _, addr := range []string{clusterCH[0], clusterCH[2]} {
		c := ccfg
		c.Addr = []string{addr}
		if n := count(open(t, c, true), "SELECT count() FROM events_local FINAL"); n == 0 || n == 3000 {
			t.Errorf("shard of %s holds %d of 3000 events: not sharded", addr, n)
		}
	}
	if n := count(cconn, "SELECT count() FROM (SELECT event_id FROM events FINAL GROUP BY event_id HAVING count() > 1)"); n != 0 {
		t.Errorf("%d events are on both shards (a replay went to the other shard)", n)
	}

	sameAnswers(t, "cluster", "single server", ccfg, scfg, es)
}

// The consumer reads rollup windows from every replica (remote()) as its own account: a store
// given an account the servers lack fails, naming it; a real account reads. (The compose cluster's
// servers have no "default" user, which remote() used before.)
func TestRollupReadsUseTheConsumersAccount(t *testing.T) {
	ctx := context.Background()
	cfg := clusterConfig(t, clusterCH[0])
	if _, err := chdb.MigrateConfig(ctx, open(t, cfg, false), cfg); err != nil {
		t.Fatal(err)
	}
	conn := open(t, cfg, true)
	for _, acct := range []struct {
		user, password string
		ok             bool
	}{{"tributary_ro", "tributary_ro", true}, {"default", "", true}, {"nobody", "x", false}} {
		st, err := consumer.NewClickHouseStore(conn, cfg.Database)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.ReadReplicasAs(acct.user, acct.password).LatestWindows(ctx, map[int32]int64{0: 0})
		switch {
		case acct.ok && err != nil:
			t.Errorf("as %s: %v", acct.user, err)
		case !acct.ok && (err == nil || !strings.Contains(err.Error(), acct.user)):
			t.Errorf("as %s, an account the servers lack: error %v, want one naming it", acct.user, err)
		}
	}
}

// Four workers of one group on the cluster (topics of 4 partitions, so each can own one) store and
// answer exactly what one worker does, re-sent records included. The four own their partitions
// before the records arrive: a re-sent metric whose two copies are counted by different workers
// (its partition moved in between) counts twice in the rollups, as docs/operations.md ("Re-sent
// records") says; with the load produced first, that happened now and then (CI, and a local run:
// a window with n=2 for one raw point).
func TestFourConsumersEqualOne(t *testing.T) {
	ctx := context.Background()
	kcfg := clusterTopics(t)
	one, four := clusterConfig(t, clusterCH[0]), clusterConfig(t, clusterCH[2])
	for _, c := range []chdb.Config{one, four} {
		if _, err := chdb.MigrateConfig(ctx, open(t, c, false), c); err != nil {
			t.Fatal(err)
		}
	}
	runWorker(t, workerConfig(kcfg, one))
	w := workerConfig(kcfg, four)
	for i := range 4 {
		c := w
		c.ClickHouse.Addr = []string{clusterCH[i]} // each worker through its own server
		runWorker(t, c)
	}
	// The four share the work: each owns partitions, and the group is stable.
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterKafka...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	testenv.EventuallyNil(t, "each of the four workers to own partitions", time.Minute, func() error {
		groups, err := kadm.NewClient(cl).DescribeGroups(ctx, w.Group)
		if err != nil {
			return fmt.Errorf("describe group %s: %w", w.Group, err)
		}
		owners := 0
		for _, m := range groups[w.Group].Members {
			if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				owners++
			}
		}
		if owners != 4 || groups[w.Group].State != "Stable" {
			return fmt.Errorf("group %s (%s): %d members own partitions, want 4", w.Group, groups[w.Group].State, owners)
		}
		return nil
	})
	es := produceLoad(t, kcfg)
	waitStored(t, open(t, one, true), open(t, four, true))
	sameAnswers(t, "one worker", "four workers", one, four, es)
}
