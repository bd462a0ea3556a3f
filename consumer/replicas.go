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
// rollups_local through remote(), and keeps each window's newest version: every part committed to
// a shard is on the disk of the replica that wrote it, so the replicas together hold every version.
//
// When a replica does not answer, the others of its shard are used only if one of them holds
// every part of rollups_local ZooKeeper lists (complete): a replica that is not read-only, has
// copied the whole replication log to its queue and has no part left to fetch. Otherwise the read
// is an error (retried with backoff) until the missing replica answers or its twin has fetched
// what it wrote: a version written to a replica just before it crashed, read from its twin alone,
// would be an older one. A shard none of whose replicas answers is an error too, never an empty
// answer. remote() connects with the account ReadReplicasAs gave (the consumer's), else as
// "default". ClickHouse releases since 23 hide a remote() password in query_log and in errors;
// 18.16 logs it as written.

// replica is one server of a shard, as remote() table expressions: its rollups_local and its
// system.replicas.
type replica struct {
	addr, rollups, status string
}

// distributedRE reads the cluster and the database of a Distributed table's engine_full.
var distributedRE = regexp.MustCompile(`^Distributed\(\s*'?([A-Za-z0-9_.-]+)'?\s*,\s*'?([A-Za-z0-9_]+)'?\s*,`)

// rollupReplicas returns, when the rollups table is Distributed, the replicas of each shard; nil on
// one server. It asks the server once.
func (s *ClickHouseStore) rollupReplicas(ctx context.Context) ([][]replica, error) {
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
		s.replicas = new([][]replica)
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
// database's rollups_local and of system.replicas, read as user (with password) when user is set.
func replicaTables(shards [][]string, database, user, password string) [][]replica {
	auth := ""
	if user != "" {
		auth = ", " + quoteString(user) + ", " + quoteString(password)
	}
	out := make([][]replica, len(shards))
	for i, addrs := range shards {
		for _, addr := range addrs {
			out[i] = append(out[i], replica{addr: addr,
				rollups: "remote('" + addr + "', " + database + ", rollups_local" + auth + ")",
				status:  "remote('" + addr + "', system, replicas" + auth + ")"})
		}
	}
	return out
}

// replicaComplete returns nil when r holds every part of rollups_local that ZooKeeper lists (see
// the top of this file), else an error saying what it lacks.
func (s *ClickHouseStore) replicaComplete(ctx context.Context, r replica) error {
	var readonly, expired, inserts, pointer, maxIndex uint64
	err := s.conn.QueryRow(ctx, "SELECT toUInt64(is_readonly), toUInt64(is_session_expired), toUInt64(inserts_in_queue), "+
		"toUInt64(log_pointer), toUInt64(log_max_index) FROM "+r.status+" WHERE database = ? AND table = 'rollups_local'", s.database).
		Scan(&readonly, &expired, &inserts, &pointer, &maxIndex)
	switch {
	case err != nil:
		return fmt.Errorf("replica %s: read its replication status: %w", r.addr, err)
	case readonly != 0 || expired != 0:
		return fmt.Errorf("replica %s: rollups_local is read-only (its ZooKeeper session is not usable yet)", r.addr)
	case inserts > 0:
		return fmt.Errorf("replica %s: %d parts of rollups_local still to fetch", r.addr, inserts)
	case pointer <= maxIndex && (pointer != 0 || maxIndex != 0):
		return fmt.Errorf("replica %s: replication log copied up to entry %d of %d", r.addr, pointer, maxIndex+1)
	}
	return nil
}

// quoteString is s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// eachShard calls read with every replica of every shard. A replica failing is skipped when
// another replica of its shard answered and complete says that one holds every part (nil); it
// returns an error when a whole shard failed or no replica answering is complete, or at once when a
// read fails permanently.
func eachShard(shards [][]replica, read func(from string) error, complete func(replica) error) error {
	for i, replicas := range shards {
		var errs []error
		var answered []replica
		for _, r := range replicas {
			err := read(r.rollups)
			if IsPermanent(err) {
				return err
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("replica %s: %w", r.addr, err))
				continue
			}
			answered = append(answered, r)
		}
		if len(answered) == 0 {
			return fmt.Errorf("no replica of shard %d answered: %w", i+1, errors.Join(errs...))
		}
		if len(errs) == 0 {
			continue
		}
		var lacks []error
		for _, r := range answered {
			err := complete(r)
			if err == nil {
				break
			}
			lacks = append(lacks, err)
		}
		if len(lacks) == len(answered) {
			return fmt.Errorf("shard %d: a replica did not answer and those that did may lack windows it wrote: %w",
				i+1, errors.Join(append(errs, lacks...)...))
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
