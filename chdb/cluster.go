package chdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Cluster mode (Config.Cluster set): the migrations of schemas/ddl, written for one server, are
// rewritten statement by statement so that each table T becomes
//
//   - T_local on every server of the cluster (CREATE ... ON CLUSTER), engine Replicated<engine>
//     with the ZooKeeper path /clickhouse/tributary/<db>/{shard}/T_local and replica {replica}
//     (both macros of each server's config), holding the rows of its shard; and
//   - T, a Distributed table over T_local on every server, sharded by shardingKeys[T], so that
//     queries and inserts keep today's names.
//
// Materialized views read and write the local tables (each shard indexes its own rows); an
// ADD COLUMN is applied, where system.columns lacks the column, on every server of the cluster
// (18.16 has no ADD COLUMN IF NOT EXISTS, and refuses ALTER ... ON CLUSTER on a Distributed table
// whose shards are replicated).

// shardingKeys is each table's sharding expression. A record and all its replays must land on one
// shard so that FINAL (ReplacingMergeTree) dedupe within a shard is complete: every key is a
// function of columns a replay repeats. Events go by trace (by event id when they have none), so a
// trace's events and its trace-index rows (by the trace's hash) sit on one shard; the attribute
// index goes with its events (its materialized view writes on the event's shard); metrics by
// record id; rollups by series. events_attr_index has no trace id: only a backfill (0008's, of
// events stored before it) goes by its key, event_hash, so a replay of such an event may repeat
// its rows on another shard: harmless, the query service groups the index's rows by event across
// shards. A migration creating a table not listed here fails in cluster mode; the tables of
// indexes replaced since (events_by_attr of 0004, events_by_attr_hash of 0007, events_by_trace of
// 0003) are listed because a new database still creates them first. make bench's direct-to-shard
// write (internal/bench writePaths) computes the events' and metrics' keys in Go the same way.
var shardingKeys = map[string]string{
	"events":              "if(trace_id = '', cityHash64(event_id), cityHash64(trace_id))",
	"events_by_attr":      "if(trace_id = '', cityHash64(event_id), cityHash64(trace_id))",
	"events_by_attr_hash": "if(trace_id = '', cityHash64(event_id), cityHash64(trace_id))",
	"events_attr_index":   "event_hash",
	"events_by_trace":     "cityHash64(trace_id)",
	"events_trace_index":  "trace_hash",
	"metrics":             "cityHash64(metric_id)",
	"rollups":             "series_id",
}

// clusterSettings apply to every connection in cluster mode:
//   - insert_distributed_sync: an insert into a Distributed table returns only once every shard it
//     wrote to has stored its rows (so the consumer commits offsets only after that), instead of
//     queueing them on the server it went to;
//   - prefer_localhost_replica 0: the server's own shard is read like the others, through a
//     query to a replica's local table. On 18.16 the in-process shortcut for it fails a
//     SELECT ... FROM <Distributed> FINAL ... ORDER BY that does not name every sorting-key column
//     once that shard has two parts ("Cannot find column timestamp in source stream"), as the
//     query service's GET /v1/metrics does.
var clusterSettings = clickhouse.Settings{"insert_distributed_sync": 1, "prefer_localhost_replica": 0}

var (
	createDatabaseRE = regexp.MustCompile(`(?is)^\s*CREATE\s+DATABASE\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\s*$`)
	// CREATE TABLE IF NOT EXISTS db.t [AS db.src] (cols) ENGINE = Engine(args) rest
	createTableRE = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(\s+AS\s+[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)?(.*?)ENGINE\s*=\s*([A-Za-z]*MergeTree)\(([^)]*)\)(.*)$`)
	createViewRE  = regexp.MustCompile(`(?is)^\s*CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s+TO\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(.*)$`)
	fromRE        = regexp.MustCompile(`(?i)\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\b`)
	insertRE      = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s`)
	dropTableRE   = regexp.MustCompile(`(?is)^\s*DROP\s+TABLE\s+IF\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*$`)
)

