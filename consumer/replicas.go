package consumer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/rollups"
)

// Rollup windows on a cluster. The engine reads a window it does not hold, adds points and writes
// it back, the new row replacing the old one (ReplacingMergeTree(last_offset)). Through the
// Distributed rollups table a read asks one replica of each shard, chosen at random, and a replica
// that has not fetched the window's newest version yet returns an older one: replication is
// asynchronous, and a replica restarted after a crash fetches nothing until its old ZooKeeper
// session expires (30 s by default) while it already takes inserts. The window written back from
// an old version has a higher last_offset than the newest one and replaces it: the points counted
// in between are lost (measured with both replicas of a shard killed and started again). So in
// cluster mode the store reads rollup windows from every replica of every shard, each server's
// rollups_local through remote(), and keeps each window's newest version; a shard none of whose
// replicas answers is an error (retried), never an empty answer. remote() connects with the
// account ReadReplicasAs gave (the consumer's), else as "default". ClickHouse releases since 23
// hide a remote() password in query_log and in errors; 18.16 logs it as written.

// distributedRE reads the cluster and the database of a Distributed table's engine_full.
var distributedRE = regexp.MustCompile(`^Distributed\(\s*'?([A-Za-z0-9_.-]+)'?\s*,\s*'?([A-Za-z0-9_]+)'?\s*,`)

// rollupReplicas returns, when the rollups table is Distributed, per shard a remote() table
// expression of each replica's rollups_local; nil on one server. It asks the server once.
func (s *ClickHouseStore) rollupReplicas(ctx context.Context) ([][]string, error) {
	s.replicasMu.Lock()
	defer s.replicasMu.Unlock()
	if s.replicas != nil {
		return *s.replicas, nil
	}
	var engine string
	if err := s.conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = 'rollups'", s.database).Scan(&engine); err != nil {
		return nil, fmt.Errorf("read the engine of %s.rollups: %w", s.database, err)
	}
	m := distributedRE.FindStringSubmatch(engine)
	if m == nil {
		s.replicas = new([][]string)
		return nil, nil
	}
	addrs, err := chdb.ShardReplicas(ctx, s.conn, m[1])
	if err != nil {
		return nil, fmt.Errorf("the replicas of cluster %s of %s.rollups: %w", m[1], s.database, err)
	}
	shards := replicaTables(addrs, m[2], s.remoteUser, s.remotePassword)
	s.replicas = &shards
	return shards, nil
}

// replicaTables turns each shard's replica addresses (host:port) into remote() expressions of
// database's rollups_local, read as user (with password) when user is set.
func replicaTables(shards [][]string, database, user, password string) [][]string {
	auth := ""
	if user != "" {
		auth = ", " + quoteString(user) + ", " + quoteString(password)
	}
	out := make([][]string, len(shards))
	for i, addrs := range shards {
		for _, addr := range addrs {
			out[i] = append(out[i], "remote('"+addr+"', "+database+", rollups_local"+auth+")")
		}
	}
	return out
}

// quoteString is s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// eachShard calls read with every replica of every shard. A replica failing is skipped when
// another replica of its shard answered; it returns an error when a whole shard failed, or at
// once when a read fails permanently.
func eachShard(shards [][]string, read func(from string) error) error {
	for i, replicas := range shards {
		var errs []error
		for _, from := range replicas {
			err := read(from)
			if IsPermanent(err) {
				return err
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) == len(replicas) {
			return fmt.Errorf("no replica of shard %d answered: %w", i+1, errors.Join(errs...))
		}
	}
	return nil
}

// newestWindows keeps, of windows read from several replicas, each key's newest version (the
// highest last offset), in the order the keys first appear.
func newestWindows(ws []*rollups.Window) []*rollups.Window {
	at := make(map[rollups.Key]int, len(ws))
	out := ws[:0:0]
	for _, w := range ws {
		i, ok := at[w.Key]
		switch {
		case !ok:
			at[w.Key] = len(out)
			out = append(out, w)
		case w.Agg.LastOffset > out[i].Agg.LastOffset:
			out[i] = w
		}
	}
	return out
}
