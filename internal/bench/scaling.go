package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-faster/city"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/schemas"
)

// runScaling: the load generator fills fresh topics of 1, 2 and 4 partitions alone, as fast as it
// can for a fixed time; then as many consumer processes drain them, and the figure is raw rows
// stored per second between 10% and 90% of the backlog. The same with 4 partitions and one
// consumer over a database already holding 1M and then 10M rows. Separating the two sides keeps
// the generator from competing for the CPU it would otherwise share with the pipeline.
func runScaling(ctx context.Context, e *Env, s *Section) error {
	fill := pick(e, 12*time.Second, 3*time.Second)
	table := "| setup | generator alone, records/s | drained rows/s | CPU cores used while draining |\n|---|---|---|---|\n"
	run := func(partitions int32, consumers, pre int) (float64, error) {
		d, err := drainRun(ctx, e, partitions, consumers, pre, fill)
		if err != nil {
			return 0, err
		}
		table += d.row()
		return d.rate, nil
	}
	var rates []float64
	for _, n := range []int{1, 2, 4} {
		r, err := run(int32(n), n, 0)
		if err != nil {
			return err
		}
		rates = append(rates, r)
	}
	s.Figures = append(s.Figures,
		compare("2 partitions, 2 consumers", "rows/s", rates[1:2], "1 partition, 1 consumer", rates[0:1]),
		compare("4 partitions, 4 consumers", "rows/s", rates[2:3], "1 partition, 1 consumer", rates[0:1]))
	small, large := pick(e, 1000000, 10000), pick(e, 10000000, 100000)
	var stored []float64
	for _, pre := range []int{small, large} {
		r, err := run(4, 1, pre)
		if err != nil {
			return err
		}
		stored = append(stored, r)
	}
	sf := compare(fmt.Sprintf("%s rows already stored", thousands(int64(large))), "rows/s", stored[1:2],
		fmt.Sprintf("%s rows already stored", thousands(int64(small))), stored[0:1])
	s.Figures = append(s.Figures, sf.target("ratio ≥ 0.95", sf.Ratio >= 0.95))
	s.Notes = append(s.Notes, fmt.Sprintf("Each run first lets `tributary loadgen` fill fresh topics alone, as fast as it can for %v "+
		"(SDK, fleet mix), then starts the consumer processes (default settings, rollups on) and measures raw rows stored per "+
		"second between 10%% and 90%% of that backlog. Rows already stored are made by ClickHouse (`INSERT ... SELECT FROM "+
		"numbers`, half events, half metrics, with their indexes) before the run, and merged (`OPTIMIZE ... FINAL` of each "+
		"partition) as a long-lived table's would be.", fill), table,
		"All processes share two cores: more consumers add parallelism only where one waits rather than computes (for ClickHouse's "+
			"answer to an insert, for a fetch). The CPU column says who used the cores while draining.")
	return nil
}

// drained is one drain measurement: the setup, the generator's rate alone, the rows drained per
// second and who used the cores meanwhile.
type drained struct {
	setup     string
	generator float64
	rate      float64
	cores     string
}

func (d drained) row() string {
	return fmt.Sprintf("| %s | %s | %s | %s |\n", d.setup, thousands(int64(d.generator)), thousands(int64(d.rate)), d.cores)
}

