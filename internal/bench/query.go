package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/loadgen"
)

// startQuery runs `tributary query` on database with the read-only account and returns its URL.
func (e *Env) startQuery(ctx context.Context, ch chdb.Config) (*service, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	s, err := e.start("query", "TRIBUTARY_CLICKHOUSE_ADDR="+e.ClickHouseAddr, "TRIBUTARY_CLICKHOUSE_DATABASE="+ch.Database,
		"TRIBUTARY_CLICKHOUSE_USER=tributary_ro", "TRIBUTARY_CLICKHOUSE_PASSWORD=tributary_ro", "TRIBUTARY_QUERY_LISTEN="+addr,
		"TRIBUTARY_LOG_LEVEL=warn")
	if err != nil {
		return nil, "", err
	}
	s.addr = addr
	if err := waitHTTP(ctx, "http://"+addr+"/readyz", s); err != nil {
		return nil, "", err
	}
	return s, "http://" + addr, nil
}

// get fetches u and decodes the JSON answer into v (if not nil), returning the request's time.
func get(ctx context.Context, u string, v any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	el := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return 0, fmt.Errorf("GET %s: %w", u, err)
		}
	}
	return el, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latency is the figure of a request kind's p95 against its baseline's p95, with the kind's runs
// and fastest and slowest request.
func latency(name string, samples []float64, baseline string, base []float64) Figure {
	f := compare(name+", p95", "ms", []float64{percentile(samples, 0.95)}, baseline+", p95", []float64{percentile(base, 0.95)})
	f.Runs, f.Spread = len(samples), [2]float64{percentile(samples, 0), percentile(samples, 1)}
	return f
}

