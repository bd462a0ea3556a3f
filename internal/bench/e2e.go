package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/producer"
)

// stepResult is one rate of the end-to-end ladder.
type stepResult struct {
	rate       int
	achieved   float64
	maxLag     int64 // over the second half of the step
	cores      map[string]float64
	storedRate float64 // raw rows stored per second, from a quarter into the step to its end
	consumerMB float64 // highest RSS sampled (1 s) of the first consumer
	loadgenMB  float64 // likewise of the load generator
	pass       bool
	profile    string
}

// step runs the load generator at rate for d while sampling lag, CPU and memory.
func (p *pipe) step(ctx context.Context, rate int, d time.Duration, hosts int, profile bool) (stepResult, error) {
	r := stepResult{rate: rate}
	pids := p.e.serverPIDs()
	for i, c := range p.consumers {
		pids[fmt.Sprintf("consumer %d", i+1)] = c.cmd.Process.Pid
	}
	meter := newCPUMeter(pids)
	t0 := time.Now()
	lg, err := p.startLoadgen(rate, d, hosts)
	if err != nil {
		return r, err
	}
	var wg sync.WaitGroup
	if profile && len(p.consumers) > 0 {
		secs := max(1, int((d-3*time.Second)/time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(2 * time.Second)
			top, err := p.e.profileTop(ctx, p.consumers[0].addr, secs)
			if err != nil {
				top = "profile failed: " + err.Error()
			}
			r.profile = top
		}()
	}
	exited := make(chan struct{})
	var res loadResult
	var lerr error
	go func() { res, lerr = waitLoadgen(lg); close(exited) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var first time.Time
	var firstN uint64
loop:
	for {
		select {
		case <-exited:
			break loop
		case <-tick.C:
			if l, err := p.lag(ctx); err == nil && time.Since(t0) > d/2 {
				r.maxLag = max(r.maxLag, l)
			}
			if n, err := p.stored(ctx); err == nil && time.Since(t0) > d/4 {
				if first.IsZero() {
					first, firstN = time.Now(), n
				} else {
					r.storedRate = float64(n-firstN) / time.Since(first).Seconds()
				}
			}
			if kb, err := procStatus(p.consumers[0].cmd.Process.Pid, "VmRSS"); err == nil {
				r.consumerMB = max(r.consumerMB, float64(kb)/1024)
			}
			// Sampled: the exited child's rusage counts the harness's memory it was forked from.
			if kb, err := procStatus(lg.cmd.Process.Pid, "VmRSS"); err == nil {
				r.loadgenMB = max(r.loadgenMB, float64(kb)/1024)
			}
		}
	}
	wall := time.Since(t0).Seconds()
	r.cores = meter.cores()
	r.cores["load generator"] = res.cpu / wall
	wg.Wait()
	if lerr != nil {
		return r, lerr
	}
	r.achieved = float64(res.sent) / d.Seconds()
	r.pass = r.achieved >= 0.95*float64(rate) && r.maxLag <= int64(3*rate)
	return r, nil
}

func (r stepResult) coresText() string { return coresText(r.cores) }

// coresText lists the cores each process used, largest first, with their total.
func coresText(cores map[string]float64) string {
	names := make([]string, 0, len(cores))
	total := 0.0
	for n, c := range cores {
		names = append(names, n)
		total += c
	}
	sort.Slice(names, func(i, j int) bool { return cores[names[i]] > cores[names[j]] })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.2f", n, cores[n])
	}
	return fmt.Sprintf("%.2f of %d (%s)", total, runtime.NumCPU(), strings.Join(parts, ", "))
}

// runEndToEnd: the load generator (its own process, through the SDK) at rising rates into 4
// partitions read by one consumer process (default settings), the query service running; a rate
// is sustained when the generator keeps it and the consumer lag stays under 3 s of records. Then
// freshness at half the highest sustained rate, and each process's memory.
func runEndToEnd(ctx context.Context, e *Env, s *Section) error {
	p, err := newPipe(ctx, e, 4, 1, true)
	if err != nil {
		return err
	}
	rates := pick(e, []int{50000, 100000, 150000, 200000, 250000}, []int{5000})
	d := pick(e, 20*time.Second, 4*time.Second)
	var steps []stepResult
	var top *stepResult
	for _, rate := range rates {
		st, err := p.step(ctx, rate, d, 50, true)
		if err != nil {
			return err
		}
		steps = append(steps, st)
		e.logf("e2e %d/s: achieved %.0f/s, max lag %d, consumer %.0f MiB, cores %s, pass %v", rate, st.achieved, st.maxLag, st.consumerMB, st.coresText(), st.pass)
		if err := p.drain(ctx, 2*time.Minute); err != nil {
			return err
		}
		if !st.pass {
			break
		}
		top = &steps[len(steps)-1]
	}
	table := "| offered records/s | achieved | max lag, second half | CPU cores used | consumer RSS | sustained |\n|---|---|---|---|---|---|\n"
	for _, st := range steps {
		table += fmt.Sprintf("| %s | %s | %s | %s | %.0f MiB | %v |\n", thousands(int64(st.rate)), thousands(int64(st.achieved)),
			thousands(st.maxLag), st.coresText(), st.consumerMB, st.pass)
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Each step runs `tributary loadgen` (the fleet mix: a quarter events, the rest metrics, 50 hosts, "+
		"100-record batches through the SDK) for %v at the offered rate into 4 partitions, read by one `tributary consumer` process "+
		"with default settings (rollups on) writing to ClickHouse, with `tributary query` up. A rate is sustained when the generator "+
		"achieves 95%% of it and the group's lag over the second half of the step stays within 3 s of records (the consumer "+
		"commits after each write, every 1 s or 50,000 records). After each step the harness waits for the lag to reach 0, so "+
		"nothing sent is left unstored.", d), table)
	last := steps[len(steps)-1]
	sustained := 0.0
	if top != nil {
		sustained = top.achieved
	}
	f := measure("sustained end-to-end rate", "records/s", []float64{sustained})
	f.Baseline, f.BaselineValue, f.Ratio = "offered rate of the first step that was not sustained", float64(last.rate), sustained/float64(last.rate)
	if last.pass {
		f.Baseline = "highest offered rate"
	}
	s.Figures = append(s.Figures, f.target("≥ 150,000 records/s", sustained >= 150000))
	s.Notes = append(s.Notes, bottleneck(last), fmt.Sprintf("Consumer profile over the step at %s records/s (`go tool pprof -top`, "+
		"flat; then cumulative shares):\n\n```\n%s```", thousands(int64(last.rate)), trimProfile(last.profile)))
	if top != nil {
		s.Figures = append(s.Figures, measure("consumer peak RSS at the sustained rate", "MiB", []float64{top.consumerMB}).
			target("≤ 512 MiB", top.consumerMB <= 512),
			measure("load generator (SDK) peak RSS at the sustained rate", "MiB", []float64{top.loadgenMB}))
	}

	// Freshness at half the sustained rate.
	half := int(max(sustained/2, 1000))
	fr, err := p.freshness(ctx, half, pick(e, 30*time.Second, 4*time.Second))
	if err != nil {
		return err
	}
	p50 := compare("freshness p50", "ms", []float64{percentile(fr.pipeline, 0.5)}, "Kafka alone (produce → bare consumer) p50", []float64{percentile(fr.kafka, 0.5)})
	p99 := compare("freshness p99", "ms", []float64{percentile(fr.pipeline, 0.99)}, "Kafka alone p99", []float64{percentile(fr.kafka, 0.99)})
	p50.Runs, p99.Runs = len(fr.pipeline), len(fr.pipeline)
	p50.Spread = [2]float64{percentile(fr.pipeline, 0), percentile(fr.pipeline, 1)}
	p99.Spread = p50.Spread
	s.Figures = append(s.Figures, p50, p99.target("≤ 2,000 ms", p99.Value <= 2000))
	s.Notes = append(s.Notes, fmt.Sprintf("Freshness: with the generator at %s records/s (half the sustained rate), the harness records a probe "+
		"event through the SDK every 100 ms and polls the query service (`/v1/events?type=bench_probe`) every 50 ms; freshness is "+
		"the time from `RecordEvent` to the probe's first appearance in an answer (%d probes, none lost). The baseline is the same "+
		"probes' time from `RecordEvent` to a bare franz-go consumer of the events topic: the transport's share. Most of the "+
		"rest is the consumer's batch interval (1 s) and the insert.", thousands(int64(half)), len(fr.pipeline)))
	if kb, err := procStatus(p.query.cmd.Process.Pid, "VmHWM"); err == nil {
		s.Figures = append(s.Figures, measure("query service peak RSS (freshness polling)", "MiB", []float64{float64(kb) / 1024}))
	}
	for _, srv := range []struct{ name, pid string }{{"ClickHouse", "clickhouse/server.pid"}, {"Kafka", "kafka/broker.pid"}} {
		if kb, err := procStatus(e.serverPID(srv.pid), "VmRSS"); err == nil {
			s.Figures = append(s.Figures, measure(srv.name+" server RSS at the end", "MiB", []float64{float64(kb) / 1024}))
		}
	}
	return nil
}

func trimProfile(p string) string {
	lines := strings.Split(p, "\n")
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

type freshness struct{ pipeline, kafka []float64 } // milliseconds

// freshness runs the generator at rate for d and measures probes (see runEndToEnd).
func (p *pipe) freshness(ctx context.Context, rate int, d time.Duration) (freshness, error) {
	var fr freshness
	// The bare consumer starts at the end of the events topic.
	kc, err := kgo.NewClient(kgo.SeedBrokers(p.k.Brokers...), kgo.ConsumeTopics(p.k.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return fr, err
	}
	defer kc.Close()
	cfg := producer.DefaultConfig()
	cfg.Kafka = p.k
	cfg.Service, cfg.Host = "bench-probe", "bench"
	sdk, err := producer.New(cfg)
	if err != nil {
		return fr, err
	}
	defer sdk.Close(context.Background())

	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	seenKafka := map[string]time.Time{}
	seenQuery := map[string]time.Time{}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // bare Kafka consumer
		defer wg.Done()
		for runCtx.Err() == nil {
			fs := kc.PollFetches(runCtx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if k := string(r.Key); strings.HasPrefix(k, "probe-") {
					mu.Lock()
					if _, ok := seenKafka[k]; !ok {
						seenKafka[k] = now
					}
					mu.Unlock()
				}
			})
		}
	}()
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	go func() { // the query service
		defer wg.Done()
		for runCtx.Err() == nil {
			u := p.queryURL + "/v1/events?type=bench_probe&limit=10000&start=" + url.QueryEscape(since)
			if resp, err := http.Get(u); err == nil {
				var body struct {
					Events []struct {
						TraceID string `json:"trace_id"`
					} `json:"events"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				now := time.Now()
				mu.Lock()
				for _, ev := range body.Events {
					if _, ok := seenQuery[ev.TraceID]; !ok {
						seenQuery[ev.TraceID] = now
					}
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second) // the bare consumer has its partitions
	lg, err := p.startLoadgen(rate, d, 50)
	if err != nil {
		return fr, err
	}
	stop := time.Now().Add(d)
	for i := 0; time.Now().Before(stop); i++ {
		id := fmt.Sprintf("probe-%06d", i)
		mu.Lock()
		sentAt[id] = time.Now()
		mu.Unlock()
		if err := sdk.RecordEvent(ctx, producer.Event{TraceID: id, Type: "bench_probe", Name: id, Timestamp: time.Now()}); err != nil {
			return fr, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := waitLoadgen(lg); err != nil {
		return fr, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(seenQuery) >= len(sentAt) && len(seenKafka) >= len(sentAt)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			return fr, fmt.Errorf("freshness: %d probes sent, %d seen in Kafka, %d in the query service after 30 s", len(sentAt), len(seenKafka), len(seenQuery))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for id, t0 := range sentAt {
		fr.pipeline = append(fr.pipeline, float64(seenQuery[id].Sub(t0).Microseconds())/1000)
		fr.kafka = append(fr.kafka, float64(seenKafka[id].Sub(t0).Microseconds())/1000)
	}
	return fr, nil
}

// bottleneck says where the time went in a step, from the processes' CPU use.
func bottleneck(st stepResult) string {
	total, top, topName := 0.0, 0.0, ""
	for n, c := range st.cores {
		total += c
		if c > top {
			top, topName = c, n
		}
	}
	cpus := float64(runtime.NumCPU())
	verdict := "The machine's CPU was not saturated, so the limit was a wait (an insert's round trip, a fetch), not computation."
	if total >= 0.9*cpus {
		verdict = fmt.Sprintf("The bottleneck is the machine's CPU: the processes used %.2f of its %.0f cores, the largest share "+
			"%s's (%.2f cores). Every component shares these cores, so no single one can be scaled past it here; the profile "+
			"below shows where the consumer's share goes.", total, cpus, topName, top)
	}
	return fmt.Sprintf("Where the time goes at %s records/s offered (the last step; CPU time per process over the step): %s. %s",
		thousands(int64(st.rate)), st.coresText(), verdict)
}
