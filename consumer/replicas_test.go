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
	want := [][]string{
		{"remote('127.0.0.1:9001', db, rollups_local)", "remote('127.0.0.1:9002', db, rollups_local)"},
		{"remote('[::1]:9003', db, rollups_local)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// With the consumer's account, quoted: a quote or backslash in the password stays in it.
	got = replicaTables(hosts[1:], "db", "tributary", `it's\`)
	if w := `remote('[::1]:9003', db, rollups_local, 'tributary', 'it\'s\\')`; got[0][0] != w {
		t.Errorf("got %s, want %s", got[0][0], w)
	}
}

// A replica down is skipped while its twin answers; a whole shard down is an error naming it; a
// permanent error stops at once.
func TestEachShardNeedsOneReplicaPerShard(t *testing.T) {
	shards := [][]string{{"a1", "a2"}, {"b1", "b2"}}
	f := func(down map[string]error, wantErr string, wantRead []string) {
		t.Helper()
		var read []string
		err := eachShard(shards, func(from string) error { read = append(read, from); return down[from] })
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("down %v: error %v, want %q", down, err, wantErr)
		}
		if !reflect.DeepEqual(read, wantRead) {
			t.Errorf("down %v: read %v, want %v", down, read, wantRead)
		}
	}
	refused := errors.New("connection refused")
	all := []string{"a1", "a2", "b1", "b2"}
	f(nil, "", all)
	f(map[string]error{"a1": refused, "b2": refused}, "", all)
	f(map[string]error{"b1": refused, "b2": refused}, "no replica of shard 2 answered: connection refused", all)
	f(map[string]error{"a1": Permanent(errors.New("bad row"))}, "bad row", []string{"a1"})
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