// drainRun lets the load generator fill fresh topics of the given partitions alone for fill (pre
// rows already stored first, if any), then starts consumers consumer processes and measures raw
// rows stored per second between 10% and 90% of the backlog. What it made is removed after.
func drainRun(ctx context.Context, e *Env, partitions int32, consumers, pre int, fill time.Duration) (drained, error) {
	defer e.cleanup()
	var d drained
	p, err := newPipe(ctx, e, partitions, 0, false)
	if err != nil {
		return d, err
	}
	if pre > 0 {
		t0 := time.Now()
		if err := prefill(ctx, p, pre); err != nil {
			return d, err
		}
		e.logf("prefilled %d rows in %v", pre, time.Since(t0).Round(time.Second))
	}
	lg, err := p.startLoadgen(5000000, fill, 50) // more than it can send: as fast as it can
	if err != nil {
		return d, err
	}
	res, err := waitLoadgen(lg)
	if err != nil {
		return d, err
	}
	base, err := p.stored(ctx)
	if err != nil {
		return d, err
	}
	// Sampling starts before the consumers do: the first of several drains while the others join.
	meter := newCPUMeter(e.serverPIDs())
	type rate struct {
		v   float64
		err error
	}
	sampled := make(chan rate, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		v, err := p.drainRate(sctx, base, uint64(res.sent))
		sampled <- rate{v, err}
	}()
	if err := p.addConsumers(ctx, consumers); err != nil {
		return d, err
	}
	for i, c := range p.consumers {
		meter.add(fmt.Sprintf("consumer %d", i+1), c.cmd.Process.Pid) // all its CPU is draining
	}
	r := <-sampled
	if r.err != nil {
		return d, r.err
	}
	d.rate, d.cores = r.v, coresText(meter.cores())
	d.generator = float64(res.sent) / fill.Seconds()
	d.setup = fmt.Sprintf("%d partitions, %d consumers", partitions, consumers)
	if pre > 0 {
		d.setup += fmt.Sprintf(", %s rows already stored", thousands(int64(pre)))
	}
	e.logf("drain %s: generator %.0f/s, drained %.0f rows/s, cores %s", d.setup, d.generator, d.rate, d.cores)
	return d, nil
}

// runCluster: the scaling scenario's drain measurement on one server and one broker, and on the
// local clusters (ClickHouse 2 shards x 2 replicas with ZooKeeper, Kafka 3 brokers with topics of
// replication factor 3), with 1 and 4 consumers. Everything shares the same two cores, so the
// cluster's figure is its overhead (replication, the Distributed table's synchronous insert to
// both shards, seven servers instead of two), not the speed-up more machines would give.
func runCluster(ctx context.Context, e *Env, s *Section) error {
	stop, err := e.startCluster()
	if err != nil {
		return err
	}
	defer stop()
	ce, err := e.onCluster()
	if err != nil {
		return err
	}
	defer ce.cleanup() // before stop
	fill := pick(e, 12*time.Second, 3*time.Second)
	table := "| side | setup | generator alone, records/s | drained rows/s | CPU cores used while draining |\n|---|---|---|---|---|\n"
	rates := map[string]float64{}
	for _, side := range []struct {
		name string
		env  *Env
	}{{"one server, one broker", e}, {"cluster", ce}} {
		for _, consumers := range []int{1, 4} {
			d, err := drainRun(ctx, side.env, 4, consumers, 0, fill)
			if err != nil {
				return fmt.Errorf("%s: %w", side.name, err)
			}
			rates[fmt.Sprintf("%s/%d", side.name, consumers)] = d.rate
			table += "| " + side.name + " " + d.row()
		}
	}
	// The write path: the Distributed tables (the worker's) against each shard's local tables.
	n, runs := pick(ce, 100000, 10000), pick(ce, 3, 1)
	es, ms, err := fleetRecords(loadgen.NewFleet(50, 7), n/2, n/2, time.Now().UTC().Add(-10*time.Minute), 10*time.Minute)
	if err != nil {
		return err
	}
	var distR, directR []float64
	for range runs {
		d, l, err := writePaths(ctx, ce, es, ms)
		ce.cleanup()
		if err != nil {
			return fmt.Errorf("cluster write paths: %w", err)
		}
		e.logf("cluster write paths: Distributed %.0f rows/s, shards' local tables %.0f rows/s", d, l)
		distR, directR = append(distR, d), append(directR, l)
	}
	one := func(k string) []float64 { return []float64{rates[k]} }
	s.Figures = append(s.Figures,
		compare("cluster insert through the Distributed tables", "rows/s", distR, "the same rows straight to each shard's local tables", directR),
		compare("cluster, 4 partitions, 1 consumer", "rows/s", one("cluster/1"), "one server, 4 partitions, 1 consumer", one("one server, one broker/1")),
		compare("cluster, 4 partitions, 4 consumers", "rows/s", one("cluster/4"), "one server, 4 partitions, 4 consumers", one("one server, one broker/4")),
		compare("cluster, 4 consumers", "rows/s", one("cluster/4"), "cluster, 1 consumer", one("cluster/1")))
	s.Notes = append(s.Notes, fmt.Sprintf("As in the scaling scenario: `tributary loadgen` fills fresh topics of 4 partitions alone for %v, "+
		"then the consumer processes (default settings, rollups on; on the cluster `TRIBUTARY_CLICKHOUSE_CLUSTER`, inserts into the "+
		"`Distributed` tables waiting for every shard) drain them, measured between 10%% and 90%% of the backlog. The cluster is "+
		"`deploy/cluster.sh`'s: ClickHouse 2 shards x 2 replicas with one ZooKeeper, Kafka 3 brokers, topics replication factor 3 "+
		"(acks from all in-sync replicas, `min.insync.replicas` 2).", fill), table,
		"All of it, seven servers of the cluster included, shares this machine's two cores: the ratio is the cluster's overhead "+
			"(every row written to two replicas and sent on to its shard, every record to three brokers), not the speed-up "+
			"separate machines would give.",
		fmt.Sprintf("The write path: %s records of the load generator's fleet (half events, half metrics, already decoded) inserted "+
			"with columnar batches and no rollups, each way in %d runs: into the `Distributed` tables with `insert_distributed_sync` "+
			"(what the consumer does: the server that takes the insert splits the rows by the sharding key and waits for each "+
			"shard), and straight into the `_local` tables of one replica per shard, the rows split by the same keys in the "+
			"harness (cityHash64 in Go; checked afterwards against ClickHouse's own) and the shards written in parallel. In both "+
			"ways each shard's second replica fetches the part from the first.", thousands(int64(n)), runs))
	return nil
}

