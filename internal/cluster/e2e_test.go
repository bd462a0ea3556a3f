package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/pipeline/pipelinetest"
	"github.com/tributary/tributary/internal/testenv"
)

// The end-to-end scenario of internal/pipeline (SDK, Kafka, a consumer worker, ClickHouse, the
// query service; poison records; the rollup oracle) run on the local clusters (Kafka 3 brokers,
// topics of replication factor 3; ClickHouse 2 shards x 2 replicas) and on one broker and one
// server, at the same time: both pass it, and every answer is identical: every event and metric
// field for field, traces, attribute filters, raw and rollup aggregates with percentiles, counts
// and sums of the stored rows, rollup windows.
func TestEndToEndClusterEqualsSingleNode(t *testing.T) {
	ccfg := clusterConfig(t, clusterCH[0])
	if _, err := chdb.MigrateConfig(context.Background(), open(t, ccfg, false), ccfg); err != nil {
		t.Fatal(err)
	}
	var onCluster, onOne pipelinetest.Answers
	sides := []struct {
		name string
		env  pipelinetest.Env
		out  *pipelinetest.Answers
	}{
		{"cluster", pipelinetest.Env{Brokers: clusterKafka, Replication: 3, ClickHouse: ccfg,
			Settle: func(t testing.TB) { syncReplicas(t, ccfg) }}, &onCluster},
		{"single node", pipelinetest.Env{Brokers: testenv.KafkaBrokers(t), Replication: 1, ClickHouse: testenv.ClickHouse(t)}, &onOne},
	}
	t.Run("sides", func(t *testing.T) {
		for _, side := range sides {
			t.Run(side.name, func(t *testing.T) {
				t.Parallel()
				*side.out = pipelinetest.Run(t, side.env)
			})
		}
	})
	if t.Failed() {
		return
	}
	pipelinetest.Same(t, "cluster", "single node", onCluster, onOne)
}

// A list read through a Distributed table with FINAL and ORDER BY that names only some
// sorting-key columns (GET /v1/metrics) works once a shard has several parts: 18.16's in-process
// read of the local shard fails it (chdb's prefer_localhost_replica=0 avoids that path).
func TestFinalOrderByWithManyParts(t *testing.T) {
	ctx := context.Background()
	cfg := clusterConfig(t, clusterCH[0])
	conn := open(t, cfg, false)
	if _, err := chdb.MigrateConfig(ctx, conn, cfg); err != nil {
		t.Fatal(err)
	}
	_, ms := records(40)
	for i := 0; i < len(ms); i += 10 { // four inserts: parts on every shard
		if err := consumertest.Write(ctx, conn, cfg.Database, nil, ms[i:i+10]); err != nil {
			t.Fatal(err)
		}
	}
	syncReplicas(t, cfg)
	rows, err := open(t, cfg, true).Query(ctx, "SELECT metric_id FROM metrics FINAL ORDER BY timestamp_us, metric_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 || got[0] != ms[0].MetricID || got[39] != ms[39].MetricID {
		t.Fatalf("read %d metrics %v, want the 40 written in time order", len(got), got)
	}
}

// syncReplicas waits (SYSTEM SYNC REPLICA) until every replica of every replicated table of cfg's
// database on the cluster has fetched every part written so far, so that a read through a
// Distributed table, which may go to either replica of a shard, sees every row.
func syncReplicas(t testing.TB, cfg chdb.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, addr := range clusterCH {
		c := cfg
		c.Addr, c.MaxOpenConns = []string{addr}, 1
		conn, err := chdb.Open(ctx, c, false)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND engine LIKE 'Replicated%'", cfg.Database)
		if err != nil {
			conn.Close()
			t.Fatalf("list replicated tables on %s: %v", addr, err)
		}
		var tables []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		rows.Close()
		for _, table := range tables {
			if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+cfg.Database+"."+table); err != nil {
				conn.Close()
				t.Fatalf("sync replica %s.%s on %s: %v", cfg.Database, table, addr, err)
			}
		}
		conn.Close()
		if len(tables) == 0 {
			t.Fatalf("no replicated table of %s on %s", cfg.Database, addr)
		}
	}
}