// clusterStatements rewrites one rendered single-server statement of database into what cluster
// mode runs instead (see the comment at the top of this file). ADD COLUMN statements are not
// rewritten here: applyCluster runs them on each server.
func clusterStatements(sql, database, cluster string) ([]string, error) {
	on := " ON CLUSTER " + cluster
	if m := createDatabaseRE.FindStringSubmatch(sql); m != nil {
		return []string{"CREATE DATABASE IF NOT EXISTS " + m[1] + on}, nil
	}
	if m := createTableRE.FindStringSubmatch(sql); m != nil {
		db, table, as, columns, engine, args, rest := m[1], m[2], m[3], m[4], m[5], strings.TrimSpace(m[6]), m[7]
		if db != database {
			return nil, fmt.Errorf("cluster mode: table %s.%s is outside database %s", db, table, database)
		}
		if as != "" {
			as += "_local"
		}
		local := table + "_local"
		// schema_migrations is one table replicated on every server (not sharded), so that each
		// server knows which migrations ran.
		path := "/clickhouse/tributary/" + db + "/{shard}/" + local
		if table == "schema_migrations" {
			path = "/clickhouse/tributary/" + db + "/" + table
			local = table
		}
		rargs := "'" + path + "', '{replica}'"
		if args != "" {
			rargs += ", " + args
		}
		out := []string{"CREATE TABLE IF NOT EXISTS " + db + "." + local + on + as + columns +
			"ENGINE = Replicated" + engine + "(" + rargs + ")" + rest}
		if table == "schema_migrations" {
			return out, nil
		}
		key, ok := shardingKeys[table]
		if !ok {
			return nil, fmt.Errorf("cluster mode: table %s has no sharding key (add one to shardingKeys)", table)
		}
		return append(out, "CREATE TABLE IF NOT EXISTS "+db+"."+table+on+" AS "+db+"."+local+
			" ENGINE = Distributed("+cluster+", "+db+", "+local+", "+key+")"), nil
	}
	if m := createViewRE.FindStringSubmatch(sql); m != nil {
		sel := fromRE.ReplaceAllString(m[5], "FROM ${1}.${2}_local")
		return []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS " + m[1] + "." + m[2] + on +
			" TO " + m[3] + "." + m[4] + "_local AS " + sel}, nil
	}
	if m := dropTableRE.FindStringSubmatch(sql); m != nil {
		// A table is its Distributed table and its local tables; a materialized view has no
		// _local twin, so the second statement finds nothing to drop.
		return []string{"DROP TABLE IF EXISTS " + m[1] + "." + m[2] + on, "DROP TABLE IF EXISTS " + m[1] + "." + m[2] + "_local" + on}, nil
	}
	if insertRE.MatchString(sql) {
		// Backfills read and write the Distributed tables: rows move to the shard of their key.
		return []string{sql}, nil
	}
	return nil, fmt.Errorf("cluster mode: no rewrite for statement %q", firstLine(sql))
}

// ShardReplicas lists the cluster's servers (host:port, as the server conn talks to knows them)
// per shard, ordered by shard and replica.
func ShardReplicas(ctx context.Context, conn driver.Conn, cluster string) ([][]string, error) {
	rows, err := conn.Query(ctx, "SELECT shard_num, host_address, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", cluster)
	if err != nil {
		return nil, fmt.Errorf("read system.clusters: %w", err)
	}
	defer rows.Close()
	var shards [][]string
	last := uint32(0)
	for rows.Next() {
		var shard uint32
		var addr string
		var port uint16
		if err := rows.Scan(&shard, &addr, &port); err != nil {
			return nil, fmt.Errorf("read system.clusters: %w", err)
		}
		if len(shards) == 0 || shard != last {
			shards, last = append(shards, nil), shard
		}
		shards[len(shards)-1] = append(shards[len(shards)-1], net.JoinHostPort(addr, strconv.Itoa(int(port))))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read system.clusters: %w", err)
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("clickhouse cluster %q: not in system.clusters (check the servers' remote_servers)", cluster)
	}
	return shards, nil
}

// addColumnOnCluster applies "ALTER TABLE db.table ADD COLUMN column ..." (sql) in cluster mode:
// on every server, to table_local and then to the Distributed table, each where system.columns of
// that server lacks the column. An ALTER of a replicated table returns once the shard's other
// active replicas applied it too, so they are skipped when their turn comes.
func addColumnOnCluster(ctx context.Context, conn driver.Conn, cfg Config, sql, db, table, column string) error {
	shards, err := ShardReplicas(ctx, conn, cfg.Cluster)
	if err != nil {
		return err
	}
	hosts := slices.Concat(shards...) // in shard and replica order, so concurrent migrates alter them alike
	tail := strings.TrimSpace(sql[strings.Index(strings.ToUpper(sql), " ADD ")+1:])
	for _, h := range hosts {
		hc := cfg
		hc.Addr, hc.MaxOpenConns = []string{h}, 1
		hconn, err := Open(ctx, hc, false)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", cfg.Cluster, err)
		}
		for _, t := range []string{table + "_local", table} {
			if err := apply(ctx, hconn, db, "ALTER TABLE "+db+"."+t+" "+tail); err != nil {
				hconn.Close()
				return fmt.Errorf("on %s: %w", h, err)
			}
		}
		hconn.Close()
	}
	return nil
}

// applyCluster runs one rendered migration statement in cluster mode.
func applyCluster(ctx context.Context, conn driver.Conn, cfg Config, sql string) error {
	if m := addColumnRE.FindStringSubmatch(sql); m != nil {
		return addColumnOnCluster(ctx, conn, cfg, sql, m[1], m[2], m[3])
	}
	stmts, err := clusterStatements(sql, cfg.Database, cfg.Cluster)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if err := apply(ctx, conn, cfg.Database, s); err != nil {
			var ex *clickhouse.Exception
			if errors.As(err, &ex) {
				return fmt.Errorf("%s: %w", firstLine(s), err)
			}
			return err
		}
	}
	return nil
}
