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

// search finds the highest sustained rate within 5%: steps rise by half from start until one is
// not sustained (or fall by a third until one is), then bisection between the highest sustained
// and the lowest not sustained until they are within 5% of each other. After each step the lag
// drains to 0. top is the highest sustained step (nil if none was), fail the lowest failed one.
func (p *pipe) search(ctx context.Context, start int, d time.Duration, label string) (steps []stepResult, top, fail *stepResult, err error) {
	try := func(rate int, profile bool) (stepResult, error) {
		st, err := p.step(ctx, rate, d, 50, profile)
		if err != nil {
			return st, err
		}
		p.e.logf("e2e%s %d/s: achieved %.0f/s, max lag %d, consumer %.0f MiB, cores %s, pass %v", label, rate, st.achieved, st.maxLag, st.consumerMB, st.coresText(), st.pass)
		steps = append(steps, st)
		return st, p.drain(ctx, 2*time.Minute)
	}
	maxSteps := pick(p.e, 12, 2) // a short run checks the harness, not the rate
	lo, hi := 0, 0               // highest sustained, lowest not sustained
	var loSt, hiSt stepResult
	for rate := start; hi == 0 || lo == 0; {
		st, err := try(rate, true)
		if err != nil {
			return steps, nil, nil, err
		}
		if st.pass {
			lo, loSt = rate, st
			if hi == 0 {
				rate += rate / 2
			}
		} else {
			hi, hiSt = rate, st
			if lo == 0 {
				rate -= rate / 3
			}
		}
		if rate < 1000 || rate > 2000000 || (lo != 0 && hi != 0) || len(steps) >= maxSteps {
			break
		}
	}
	for lo > 0 && hi > 0 && float64(hi-lo) > 0.05*float64(hi) && len(steps) < maxSteps {
		mid := (lo + hi) / 2
		st, err := try(mid, false)
		if err != nil {
			return steps, nil, nil, err
		}
		if st.pass {
			lo, loSt = mid, st
		} else {
			hi, hiSt = mid, st
		}
	}
	if lo > 0 {
		top = &loSt
	}
	if hi > 0 {
		fail = &hiSt
	}
	return steps, top, fail, nil
}