// runQuery: the query issue's benchmark. The load generator's fleet (32 hosts) makes 10M events
// and 10M metric points over 24 hours, stored as a worker stores them (raw rows, indexes,
// rollup windows); then the query service answers over HTTP.
func runQuery(ctx context.Context, e *Env, s *Section) error {
	nEvents, nMetrics := pick(e, 10000000, 100000), pick(e, 10000000, 100000)
	ch, conn, err := e.database(ctx)
	if err != nil {
		return err
	}
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-24 * time.Hour)
	t0 := time.Now()
	lastLog := time.Now()
	traces, err := load(ctx, conn, ch.Database, loadgen.NewFleet(32, 11), nEvents, nMetrics, start, 24*time.Hour,
		[]time.Duration{time.Minute, time.Hour}, func(done int) {
			if time.Since(lastLog) > 10*time.Second {
				e.logf("query: loaded %d of %d records", done, nEvents+nMetrics)
				lastLog = time.Now()
			}
		})
	if err != nil {
		return err
	}
	loadTime := time.Since(t0)
	t1 := time.Now()
	settleFor(ctx, conn, 3*time.Minute) // the load's background merges, which would compete with the queries
	settled := time.Since(t1)
	e.logf("query: loaded %d events and %d metrics in %v", nEvents, nMetrics, loadTime.Round(time.Second))
	_, base, err := e.startQuery(ctx, ch)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n, nBase := pick(e, 40, 5), pick(e, 5, 2)
	q := func(path string, v url.Values) string { return base + path + "?" + v.Encode() }
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	types := []string{"node_started", "node_finished", "node_failed"}
	db := ch.Database

	// One untimed request of each kind first: the service's connections and ClickHouse's caches
	// warm, as in a running service.
	for _, u := range []string{
		q("/v1/events", url.Values{"type": {types[0]}, "start": {rfc(start)}, "end": {rfc(start.Add(time.Hour))}, "limit": {"100"}}),
		base + "/v1/traces/" + url.PathEscape(traces[0]),
		q("/v1/events", url.Values{"attr.node_id": {"node_00"}, "order": {"desc"}, "limit": {"100"}}),
		q("/v1/aggregate", url.Values{"name": {"http_request_duration_seconds"}, "bucket": {"1m"}, "aggregates": {"p95"}, "group_by": {"host"},
			"start": {rfc(start)}, "end": {rfc(end)}, "source": {"rollups"}}),
	} {
		if _, err := get(ctx, u, nil); err != nil {
			return err
		}
	}
	// 1. type + one-hour range; baseline: the same SQL straight from clickhouse-go (no service, no HTTP).
	var typeHTTP, typeSQL []float64
	for range n {
		typ, h := types[rng.IntN(len(types))], start.Add(time.Duration(rng.IntN(23))*time.Hour)
		var ans struct{ Count int }
		d, err := get(ctx, q("/v1/events", url.Values{"type": {typ}, "start": {rfc(h)}, "end": {rfc(h.Add(time.Hour))}, "limit": {"100"}}), &ans)
		if err != nil {
			return err
		}
		if ans.Count != 100 {
			return fmt.Errorf("type %s in %v: %d events, want a full page of 100", typ, h, ans.Count)
		}
		typeHTTP = append(typeHTTP, ms(d))
		t1 := time.Now()
		rows, err := conn.Query(ctx, "SELECT event_id, trace_id, span_id, type, name, timestamp_us, attributes, tenant, service, host FROM "+db+
			".events FINAL WHERE type IN (?) AND timestamp >= toDateTime(?) AND timestamp_us >= ? AND timestamp <= toDateTime(?) AND timestamp_us < ? "+
			"ORDER BY timestamp_us ASC, event_id ASC LIMIT ?, ?", typ, uint32(h.Unix()), uint64(h.UnixMicro()), uint32(h.Add(time.Hour).Unix()),
			uint64(h.Add(time.Hour).UnixMicro()), 0, 100)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		typeSQL = append(typeSQL, ms(time.Since(t1)))
	}
	f := latency("events by type + 1 h range", typeHTTP, "the same SQL from clickhouse-go", typeSQL)
	s.Figures = append(s.Figures, f.target("p95 ≤ 100 ms", f.Value <= 100))

	// 2. a trace's events; baseline: the same filter on events, which is not ordered by trace.
	var traceHTTP, traceScan []float64
	for i := range n {
		tr := traces[rng.IntN(len(traces))]
		var ans struct{ Count int }
		d, err := get(ctx, base+"/v1/traces/"+url.PathEscape(tr), &ans)
		if err != nil {
			return err
		}
		if ans.Count == 0 {
			return fmt.Errorf("trace %s: no events", tr)
		}
		traceHTTP = append(traceHTTP, ms(d))
		if i < nBase {
			t1 := time.Now()
			var c uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM (SELECT event_id FROM "+db+".events FINAL WHERE trace_id = ? ORDER BY timestamp_us LIMIT 10000)", tr).Scan(&c); err != nil {
				return err
			}
			traceScan = append(traceScan, ms(time.Since(t1)))
		}
	}
	f = latency("a trace's events", traceHTTP, "events without the trace index (SQL)", traceScan)
	s.Figures = append(s.Figures, f.target("p95 ≤ 100 ms", f.Value <= 100))

	// 3. by attribute alone (node_id: 20 values), newest first; baseline: events without the index.
	var attrHTTP, attrScan []float64
	for i := range n {
		node := fmt.Sprintf("node_%02d", rng.IntN(20))
		var ans struct{ Count int }
		d, err := get(ctx, q("/v1/events", url.Values{"attr.node_id": {node}, "order": {"desc"}, "limit": {"100"}}), &ans)
		if err != nil {
			return err
		}
		if ans.Count != 100 {
			return fmt.Errorf("node_id %s: %d events, want a full page of 100", node, ans.Count)
		}
		attrHTTP = append(attrHTTP, ms(d))
		if i < nBase {
			t1 := time.Now()
			var c uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM (SELECT event_id FROM "+db+".events FINAL WHERE has(attr_keys, 'node_id') AND "+
				"attr_values[indexOf(attr_keys, 'node_id')] = ? ORDER BY timestamp_us DESC, event_id DESC LIMIT 100)", node).Scan(&c); err != nil {
				return err
			}
			attrScan = append(attrScan, ms(time.Since(t1)))
		}
	}
	f = latency("events by attribute", attrHTTP, "events without the attribute index (SQL)", attrScan)
	s.Figures = append(s.Figures, f.target("p95 ≤ 100 ms", f.Value <= 100))

	// 4. 24 h of 1-minute p95 of a histogram by host (32 values): rollups vs raw rows, alternating.
	var roll, raw []float64
	for i := range pick(e, 20, 3) {
		for _, src := range []string{"rollups", "raw"} {
			if src == "raw" && i%2 == 1 {
				continue
			}
			var ans struct {
				Source string
				Series []struct {
					Points []struct {
						Values map[string]float64
					}
				}
			}
			d, err := get(ctx, q("/v1/aggregate", url.Values{"name": {"http_request_duration_seconds"}, "bucket": {"1m"}, "aggregates": {"p95"}, "group_by": {"host"},
				"start": {rfc(start)}, "end": {rfc(end)}, "source": {src}}), &ans)
			if err != nil {
				return err
			}
			if ans.Source != src || len(ans.Series) != 32 {
				return fmt.Errorf("aggregate from %s: answered from %q with %d series, want 32", src, ans.Source, len(ans.Series))
			}
			for _, ser := range ans.Series {
				for _, pt := range ser.Points {
					if _, ok := pt.Values["p95"]; !ok {
						return fmt.Errorf("aggregate from %s: a point without p95", src)
					}
				}
			}
			if src == "rollups" {
				roll = append(roll, ms(d))
			} else {
				raw = append(raw, ms(d))
			}
		}
	}
	f = latency("24 h, 1 m p95 by host (32) from rollups", roll, "the same from raw rows", raw)
	s.Figures = append(s.Figures, f.target("p95 ≤ 150 ms and ratio ≤ 0.20 (5x faster)", f.Value <= 150 && f.Ratio <= 0.2))

	var evRows, idxRows uint64
	var evBytes, idxBytes, trBytes uint64
	_ = conn.QueryRow(ctx, "SELECT sumIf(rows, table = 'events'), sumIf(rows, table = 'events_attr_index'), sumIf(bytes_on_disk, table = 'events'), "+
		"sumIf(bytes_on_disk, table = 'events_attr_index'), sumIf(bytes_on_disk, table = 'events_trace_index') FROM system.parts WHERE database = ? AND active", db).
		Scan(&evRows, &idxRows, &evBytes, &idxBytes, &trBytes)
	s.Notes = append(s.Notes, fmt.Sprintf("Data: the load generator's fleet (32 hosts; node_id has 20 values, host 32) made %s events and %s "+
		"metric points (a third node durations, a sixth request counters, a sixth request durations by host, a third CPU gauges) spread over 24 hours, stored the way a worker "+
		"stores them (raw rows, the trace and attribute indexes, 1 m and 1 h rollup windows) in %v; ClickHouse's background merges "+
		"of the load then ran for %v more (the harness waits for them, up to 3 minutes). Then `tributary query` (its own "+
		"process, read-only account) answers over HTTP on this machine; times are from request to the whole answer read. "+
		"Per query kind, %d requests with random parameters (a random type and hour; a random trace of the load; a random node_id, "+
		"newest first, limit 100); the p95 is the nearest-rank 95th percentile, the spread the fastest and slowest request. One untimed request of "+
		"each kind goes first (connections and caches warm, as in a running service).",
		thousands(int64(nEvents)), thousands(int64(nMetrics)), loadTime.Round(time.Second), settled.Round(time.Second), n),
		fmt.Sprintf("Baselines: for type + range, the service's SQL sent straight from clickhouse-go (what the service and HTTP "+
			"add); for trace and attribute, the same filter on `events` without the index tables (%d runs each: what the indexes buy). "+
			"The series: `/v1/aggregate?name=http_request_duration_seconds&bucket=1m&aggregates=p95&group_by=host` (a histogram) over 24 hours with "+
			"`source=rollups` (%d runs) and `source=raw` (every other run) alternating; both answers must have 32 series.", nBase, len(roll)),
		fmt.Sprintf("Storage: events %s rows, %.0f MiB on disk; attribute index %s rows, %.0f MiB; trace index %.0f MiB.",
			thousands(int64(evRows)), float64(evBytes)/(1<<20), thousands(int64(idxRows)), float64(idxBytes)/(1<<20), float64(trBytes)/(1<<20)))
	return nil
}
