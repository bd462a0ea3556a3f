package consumer

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary/tributary/rollups"
)

func TestDistributedEngineParsed(t *testing.T) {
	f := func(engine, cluster, db string) {
		t.Helper()
		m := distributedRE.FindStringSubmatch(engine)
		if cluster == "" {
			if m != nil {
				t.Errorf("%q: read as Distributed %v", engine, m)
			}
			return
		}
		if m == nil || m[1] != cluster || m[2] != db {
			t.Errorf("%q: got %v, want cluster %s, database %s", engine, m, cluster, db)
		}
	}
	f("Distributed(tributary, cl_1, rollups_local, series_id)", "tributary", "cl_1")
	f("Distributed('tributary', 'db', 'rollups_local', series_id)", "tributary", "db")
	f("ReplacingMergeTree(last_offset) PARTITION BY toYYYYMMDD(window_start) ORDER BY (tenant)", "", "")
	f("ReplicatedReplacingMergeTree('/clickhouse/x', '{replica}', last_offset)", "", "")
}

func TestReplicaTablesGroupedByShard(t *testing.T) {
	hosts := [][]string{{"127.0.0.1:9001", "127.0.0.1:9002"}, {"[::1]:9003"}}
	got := replicaTables(hosts, "db", "", "")
	want := [][]replica{
		{{"127.0.0.1:9001", "remote('127.0.0.1:9001', db, rollups_local)", "remote('127.0.0.1:9001', system, replicas)"},
			{"127.0.0.1:9002", "remote('127.0.0.1:9002', db, rollups_local)", "remote('127.0.0.1:9002', system, replicas)"}},
		{{"[::1]:9003", "remote('[::1]:9003', db, rollups_local)", "remote('[::1]:9003', system, replicas)"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// With the consumer's account, quoted: a quote or backslash in the password stays in it.
	got = replicaTables(hosts[1:], "db", "tributary", `it's\`)
	if w := `remote('[::1]:9003', db, rollups_local, 'tributary', 'it\'s\\')`; got[0][0].rollups != w {
		t.Errorf("got %s, want %s", got[0][0].rollups, w)
	}
	if w := `remote('[::1]:9003', system, replicas, 'tributary', 'it\'s\\')`; got[0][0].status != w {
		t.Errorf("got %s, want %s", got[0][0].status, w)
	}
}

// A replica down is skipped while a twin that answered holds every part; a twin that may lack
// some (still fetching, read-only after a restart) is not enough, and the error names both; a whole
// shard down is an error naming it; a permanent error stops at once.
func TestEachShardNeedsACompleteReplicaPerShard(t *testing.T) {
	shards := replicaTables([][]string{{"a1", "a2"}, {"b1", "b2"}}, "db", "", "")
	f := func(down map[string]error, lacking map[string]bool, wantErr string, wantRead, wantAsked []string) {
		t.Helper()
		var read, asked []string
		err := eachShard(shards, func(from string) error {
			addr := strings.TrimPrefix(strings.TrimSuffix(from, "', db, rollups_local)"), "remote('")
			read = append(read, addr)
			return down[addr]
		}, func(r replica) error {
			asked = append(asked, r.addr)
			if lacking[r.addr] {
				return errors.New("1 part still to fetch")
			}
			return nil
		})
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("down %v, lacking %v: error %v, want %q", down, lacking, err, wantErr)
		}
		if !reflect.DeepEqual(read, wantRead) || !reflect.DeepEqual(asked, wantAsked) {
			t.Errorf("down %v, lacking %v: read %v and asked %v, want %v and %v", down, lacking, read, asked, wantRead, wantAsked)
		}
	}
	refused := errors.New("connection refused")
	all := []string{"a1", "a2", "b1", "b2"}
	f(nil, nil, "", all, nil)
	f(nil, map[string]bool{"a1": true, "b2": true}, "", all, nil) // every replica read: together they hold every part
	f(map[string]error{"a1": refused, "b2": refused}, nil, "", all, []string{"a2", "b1"})
	f(map[string]error{"a1": refused}, map[string]bool{"a2": true},
		"shard 1: a replica did not answer and those that did may lack windows it wrote: replica a1: connection refused\n1 part still to fetch",
		[]string{"a1", "a2"}, []string{"a2"})
	f(map[string]error{"b1": refused, "b2": refused}, nil, "no replica of shard 2 answered: replica b1: connection refused", all, nil)
	f(map[string]error{"a1": Permanent(errors.New("bad row"))}, nil, "bad row", []string{"a1"}, nil)
}

// Of the versions of a window read from several replicas the newest (highest last offset) is kept,
// wherever it was read: an older one written back would replace the points counted since.
func TestNewestWindowsKeepsHighestOffset(t *testing.T) {
	k1, k2 := rollups.Key{Series: 1, Tier: 60, Start: 0}, rollups.Key{Series: 2, Tier: 60, Start: 0}
	w := func(k rollups.Key, off int64, n uint64) *rollups.Window {
		return &rollups.Window{Key: k, Agg: rollups.Aggregate{LastOffset: off, Count: n}}
	}
	got := newestWindows([]*rollups.Window{w(k1, 5, 43), w(k2, 9, 1), w(k1, 12, 75), w(k2, 3, 7)})
	if len(got) != 2 || got[0].Key != k1 || got[0].Agg.Count != 75 || got[1].Key != k2 || got[1].Agg.Count != 1 {
		t.Errorf("got %+v %+v, want k1 with 75 points, k2 with 1", got[0], got[1])
	}
	if got := newestWindows(nil); len(got) != 0 {
		t.Errorf("newestWindows(nil) = %v", got)
	}
}
