package bench

import (
	"context"
	"fmt"
	"time"
)

// runScaling: the load generator unthrottled for a fixed time into 1, 2 and 4 partitions with as
// many consumer processes, and into 4 partitions and one consumer over a database already holding
// 1M and then 10M rows; the figure is raw rows stored per second from a quarter into the run to
// its end (the pipeline's saturated throughput).
func runScaling(ctx context.Context, e *Env, s *Section) error {
	d := pick(e, 20*time.Second, 4*time.Second)
	const offered = 2000000 // more than the generator can send: saturation
	table := "| setup | stored rows/s | generator sent/s | CPU cores used |\n|---|---|---|---|\n"
	var rates []float64
	for _, n := range []int{1, 2, 4} {
		p, err := newPipe(ctx, e, int32(n), n, false)
		if err != nil {
			return err
		}
		st, err := p.step(ctx, offered, d, 50, false)
		if err != nil {
			return err
		}
		e.logf("scaling %d partitions/consumers: stored %.0f/s, sent %.0f/s, cores %s", n, st.storedRate, st.achieved, st.coresText())
		rates = append(rates, st.storedRate)
		table += fmt.Sprintf("| %d partitions, %d consumers | %s | %s | %s |\n", n, n, thousands(int64(st.storedRate)), thousands(int64(st.achieved)), st.coresText())
		e.cleanup()
	}
	s.Figures = append(s.Figures,
		compare("2 partitions, 2 consumers", "rows/s", rates[1:2], "1 partition, 1 consumer", rates[0:1]),
		compare("4 partitions, 4 consumers", "rows/s", rates[2:3], "1 partition, 1 consumer", rates[0:1]))

	small, large := pick(e, 1000000, 10000), pick(e, 10000000, 100000)
	var stored []float64
	for _, pre := range []int{small, large} {
		p, err := newPipe(ctx, e, 4, 1, false)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := prefill(ctx, p, pre); err != nil {
			return err
		}
		e.logf("prefilled %d rows in %v", pre, time.Since(t0).Round(time.Second))
		st, err := p.step(ctx, offered, d, 50, false)
		if err != nil {
			return err
		}
		e.logf("with %d rows stored: stored %.0f/s, sent %.0f/s, cores %s", pre, st.storedRate, st.achieved, st.coresText())
		stored = append(stored, st.storedRate)
		table += fmt.Sprintf("| 4 partitions, 1 consumer, %s rows already stored | %s | %s | %s |\n", thousands(int64(pre)),
			thousands(int64(st.storedRate)), thousands(int64(st.achieved)), st.coresText())
		e.cleanup()
	}
	s.Figures = append(s.Figures, compare(fmt.Sprintf("%s rows already stored", thousands(int64(large))), "rows/s", stored[1:2],
		fmt.Sprintf("%s rows already stored", thousands(int64(small))), stored[0:1]))
	s.Notes = append(s.Notes, fmt.Sprintf("Each run offers more than the generator can send (it sends as fast as it can for %v) and "+
		"measures raw rows stored per second from a quarter into the run to its end. Rows already stored are made by ClickHouse "+
		"(`INSERT ... SELECT FROM numbers`, half events, half metrics, with their indexes) before the run.", d), table,
		"On two cores the processes compete for the same CPU: more consumers add parallelism only where a component waits "+
			"rather than computes. The CPU column says who used the cores.")
	return nil
}

// prefill stores n rows (half events, half metrics) made by ClickHouse itself, spread over the
// last day.
func prefill(ctx context.Context, p *pipe, n int) error {
	db := p.ch.Database
	stmts := []string{
		fmt.Sprintf(`INSERT INTO %s.events (tenant, event_id, trace_id, span_id, type, name, timestamp, timestamp_us, attributes, attr_keys, attr_values, service, host, ingested_at)
SELECT '', concat('pre-', toString(number)), concat('pretrace-', toString(intDiv(number, 8))), '', ['node_started','node_finished','node_failed'][number %% 3 + 1],
 'prefill', toDateTime(toUInt32(now()) - 86400 + intDiv(number * 86400, %d)), (toUInt32(now()) - 86400 + intDiv(number * 86400, %d)) * 1000000,
 concat('{"node_id":"node_', toString(number %% 20), '"}'), ['node_id', 'region'], [concat('node_', toString(number %% 20)), 'eu-west'], 'prefill', 'h', now()
FROM numbers(%d)`, db, n/2, n/2, n/2),
		fmt.Sprintf(`INSERT INTO %s.metrics (tenant, metric_id, trace_id, name, value, unit, aggregation_type, timestamp, timestamp_us, attributes, attr_keys, attr_values, service, host, ingested_at)
SELECT '', concat('prem-', toString(number)), '', 'cpu_percent', number %% 100, 'percent', 'gauge', toDateTime(toUInt32(now()) - 86400 + intDiv(number * 86400, %d)),
 (toUInt32(now()) - 86400 + intDiv(number * 86400, %d)) * 1000000, concat('{"host":"h', toString(number %% 32), '"}'), ['host'], [concat('h', toString(number %% 32))], 'prefill', 'h', now()
FROM numbers(%d)`, db, n/2, n/2, n/2),
	}
	for _, st := range stmts {
		if err := p.conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("prefill: %w", err)
		}
	}
	settle(ctx, p.conn)
	return nil
}
