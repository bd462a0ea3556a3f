package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/kafka"
)

// pipe is a running pipeline of separate processes: consumer workers of one group on fresh topics
// and a fresh database, and optionally the query service.
type pipe struct {
	e         *Env
	k         kafka.Config
	ch        chdb.Config
	conn      driver.Conn
	group     string
	consumers []*service
	query     *service
	queryURL  string
	adm       *kadm.Client
	attrScale int // the load generator's TRIBUTARY_LOADGEN_ATTR_SCALE (0: its default, 1)
}

func (p *pipe) kafkaEnv() []string {
	return []string{"TRIBUTARY_KAFKA_BROKERS=" + strings.Join(p.k.Brokers, ","), "TRIBUTARY_KAFKA_EVENTS_TOPIC=" + p.k.EventsTopic,
		"TRIBUTARY_KAFKA_METRICS_TOPIC=" + p.k.MetricsTopic, "TRIBUTARY_KAFKA_ROLLUPS_TOPIC=" + p.k.RollupsTopic,
		"TRIBUTARY_KAFKA_DLQ_TOPIC=" + p.k.DLQTopic, "TRIBUTARY_LOG_LEVEL=warn"}
}

// newPipe starts consumers consumer processes (default settings, profiler on) over topics of the
// given partitions, and the query service (read-only account) if withQuery.
func newPipe(ctx context.Context, e *Env, partitions int32, consumers int, withQuery bool) (*pipe, error) {
	ch, conn, k, err := e.fresh(ctx, partitions)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...))
	if err != nil {
		return nil, err
	}
	e.defer_(cl.Close)
	p := &pipe{e: e, k: k, ch: ch, conn: conn, group: unique("bench"), adm: kadm.NewClient(cl)}
	if withQuery {
		if p.query, p.queryURL, err = e.startQuery(ctx, ch); err != nil {
			return nil, err
		}
	}
	if err := p.addConsumers(ctx, consumers); err != nil {
		return nil, err
	}
	return p, nil
}

