package deploycheck

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// chClusterConfig is what deploy/compose/cluster/clickhouse.xml declares.
type chClusterConfig struct {
	RemoteServers struct {
		Clusters []struct {
			XMLName xml.Name
			Secret  struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"secret"`
			Shards []struct {
				InternalReplication bool `xml:"internal_replication"`
				Replicas            []struct {
					Host string `xml:"host"`
					Port int    `xml:"port"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
	ZooKeeper struct {
		Nodes []struct {
			Host string `xml:"host"`
			Port int    `xml:"port"`
		} `xml:"node"`
	} `xml:"zookeeper"`
	Macros struct {
		Shard struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"shard"`
		Replica struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"replica"`
	} `xml:"macros"`
	DistributedDDL struct {
		Path string `xml:"path"`
	} `xml:"distributed_ddl"`
}

type keeperConfig struct {
	Keeper struct {
		TCPPort  int `xml:"tcp_port"`
		ServerID int `xml:"server_id"`
		Raft     struct {
			Servers []struct {
				ID       int    `xml:"id"`
				Hostname string `xml:"hostname"`
			} `xml:"server"`
		} `xml:"raft_configuration"`
	} `xml:"keeper_server"`
}

func readXML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The cluster compose file (3 Kafka nodes, ClickHouse 2 shards x 2 replicas with Keeper) is
// checked as every compose file is, and its parts against each other: the ClickHouse servers the
// cluster config lists are the compose services that mount it, each with the macros of the shard
// it is listed in; Keeper is where the servers look for it; the Kafka quorum names the three nodes;
// and every Tributary service points at all brokers, all ClickHouse servers and the cluster by the
// name remote_servers gives it, with topics replicated over the nodes.
func TestComposeCluster(t *testing.T) {
	const rel = "deploy/compose/cluster.yml"
	c := checkCompose(t, rel)
	checkQueryService(t, c)
	dir := filepath.Join(root(t), filepath.Dir(rel))

	var ch chClusterConfig
	readXML(t, filepath.Join(dir, "cluster", "clickhouse.xml"), &ch)
	if len(ch.RemoteServers.Clusters) != 1 {
		t.Fatalf("clickhouse.xml: want one cluster in remote_servers, have %d", len(ch.RemoteServers.Clusters))
	}
	cl := ch.RemoteServers.Clusters[0]
	clusterName := cl.XMLName.Local
	if len(cl.Shards) != 2 {
		t.Errorf("cluster %s: %d shards, want 2", clusterName, len(cl.Shards))
	}
	// shardOf: ClickHouse service -> its shard (1-based) in remote_servers.
	shardOf := map[string]int{}
	for i, sh := range cl.Shards {
		if !sh.InternalReplication {
			t.Errorf("shard %d: internal_replication must be true (Replicated tables replicate; the Distributed table writes one replica)", i+1)
		}
		if len(sh.Replicas) != 2 {
			t.Errorf("shard %d: %d replicas, want 2", i+1, len(sh.Replicas))
		}
		for _, r := range sh.Replicas {
			if _, dup := shardOf[r.Host]; dup {
				t.Errorf("%s is listed twice in remote_servers", r.Host)
			}
			shardOf[r.Host] = i + 1
			if r.Port != 9000 {
				t.Errorf("%s: port %d, want the native port 9000", r.Host, r.Port)
			}
		}
	}
	if ch.Macros.Shard.FromEnv == "" || ch.Macros.Replica.FromEnv == "" {
		t.Error("clickhouse.xml: macros shard and replica must come from the environment (from_env)")
	}
	if ch.DistributedDDL.Path == "" {
		t.Error("clickhouse.xml: distributed_ddl is needed for ON CLUSTER")
	}

	// ClickHouse services: the ones that mount clickhouse.xml.
	var chServices []string
	replicas := map[string]string{}
	for name, s := range c.Services {
		mounts := false
		for _, v := range s.Volumes {
			if strings.HasPrefix(v, "./cluster/clickhouse.xml:/etc/clickhouse-server/config.d/") {
				mounts = true
			}
		}
		if !mounts {
			continue
		}
		chServices = append(chServices, name)
		shard, ok := shardOf[name]
		if !ok {
			t.Errorf("%s mounts the cluster config but is not in its remote_servers", name)
			continue
		}
		if got := fmt.Sprint(s.Environment[ch.Macros.Shard.FromEnv]); got != fmt.Sprint(shard) {
			t.Errorf("%s: %s=%s, but remote_servers lists it in shard %d", name, ch.Macros.Shard.FromEnv, got, shard)
		}
		rep := fmt.Sprint(s.Environment[ch.Macros.Replica.FromEnv])
		if rep == "" || rep == "<nil>" {
			t.Errorf("%s: no %s", name, ch.Macros.Replica.FromEnv)
		} else if other, dup := replicas[rep]; dup {
			t.Errorf("%s and %s have the same replica macro %s: replicas of a shard would clash in Keeper", name, other, rep)
		}
		replicas[rep] = name
		if cl.Secret.FromEnv != "" && s.Environment[cl.Secret.FromEnv] == nil {
			t.Errorf("%s: the cluster secret %s is not set", name, cl.Secret.FromEnv)
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.Contains(v, "/users.d/") }) {
			t.Errorf("%s: does not mount the read-only account (users.d): the query service reads through every server", name)
		}
	}
	slices.Sort(chServices)
	if len(chServices) != len(shardOf) {
		t.Errorf("ClickHouse services %v; remote_servers lists %d servers", chServices, len(shardOf))
	}

	// Keeper.
	var kc keeperConfig
	readXML(t, filepath.Join(dir, "cluster", "keeper.xml"), &kc)
	if len(ch.ZooKeeper.Nodes) == 0 {
		t.Fatal("clickhouse.xml: no zookeeper node")
	}
	for _, n := range ch.ZooKeeper.Nodes {
		if _, ok := c.Services[n.Host]; !ok {
			t.Errorf("zookeeper node %s is not a service", n.Host)
		}
		if n.Port != kc.Keeper.TCPPort {
			t.Errorf("zookeeper node %s:%d; Keeper listens on %d", n.Host, n.Port, kc.Keeper.TCPPort)
		}
	}
	if r := kc.Keeper.Raft.Servers; len(r) != 1 || r[0].ID != kc.Keeper.ServerID || r[0].Hostname != ch.ZooKeeper.Nodes[0].Host {
		t.Errorf("keeper.xml: raft_configuration %+v does not name server %d at %s", r, kc.Keeper.ServerID, ch.ZooKeeper.Nodes[0].Host)
	}

	// Kafka: the services with KAFKA_NODE_ID.
	var brokers, voters []string
	minISR := ""
	for name, s := range c.Services {
		id, ok := s.Environment["KAFKA_NODE_ID"]
		if !ok {
			continue
		}
		brokers = append(brokers, name+":9092")
		voters = append(voters, fmt.Sprintf("%v@%s:9093", id, name))
		if got := fmt.Sprint(s.Environment["KAFKA_ADVERTISED_LISTENERS"]); got != "PLAINTEXT://"+name+":9092" {
			t.Errorf("%s advertises %s", name, got)
		}
		minISR = fmt.Sprint(s.Environment["KAFKA_MIN_INSYNC_REPLICAS"])
	}
	slices.Sort(brokers)
	slices.Sort(voters)
	if len(brokers) != 3 {
		t.Errorf("Kafka nodes %v, want 3", brokers)
	}
	for name, s := range c.Services {
		if q, ok := s.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"]; ok {
			got := strings.Split(fmt.Sprint(q), ",")
			slices.Sort(got)
			if !slices.Equal(got, voters) {
				t.Errorf("%s: quorum voters %v, want %v", name, got, voters)
			}
			if fmt.Sprint(s.Environment["KAFKA_MIN_INSYNC_REPLICAS"]) != "2" || fmt.Sprint(s.Environment["KAFKA_DEFAULT_REPLICATION_FACTOR"]) != "3" {
				t.Errorf("%s: topics need replication factor 3 and min.insync.replicas 2", name)
			}
		}
	}

	// Tributary's services.
	for _, name := range []string{"migrate", "consumer", "query", "gateway", "retention"} {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		env := func(k string) string { return fmt.Sprint(s.Environment[k]) }
		if env("TRIBUTARY_CLICKHOUSE_CLUSTER") != clusterName {
			t.Errorf("%s: TRIBUTARY_CLICKHOUSE_CLUSTER=%s, want the remote_servers cluster %s", name, env("TRIBUTARY_CLICKHOUSE_CLUSTER"), clusterName)
		}
		got := strings.Split(env("TRIBUTARY_KAFKA_BROKERS"), ",")
		slices.Sort(got)
		if !slices.Equal(got, brokers) {
			t.Errorf("%s: TRIBUTARY_KAFKA_BROKERS %v, want every node %v", name, got, brokers)
		}
		var addrs []string
		for _, h := range chServices {
			addrs = append(addrs, h+":9000")
		}
		got = strings.Split(env("TRIBUTARY_CLICKHOUSE_ADDR"), ",")
		slices.Sort(got)
		if !slices.Equal(got, addrs) {
			t.Errorf("%s: TRIBUTARY_CLICKHOUSE_ADDR %v, want every server %v (the client fails over between them)", name, got, addrs)
		}
		rf, _ := strconv.Atoi(env("TRIBUTARY_KAFKA_TOPIC_REPLICATION"))
		if isr, _ := strconv.Atoi(minISR); rf != len(brokers) || isr >= rf {
			t.Errorf("%s: TRIBUTARY_KAFKA_TOPIC_REPLICATION=%s with min.insync.replicas %s: one broker down must leave topics writable", name, env("TRIBUTARY_KAFKA_TOPIC_REPLICATION"), minISR)
		}
	}
	for _, dep := range append(slices.Clone(chServices), "kafka1", "kafka2", "kafka3") {
		if c.Services["migrate"].DependsOn[dep].Condition != "service_healthy" {
			t.Errorf("migrate must wait for %s to be healthy (ON CLUSTER needs every server)", dep)
		}
	}
}