// runEndToEnd: the load generator (its own process, through the SDK) into 4 partitions read by
// one consumer process (default settings), the query service running; a rate is sustained when
// the generator keeps it and the consumer lag stays under 3 s of records; the highest one is
// searched to within 5%. Then freshness at 10%, 50% and 90% of it, each process's memory, and
// the sustained rate again with each record's attributes twice and four times over.
func runEndToEnd(ctx context.Context, e *Env, s *Section) error {
	p, err := newPipe(ctx, e, 4, 1, true)
	if err != nil {
		return err
	}
	d := pick(e, 20*time.Second, 4*time.Second)
	steps, top, fail, err := p.search(ctx, pick(e, 100000, 5000), d, "")
	if err != nil {
		return err
	}
	if e.Short && top == nil && fail != nil {
		top = fail // the harness keeps working on a machine too busy for even 5,000 records/s
	}
	table := "| offered records/s | achieved | max lag, second half | CPU cores used | consumer RSS | sustained |\n|---|---|---|---|---|---|\n"
	for _, st := range steps {
		table += fmt.Sprintf("| %s | %s | %s | %s | %.0f MiB | %v |\n", thousands(int64(st.rate)), thousands(int64(st.achieved)),
			thousands(st.maxLag), st.coresText(), st.consumerMB, st.pass)
	}
	s.Notes = append(s.Notes, fmt.Sprintf("Each step runs `tributary loadgen` (the fleet mix: a quarter events, the rest metrics, 50 hosts, "+
		"100-record batches through the SDK) for %v at the offered rate into 4 partitions, read by one `tributary consumer` process "+
		"with default settings (rollups on) writing to ClickHouse, with `tributary query` up. A rate is sustained when the generator "+
		"achieves 95%% of it and the group's lag over the second half of the step stays within 3 s of records. Steps rise by half "+
		"until one is not sustained, then bisect until the highest sustained and the lowest not sustained are within 5%%. After each "+
		"step the harness waits for the lag to reach 0, so nothing sent is left unstored.", d), table)
	sustained := 0.0
	if top != nil {
		sustained = top.achieved
	}
	f := measure("sustained end-to-end rate", "records/s", []float64{sustained})
	if fail != nil {
		f.Baseline, f.BaselineValue, f.Ratio = "offered rate of the lowest step not sustained", float64(fail.rate), sustained/float64(fail.rate)
	}
	s.Figures = append(s.Figures, f.target("≥ 200,000 records/s", sustained >= 200000))
	if fail != nil {
		s.Notes = append(s.Notes, bottleneck(*fail))
	}
	prof := steps[len(steps)-1]
	for _, st := range steps {
		if st.profile != "" && !st.pass {
			prof = st
			break
		}
	}
	if prof.profile != "" {
		s.Notes = append(s.Notes, fmt.Sprintf("Consumer profile over the step at %s records/s (`go tool pprof -top`, "+
			"flat; then cumulative shares):\n\n```\n%s```", thousands(int64(prof.rate)), trimProfile(prof.profile)))
	}
	if top != nil {
		s.Figures = append(s.Figures, measure("consumer peak RSS at the sustained rate", "MiB", []float64{top.consumerMB}).
			target("≤ 512 MiB", top.consumerMB <= 512),
			measure("load generator (SDK) peak RSS at the sustained rate", "MiB", []float64{top.loadgenMB}))
		for _, who := range []string{"consumer 1", "load generator"} {
			if c := top.cores[who]; c > 0 && top.achieved > 0 {
				s.Figures = append(s.Figures, measure(who+" CPU per record at the sustained rate", "µs", []float64{c / top.achieved * 1e6}))
			}
		}
	}

	// Freshness at 10%, 50% and 90% of the sustained rate.
	ftable := "| generator records/s | share of sustained | freshness p50 | p99 | Kafka alone p50 | p99 | probes |\n|---|---|---|---|---|---|---|\n"
	for _, share := range []float64{0.1, 0.5, 0.9} {
		rate := int(max(sustained*share, 500))
		fr, err := p.freshness(ctx, rate, pick(e, 30*time.Second, 4*time.Second))
		if err != nil {
			return err
		}
		if err := p.drain(ctx, 2*time.Minute); err != nil {
			return err
		}
		pct := fmt.Sprintf("%.0f%%", share*100)
		p50 := compare("freshness p50 at "+pct+" of the sustained rate", "ms", []float64{percentile(fr.pipeline, 0.5)}, "Kafka alone (produce → bare consumer) p50", []float64{percentile(fr.kafka, 0.5)})
		p99 := compare("freshness p99 at "+pct+" of the sustained rate", "ms", []float64{percentile(fr.pipeline, 0.99)}, "Kafka alone p99", []float64{percentile(fr.kafka, 0.99)})
		p50.Runs, p99.Runs = len(fr.pipeline), len(fr.pipeline)
		p50.Spread = [2]float64{percentile(fr.pipeline, 0), percentile(fr.pipeline, 1)}
		p99.Spread = p50.Spread
		if share == 0.5 {
			p50, p99 = p50.target("≤ 300 ms", p50.Value <= 300), p99.target("≤ 1,000 ms", p99.Value <= 1000)
		}
		s.Figures = append(s.Figures, p50, p99)
		ftable += fmt.Sprintf("| %s | %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d |\n", thousands(int64(rate)), pct, p50.Value, p99.Value,
			p50.BaselineValue, p99.BaselineValue, len(fr.pipeline))
	}
	s.Notes = append(s.Notes, "Freshness: with the generator at 10%, 50% and 90% of the sustained rate, the harness records a probe "+
		"event through the SDK every 100 ms and polls the query service (`/v1/events?type=bench_probe`) every 50 ms; freshness is "+
		"the time from `RecordEvent` to the probe's first appearance in an answer (no probe lost). The baseline is the same "+
		"probes' time from `RecordEvent` to a bare franz-go consumer of the events topic: the transport's share. The rest is "+
		"the consumer's batching (a batch is stored `TRIBUTARY_CONSUMER_BATCH_LINGER`, 200 ms, after its first record when "+
		"the writer is idle; while it is busy the batch grows) and the insert.", ftable)
	if kb, err := procStatus(p.query.cmd.Process.Pid, "VmHWM"); err == nil {
		s.Figures = append(s.Figures, measure("query service peak RSS (freshness polling)", "MiB", []float64{float64(kb) / 1024}))
	}
	for _, srv := range []struct{ name, pid string }{{"ClickHouse", "clickhouse/server.pid"}, {"Kafka", "kafka/broker.pid"}} {
		if kb, err := procStatus(e.serverPID(srv.pid), "VmRSS"); err == nil {
			s.Figures = append(s.Figures, measure(srv.name+" server RSS at the end", "MiB", []float64{float64(kb) / 1024}))
		}
	}

	// The record size: the same search with every record's attributes 2 and 4 times over
	// (TRIBUTARY_LOADGEN_ATTR_SCALE), each on fresh topics and a fresh database.
	stable := "| attributes | sustained records/s | steps | consumer CPU per record | consumer RSS |\n|---|---|---|---|---|\n"
	row := func(scale int, top *stepResult, n int) {
		if top == nil {
			stable += fmt.Sprintf("| %d× | none sustained | %d | | |\n", scale, n)
			return
		}
		stable += fmt.Sprintf("| %d× | %s | %d | %.1f µs | %.0f MiB |\n", scale, thousands(int64(top.achieved)), n,
			top.cores["consumer 1"]/max(top.achieved, 1)*1e6, top.consumerMB)
	}
	row(1, top, len(steps))
	e.cleanup() // the 1× pipeline's processes and data
	for _, scale := range []int{2, 4} {
		ps, err := newPipe(ctx, e, 4, 1, false)
		if err != nil {
			return err
		}
		ps.attrScale = scale
		start := int(max(sustained/float64(scale)*1.5, 2000))
		st, stop, _, err := ps.search(ctx, start, pick(e, 15*time.Second, 4*time.Second), fmt.Sprintf(" %d× attributes", scale))
		if err != nil {
			return err
		}
		got := 0.0
		if stop != nil {
			got = stop.achieved
		}
		s.Figures = append(s.Figures, compare(fmt.Sprintf("sustained end-to-end rate, attributes %d×", scale), "records/s", []float64{got},
			"attributes 1×", []float64{max(sustained, 1)}))
		row(scale, stop, len(st))
		e.cleanup()
	}
	s.Notes = append(s.Notes, "Record size: the same search with each record's attributes twice and four times over "+
		"(`TRIBUTARY_LOADGEN_ATTR_SCALE`: copies under other keys, the same values and series), on fresh topics and a fresh "+
		"database each, starting from the 1× rate divided by the scale.", stable)
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
	prefix := unique("probe") + "-" // this run's probes only: an earlier run's are in the answers too
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
				if k := string(r.Key); strings.HasPrefix(k, prefix) {
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
					if !strings.HasPrefix(ev.TraceID, prefix) {
						continue
					}
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
		id := fmt.Sprintf("%s%06d", prefix, i)
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