// addConsumers starts n more consumer processes (default settings, profiler on) and waits until
// the group is stable with all of them, so that a measurement does not time the group join.
func (p *pipe) addConsumers(ctx context.Context, n int) error {
	for range n {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		s, err := p.e.start("consumer", append(p.kafkaEnv(), "TRIBUTARY_CLICKHOUSE_ADDR="+p.e.ClickHouseAddr,
			"TRIBUTARY_CLICKHOUSE_CLUSTER="+p.e.clusterName, "TRIBUTARY_CLICKHOUSE_DATABASE="+p.ch.Database,
			"TRIBUTARY_CONSUMER_GROUP="+p.group, "TRIBUTARY_CONSUMER_METRICS_LISTEN="+addr, "TRIBUTARY_CONSUMER_PPROF=true")...)
		if err != nil {
			return err
		}
		s.addr = addr
		if err := waitHTTP(ctx, "http://"+addr+"/readyz", s); err != nil {
			return err
		}
		p.consumers = append(p.consumers, s)
	}
	if n == 0 {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ls, err := p.adm.DescribeGroups(ctx, p.group)
		if err == nil {
			if g, ok := ls[p.group]; ok && g.State == "Stable" && len(g.Members) == len(p.consumers) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer group %s did not become stable with %d members in 30 s", p.group, len(p.consumers))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lag is the records in the events and metrics topics not yet committed by the group.
func (p *pipe) lag(ctx context.Context) (int64, error) {
	ends, err := p.adm.ListEndOffsets(ctx, p.k.EventsTopic, p.k.MetricsTopic)
	if err != nil {
		return 0, err
	}
	committed, err := p.adm.FetchOffsets(ctx, p.group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		lag += o.Offset - at
	})
	return lag, nil
}

// stored counts raw rows in ClickHouse.
func (p *pipe) stored(ctx context.Context) (uint64, error) {
	var n uint64
	err := p.conn.QueryRow(ctx, "SELECT (SELECT count() FROM "+p.ch.Database+".events) + (SELECT count() FROM "+p.ch.Database+".metrics)").Scan(&n)
	return n, err
}

// drain waits until the group has committed everything (up to limit).
func (p *pipe) drain(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		l, err := p.lag(ctx)
		if err == nil && l == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer lag still %d after %v (%v)", l, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var sentRE = regexp.MustCompile(`sent (\d+) records`)

// loadResult is what a `tributary loadgen` run sent and the CPU time it used.
type loadResult struct {
	sent int64
	cpu  float64 // seconds
}

func (p *pipe) startLoadgen(rate int, d time.Duration, hosts int) (*service, error) {
	return p.e.start("loadgen", append(p.kafkaEnv(), "TRIBUTARY_LOADGEN_RATE="+strconv.Itoa(rate),
		"TRIBUTARY_LOADGEN_DURATION="+d.String(), "TRIBUTARY_LOADGEN_HOSTS="+strconv.Itoa(hosts), "TRIBUTARY_SERVICE=loadgen",
		"TRIBUTARY_LOADGEN_ATTR_SCALE="+strconv.Itoa(max(p.attrScale, 1)))...)
}

// waitLoadgen waits for the load generator to end and reads what it sent from its summary line.
func waitLoadgen(s *service) (loadResult, error) {
	err := s.cmd.Wait()
	var r loadResult
	if st := s.cmd.ProcessState; st != nil {
		r.cpu = (st.UserTime() + st.SystemTime()).Seconds()
	}
	if err != nil {
		return r, fmt.Errorf("loadgen: %w: %s", err, s.tail())
	}
	log, err := os.ReadFile(s.out.Name())
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(string(log), "\n") {
		if m := sentRE.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "sent ") {
			r.sent, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	return r, nil
}

// cpuMeter measures the CPU used by a set of processes between start and stop, in cores.
type cpuMeter struct {
	pids  map[string]int
	start map[string]float64
	t0    time.Time
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]float64{}, t0: time.Now()}
	for name, pid := range pids {
		m.start[name], _ = cpuSeconds(pid)
	}
	return m
}

// add measures one more process, from its own start: for a process started after the meter.
func (m *cpuMeter) add(name string, pid int) {
	m.pids[name] = pid
	m.start[name] = 0
}

// cores returns each process's average cores used since the meter started.
func (m *cpuMeter) cores() map[string]float64 {
	out := map[string]float64{}
	el := time.Since(m.t0).Seconds()
	for name, pid := range m.pids {
		if v, err := cpuSeconds(pid); err == nil {
			out[name] = (v - m.start[name]) / el
		}
	}
	return out
}

// profileTop fetches a CPU profile of a consumer for secs seconds and returns `go tool pprof -top`
// (the heaviest functions, cumulative).
func (e *Env) profileTop(ctx context.Context, addr string, secs int) (string, error) {
	f, err := os.CreateTemp("", "tributary-bench-*.pprof")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	f.Close()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
	resp, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: %d %v", url, resp.StatusCode, err)
	}
	if err := os.WriteFile(f.Name(), body, 0o600); err != nil {
		return "", err
	}
	flat, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=12", e.Binary, f.Name()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, flat)
	}
	cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=400", e.Binary, f.Name()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, cum)
	}
	// Cumulative shares of the stages and of the garbage collector, from the same profile.
	var picked []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(cum), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 6 {
			continue
		}
		fn := fs[len(fs)-1]
		short := fn
		if i := strings.LastIndex(fn, "/"); i >= 0 {
			short = fn[i+1:]
		}
		for _, want := range profileStages {
			if short == want && !seen[want] {
				seen[want] = true
				picked = append(picked, fmt.Sprintf("%7s  %s", fs[4], want))
			}
		}
	}
	return string(flat) + "\nCumulative share of the consumer's CPU by stage:\n" + strings.Join(picked, "\n") + "\n", nil
}

// profileStages are the functions whose cumulative CPU share the report lists.
var profileStages = []string{
	"consumer.(*Worker).add", "schemas.(*Codec).DecodeEvent", "schemas.(*Codec).DecodeMetric", "consumer.(*Worker).flush",
	"consumer.(*ClickHouseStore).Write", "consumer.(*Worker).rollUp", "consumer.(*ClickHouseStore).WriteWindows",
	"kgo.(*Client).PollRecords", "runtime.gcBgMarkWorker", "runtime.mallocgc",
}