// drainRate samples the stored rows until want more than base are stored and returns the rate
// between 10% and 90% of them.
func (p *pipe) drainRate(ctx context.Context, base, want uint64) (float64, error) {
	t0 := time.Now()
	deadline := t0.Add(5 * time.Minute)
	var t10, t90 time.Time
	var n10, n90 uint64
	for {
		n, err := p.stored(ctx)
		if err != nil {
			return 0, err
		}
		done := n - base
		now := time.Now()
		if t10.IsZero() && done >= want/10 {
			t10, n10 = now, done
		}
		if done >= want*9/10 {
			t90, n90 = now, done
			break
		}
		if now.After(deadline) {
			return 0, fmt.Errorf("drained %d of %d records in 5 minutes", done, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !t90.After(t10) {
		// 10% to 90% fell between two samples (a short run's small backlog): the rate over the
		// whole drain so far, which counts the consumers' start too and so errs low.
		t10, n10 = t0, 0
	}
	return float64(n90-n10) / t90.Sub(t10).Seconds(), nil
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
	// Merge what was just stored, as ClickHouse has long since merged the stored rows of a
	// long-lived table: otherwise the measurement after it shares the cores with merging millions
	// of fresh rows (with 10M rows, 20 s after the insert, merges were still running through the
	// drain).
	rows, err := p.conn.Query(ctx, "SELECT DISTINCT table, partition_id FROM system.parts WHERE database = ? AND active", db)
	if err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	var parts [][2]string
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			rows.Close()
			return fmt.Errorf("prefill: %w", err)
		}
		parts = append(parts, [2]string{t, id})
	}
	rows.Close()
	for _, tp := range parts {
		if err := p.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.%s PARTITION ID '%s' FINAL", db, tp[0], tp[1])); err != nil {
			return fmt.Errorf("prefill: merge %s partition %s: %w", tp[0], tp[1], err)
		}
	}
	settle(ctx, p.conn)
	return nil
}

