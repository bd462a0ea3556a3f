package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/kafka"
)

// Env is what scenarios run against: the real servers, the tributary binary (services run as
// their own processes, so each one's memory and CPU can be measured) and the run's mode.
type Env struct {
	Brokers        []string
	ClickHouseAddr string
	Binary         string // the tributary binary
	Short          bool   // a few seconds per scenario: keeps the harness working, measures little
	StateDir       string // deploy/*.sh's .state directory (servers' pid files)
	Log            io.Writer
	// Cluster is where the cluster scenario runs its cluster side. Without it the scenario starts
	// the local clusters with ClusterScript (deploy/cluster.sh) for its own duration, and fails if
	// that is empty too.
	Cluster       *Cluster
	ClusterScript string

	clusterName string // set on the Env of a cluster side: tables ON CLUSTER, topics replicated
	replication int16
	pidFiles    map[string]string // process name -> pid file under StateDir
	cleanups    []func()
}

// Cluster is the local clusters of deploy/cluster.sh (ClickHouse 2 shards x 2 replicas, Kafka 3
// nodes), as its env subcommand prints them.
type Cluster struct {
	Brokers        []string
	ClickHouseAddr []string
	Name           string
}

// Scenario is one part of the report.
type Scenario struct {
	Name  string
	Title string
	Run   func(ctx context.Context, e *Env, s *Section) error
}

// Scenarios lists every scenario in the order they run.
func Scenarios() []Scenario {
	return []Scenario{
		{"sdk", "SDK → Kafka", runSDK},
		{"gateway", "Gateway → Kafka: JSON and OTLP ingest", runGateway},
		{"consumer", "Kafka → ClickHouse: the consumer stage", runConsumer},
		{"cardinality", "Cardinality: the consumer at 1k, 100k and 1M active series", runCardinality},
		{"e2e", "End to end: load generator → Kafka → consumer → ClickHouse, rollups on", runEndToEnd},
		{"scaling", "Scaling: partitions and consumers, rows already stored", runScaling},
		{"cluster", "Cluster: 2 shards x 2 replicas and 3 brokers beside one server and one broker", runCluster},
		{"query", "Query service at 10M events and 10M metric points", runQuery},
	}
}

// Run runs the scenarios named in only (all when empty) and returns the report. A failed scenario
// is recorded in its section and the others still run; err reports whether any failed.
func Run(ctx context.Context, e *Env, only []string, command string) (*Report, error) {
	start := time.Now()
	mode := "full"
	if e.Short {
		mode = "short"
	}
	r := &Report{Date: start.UTC().Format("2006-01-02 15:04 UTC"), Mode: mode, Command: command, Machine: e.machine(ctx)}
	var failed []string
	for _, sc := range Scenarios() {
		if len(only) > 0 && !contains(only, sc.Name) {
			continue
		}
		sec := Section{Scenario: sc.Name, Title: sc.Title}
		t0 := time.Now()
		e.logf("== %s", sc.Name)
		err := sc.Run(ctx, e, &sec)
		e.cleanup()
		sec.Seconds = time.Since(t0).Seconds()
		for i := range sec.Figures {
			sec.Figures[i].Scenario = sc.Name
		}
		if err != nil {
			sec.Error = err.Error()
			failed = append(failed, sc.Name+": "+err.Error())
			e.logf("!! %s failed: %v", sc.Name, err)
		}
		r.Sections = append(r.Sections, sec)
	}
	r.Seconds = time.Since(start).Seconds()
	if len(failed) > 0 {
		return r, fmt.Errorf("scenarios failed: %s", strings.Join(failed, "; "))
	}
	return r, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (e *Env) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

func (e *Env) defer_(f func()) { e.cleanups = append(e.cleanups, f) }

func (e *Env) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

func unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// pick returns full, or short in short mode.
func pick[T any](e *Env, full, short T) T {
	if e.Short {
		return short
	}
	return full
}

// database creates a fresh migrated database, dropped when the scenario ends.
func (e *Env) database(ctx context.Context) (chdb.Config, driver.Conn, error) {
	cfg := chdb.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.Cluster = strings.Split(e.ClickHouseAddr, ","), unique("bench"), e.clusterName
	admin, err := chdb.Open(ctx, cfg, false)
	if err != nil {
		return cfg, nil, fmt.Errorf("ClickHouse at %s: %w", e.ClickHouseAddr, err)
	}
	if _, err := chdb.MigrateConfig(ctx, admin, cfg); err != nil {
		admin.Close()
		return cfg, nil, err
	}
	conn, err := chdb.Open(ctx, cfg, true)
	if err != nil {
		admin.Close()
		return cfg, nil, err
	}
	e.defer_(func() {
		conn.Close()
		if os.Getenv("BENCH_KEEP_DATABASES") != "" { // for looking at a scenario's data afterwards
			e.logf("kept database %s", cfg.Database)
			admin.Close()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		drop := "DROP DATABASE IF EXISTS " + cfg.Database
		if cfg.Cluster != "" {
			drop += " ON CLUSTER " + cfg.Cluster
		}
		_ = admin.Exec(ctx, drop)
		admin.Close()
	})
	return cfg, conn, nil
}

// topics creates fresh topics events, metrics, rollups and dlq with the given partitions, deleted
// when the scenario ends.
// fresh makes what one side of a scenario runs against: a fresh migrated database and fresh topics
// of the given partitions.
func (e *Env) fresh(ctx context.Context, partitions int32) (chdb.Config, driver.Conn, kafka.Config, error) {
	ch, conn, err := e.database(ctx)
	if err != nil {
		return ch, nil, kafka.Config{}, err
	}
	k, err := e.topics(ctx, partitions)
	return ch, conn, k, err
}

func (e *Env) topics(ctx context.Context, partitions int32) (kafka.Config, error) {
	rf := max(e.replication, 1)
	k := kafka.Config{Brokers: e.Brokers, ClientID: "bench", EventsTopic: unique("events"), MetricsTopic: unique("metrics"),
		RollupsTopic: unique("rollups"), DLQTopic: unique("dlq"), TopicPartitions: partitions, TopicReplication: rf}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...))
	if err != nil {
		return k, err
	}
	adm := kadm.NewClient(cl)
	names := k.Topics()
	resp, err := adm.CreateTopics(ctx, partitions, rf, nil, names...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		cl.Close()
		return k, fmt.Errorf("create topics on %v: %w", e.Brokers, err)
	}
	e.defer_(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, names...)
		cl.Close()
	})
	return k, nil
}

// service is a tributary process started by the harness.
type service struct {
	name string
	cmd  *exec.Cmd
	addr string // its HTTP listener, if any
	out  *os.File
}

// start runs `tributary <role>` with the environment given (on top of this process's), logging to
// a temporary file; it is killed when the scenario ends if still running.
func (e *Env) start(role string, env ...string) (*service, error) {
	out, err := os.CreateTemp("", "tributary-bench-"+role+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.Binary, role)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(os.Environ(), env...), out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	s := &service{name: role, cmd: cmd, out: out}
	e.defer_(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
		out.Close()
		_ = os.Remove(out.Name())
	})
	return s, nil
}

// stop sends SIGTERM and waits; it returns the process's error with the end of its log.
func (s *service) stop() error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	if err := s.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", s.name, err, s.tail())
	}
	return nil
}

func (s *service) tail() string {
	b, _ := os.ReadFile(s.out.Name())
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(ctx context.Context, url string, s *service) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s != nil && s.cmd.ProcessState != nil {
			return fmt.Errorf("%s exited: %s", s.name, s.tail())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	msg := ""
	if s != nil {
		msg = s.tail()
	}
	return fmt.Errorf("%s did not become ready in 30 s: %s", url, msg)
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// procStatus reads a field of /proc/<pid>/status in KiB (VmHWM: peak RSS, VmRSS: current).
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == field+":" {
			return strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// cpuSeconds is a process's user+system CPU time so far, threads and waited-for children included.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var ticks float64
	for _, i := range []int{11, 12} { // utime, stime (fields 14, 15)
		v, _ := strconv.ParseFloat(fs[i], 64)
		ticks += v
	}
	return ticks / 100, nil // USER_HZ is 100 on Linux
}

// serverPID reads a local server's pid file written by deploy/*.sh (clickhouse/server.pid,
// kafka/broker.pid).
func (e *Env) serverPID(rel string) int {
	b, err := os.ReadFile(filepath.Join(e.StateDir, rel))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// serverPIDs names the servers' processes, for measuring their CPU: the local ClickHouse server
// and Kafka broker, or on a cluster side every server of the clusters.
func (e *Env) serverPIDs() map[string]int {
	files := e.pidFiles
	if files == nil {
		files = map[string]string{"ClickHouse": "clickhouse/server.pid", "Kafka": "kafka/broker.pid"}
	}
	pids := map[string]int{}
	for name, f := range files {
		if pid := e.serverPID(f); pid > 0 {
			pids[name] = pid
		}
	}
	return pids
}

// onCluster is an Env for the cluster side of a scenario: fresh databases are migrated ON CLUSTER
// and dropped on every server, topics are replicated over the three brokers, consumers run in
// cluster mode, and CPU is measured for every server. Its cleanups run with e's.
func (e *Env) onCluster() (*Env, error) {
	c := e.Cluster
	if c == nil || len(c.Brokers) == 0 || len(c.ClickHouseAddr) == 0 || c.Name == "" {
		return nil, errors.New("the cluster scenario needs the local clusters: deploy/cluster.sh start, then set " +
			"TRIBUTARY_TEST_CLUSTER_CLICKHOUSE_ADDR, TRIBUTARY_TEST_CLUSTER_KAFKA_BROKERS and TRIBUTARY_TEST_CLUSTER_NAME " +
			"as deploy/cluster.sh env prints them (make bench does)")
	}
	ce := &Env{Brokers: c.Brokers, ClickHouseAddr: strings.Join(c.ClickHouseAddr, ","), Binary: e.Binary, Short: e.Short,
		StateDir: e.StateDir, Log: e.Log, clusterName: c.Name, replication: int16(min(len(c.Brokers), 3)),
		pidFiles: map[string]string{"ZooKeeper": "cluster/zookeeper/pid"}}
	for i := range c.ClickHouseAddr {
		ce.pidFiles[fmt.Sprintf("ClickHouse %d", i+1)] = fmt.Sprintf("cluster/ch%d/pid", i+1)
	}
	for i := range c.Brokers {
		ce.pidFiles[fmt.Sprintf("Kafka %d", i+1)] = fmt.Sprintf("cluster/kafka%d/pid", i+1)
	}
	e.defer_(ce.cleanup)
	return ce, nil
}

// machine describes the machine and the servers.
func (e *Env) machine(ctx context.Context) []string {
	var out []string
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	out = append(out, fmt.Sprintf("%d cores (%s)", runtime.NumCPU(), model))
	if kb, err := memTotalKiB(); err == nil {
		out = append(out, fmt.Sprintf("%.1f GiB memory", float64(kb)/(1<<20)))
	}
	out = append(out, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	cfg := chdb.DefaultConfig()
	cfg.Addr, cfg.MaxOpenConns = []string{e.ClickHouseAddr}, 1
	if conn, err := chdb.Open(ctx, cfg, false); err == nil {
		var v string
		if conn.QueryRow(ctx, "SELECT version()").Scan(&v) == nil {
			out = append(out, "ClickHouse "+v+" (Debian package, local, single server)")
		}
		conn.Close()
	}
	if libs, err := filepath.Glob(filepath.Join(e.StateDir, "kafka/libs/kafka_*.jar")); err == nil && len(libs) > 0 {
		out = append(out, "Apache Kafka "+strings.TrimSuffix(filepath.Base(libs[0]), ".jar")+" (KRaft, single node, local)")
	}
	out = append(out, "everything co-located on this machine: broker, ClickHouse, the services and the load generator")
	return out
}

func memTotalKiB() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no MemTotal")
}

// startCluster starts the local clusters with ClusterScript for the cluster scenario (see
// StartLocalCluster) unless e.Cluster is set or there is no script, and sets e.Cluster. The
// function it returns stops them if it started them and clears e.Cluster.
func (e *Env) startCluster() (stop func(), _ error) {
	if e.Cluster != nil || e.ClusterScript == "" {
		return func() {}, nil
	}
	c, stopCluster, err := StartLocalCluster(e.ClusterScript, e.Log)
	if err != nil {
		return nil, err
	}
	e.Cluster = c
	return func() { e.Cluster = nil; stopCluster() }, nil
}

// StartLocalCluster starts deploy/cluster.sh's local clusters (script: ZooKeeper, ClickHouse
// 2 x 2, Kafka x 3) unless its status finds them running, and returns their addresses as its env
// subcommand prints them. stop stops them if this call started them (and does nothing
// otherwise). The script's progress goes to log.
func StartLocalCluster(script string, log io.Writer) (_ *Cluster, stop func(), _ error) {
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Stderr = log
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w", script, strings.Join(args, " "), err)
		}
		return out, nil
	}
	stop = func() {}
	if _, err := run("status"); err != nil {
		fmt.Fprintf(log, "starting the local clusters (%s start)\n", script)
		stop = func() {
			fmt.Fprintln(log, "stopping the local clusters")
			if out, err := run("stop"); err != nil {
				fmt.Fprintf(log, "%s%v\n", out, err)
			}
		}
		out, err := run("start")
		_, _ = log.Write(out)
		if err != nil {
			stop()
			return nil, nil, err
		}
	}
	out, err := run("env")
	if err != nil {
		stop()
		return nil, nil, err
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			vars[k] = v
		}
	}
	c := &Cluster{ClickHouseAddr: strings.Split(vars["TRIBUTARY_TEST_CLUSTER_CLICKHOUSE_ADDR"], ","),
		Brokers: strings.Split(vars["TRIBUTARY_TEST_CLUSTER_KAFKA_BROKERS"], ","), Name: vars["TRIBUTARY_TEST_CLUSTER_NAME"]}
	if c.Name == "" || c.ClickHouseAddr[0] == "" || c.Brokers[0] == "" {
		stop()
		return nil, nil, fmt.Errorf("%s env printed no cluster addresses: %q", script, out)
	}
	return c, stop, nil
}

// startProfile starts a CPU profile of this process into $BENCH_CPUPROFILE_DIR/<side>-<n>.pprof
// when that is set (to find where a side's time goes: `BENCH_CPUPROFILE_DIR=/tmp/p make bench`,
// then `go tool pprof -top /tmp/p/worker-*.pprof`). The stop function may be called more than once.
func startProfile(side string) (stop func(), err error) {
	dir := os.Getenv("BENCH_CPUPROFILE_DIR")
	if dir == "" {
		return func() {}, nil
	}
	profiles++
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", side, profiles)))
	if err != nil {
		return nil, fmt.Errorf("BENCH_CPUPROFILE_DIR: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("BENCH_CPUPROFILE_DIR: %w", err)
	}
	var once sync.Once
	return func() { once.Do(func() { pprof.StopCPUProfile(); f.Close() }) }, nil
}

var profiles int // startProfile's files so far