// writePaths times the two ways to store rows on the cluster, bare (rows already decoded,
// columnar batches, no rollups): through the Distributed tables with insert_distributed_sync (the
// worker's way: the server that takes the insert splits it by the sharding key and waits for each
// shard), and straight into each shard's local tables (the rows split here by the same keys,
// computed with cityHash64 in Go, one replica per shard, the shards written in parallel). It checks
// that the direct side put every row on the shard the Distributed table would have.
func writePaths(ctx context.Context, ce *Env, es []schemas.Event, ms []schemas.Metric) (dist, direct float64, err error) {
	n := float64(len(es) + len(ms))
	cfg, conn, err := ce.database(ctx)
	if err != nil {
		return 0, 0, err
	}
	settle(ctx, conn)
	start := time.Now()
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		return 0, 0, fmt.Errorf("insert into the Distributed tables: %w", err)
	}
	dist = n / time.Since(start).Seconds()

	cfg, conn, err = ce.database(ctx)
	if err != nil {
		return 0, 0, err
	}
	shards, err := chdb.ShardReplicas(ctx, conn, cfg.Cluster)
	if err != nil {
		return 0, 0, err
	}
	var stores []*consumer.ClickHouseStore
	var conns []driver.Conn
	for _, replicas := range shards { // the first replica of each shard
		sc := cfg
		sc.Addr, sc.Cluster = replicas[:1], ""
		c, err := chdb.Open(ctx, sc, true)
		if err != nil {
			return 0, 0, err
		}
		ce.defer_(func() { c.Close() })
		st, err := consumer.NewClickHouseStore(c, cfg.Database)
		if err != nil {
			return 0, 0, err
		}
		stores, conns = append(stores, st.Local()), append(conns, c)
	}
	settle(ctx, conn)
	start = time.Now()
	shardES, shardMS := make([][]schemas.Event, len(stores)), make([][]schemas.Metric, len(stores))
	for _, e := range es { // the events table's sharding key (chdb/cluster.go)
		key := e.TraceID
		if key == "" {
			key = e.EventID
		}
		i := city.CH64([]byte(key)) % uint64(len(stores))
		shardES[i] = append(shardES[i], e)
	}
	for _, m := range ms {
		i := city.CH64([]byte(m.MetricID)) % uint64(len(stores))
		shardMS[i] = append(shardMS[i], m)
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Write(ctx, consumer.NewBatch(shardES[i], shardMS[i], time.Now()))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, fmt.Errorf("insert into the shards' local tables: %w", err)
	}
	direct = n / time.Since(start).Seconds()
	var stored uint64
	for i, c := range conns {
		var wrong, held uint64
		if err := c.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM %[1]s.events_local WHERE if(trace_id = '', cityHash64(event_id), cityHash64(trace_id)) %% %[2]d != %[3]d)"+
			" + (SELECT count() FROM %[1]s.metrics_local WHERE cityHash64(metric_id) %% %[2]d != %[3]d)", cfg.Database, len(conns), i)).Scan(&wrong); err != nil {
			return 0, 0, err
		}
		if wrong > 0 {
			return 0, 0, fmt.Errorf("shard %d holds %d rows that the Distributed tables would have put on another shard", i+1, wrong)
		}
		if err := c.QueryRow(ctx, "SELECT (SELECT count() FROM "+cfg.Database+".events_local) + (SELECT count() FROM "+cfg.Database+".metrics_local)").Scan(&held); err != nil {
			return 0, 0, err
		}
		stored += held
	}
	if stored != uint64(n) {
		return 0, 0, fmt.Errorf("the shards' local tables hold %d rows, want %.0f", stored, n)
	}
	return dist, direct, nil
}
