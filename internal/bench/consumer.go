package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// runConsumer: a pre-loaded topic through a worker (decode, validate, rollups, raw and rollup
// inserts, closed windows published, commit), timed from its start (group join included) until
// every record is stored, against (a) inserting the same rows, already decoded, with bare
// clickhouse-go columnar batches, and (b) ClickHouse's own Kafka table engine reading the same
// rows as JSONEachRow through materialized views into the same tables. Sides alternate.
func runConsumer(ctx context.Context, e *Env, s *Section) error {
	// The consumer role sets this (TRIBUTARY_CONSUMER_GC_PERCENT); it applies to every side here.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	n, runs := pick(e, 200000, 20000), pick(e, 5, 1)
	es, ms, err := fleetRecords(loadgen.NewFleet(50, 7), n/2, n/2, time.Now().UTC().Add(-10*time.Minute), 10*time.Minute)
	if err != nil {
		return err
	}
	var workerR, bareR, noIndexR, prevIndexR, engineR, workerCPU, workerAllocs, bareCPU, bareAllocs []float64
	var bareServer, noIndexServer, prevIndexServer []float64 // ClickHouse's CPU per record
	engineErr := ""
	for run := range runs {
		sides := []func() error{
			func() error {
				r, c, err := workerCost(ctx, e, es, ms)
				workerR, workerCPU, workerAllocs = append(workerR, r), append(workerCPU, c.cpuUS), append(workerAllocs, c.allocs)
				return err
			},
			func() error {
				r, c, err := bareCost(ctx, e, es, ms, indexToday)
				bareR, bareCPU, bareAllocs = append(bareR, r), append(bareCPU, c.cpuUS), append(bareAllocs, c.allocs)
				bareServer = append(bareServer, c.serverUS)
				return err
			},
			func() error {
				r, c, err := bareCost(ctx, e, es, ms, indexNone)
				noIndexR, noIndexServer = append(noIndexR, r), append(noIndexServer, c.serverUS)
				return err
			},
			func() error {
				r, c, err := bareCost(ctx, e, es, ms, indexPrevious)
				prevIndexR, prevIndexServer = append(prevIndexR, r), append(prevIndexServer, c.serverUS)
				return err
			},
			func() error {
				if engineErr != "" {
					return nil
				}
				r, err := engineSide(ctx, e, es, ms)
				if err != nil {
					engineErr = err.Error()
					e.logf("kafka engine anchor failed: %v", err)
					return nil
				}
				engineR = append(engineR, r)
				return nil
			},
		}
		for i := range sides {
			if err := sides[(i+run)%len(sides)](); err != nil {
				return err
			}
			e.cleanup()
		}
		e.logf("consumer run %d: worker %.0f/s, bare insert %.0f/s, without the attribute index %.0f/s, with the previous index %.0f/s, kafka engine %v",
			run+1, workerR[run], bareR[run], noIndexR[run], prevIndexR[run], engineR)
	}
	f := compare("worker records/s", "records/s", workerR, "bare clickhouse-go columnar insert", bareR)
	s.Figures = append(s.Figures, f.target("ratio ≥ 0.90", f.Ratio >= 0.90))
	idx := compare("bare insert records/s", "records/s", bareR, "the same without the attribute index", noIndexR)
	s.Figures = append(s.Figures, idx.target("ratio ≥ 0.80 (the index costs ≤ 20%)", idx.Ratio >= 0.80),
		compare("bare insert records/s, previous attribute index", "records/s", prevIndexR, "the same without the attribute index", noIndexR),
		compare("bare insert records/s vs the previous attribute index", "records/s", bareR, "the same with the previous index (0007)", prevIndexR),
		compare("ClickHouse CPU per record, bare insert", "µs", bareServer, "the same without the attribute index", noIndexServer),
		compare("ClickHouse CPU per record, bare insert, previous attribute index", "µs", prevIndexServer, "the same without the attribute index", noIndexServer),
		compare("worker CPU per record", "µs", workerCPU, "bare insert's CPU per record (rows already decoded)", bareCPU),
		compare("worker allocations per record", "allocs", workerAllocs, "bare insert's allocations per record", bareAllocs))
	if len(engineR) == len(workerR) {
		s.Figures = append(s.Figures, compare("worker records/s vs in-database anchor", "records/s", workerR, "ClickHouse Kafka engine (JSONEachRow)", engineR))
	}
	// The record size: one more run of the worker and the bare insert with every record's
	// attributes 2 and 4 times over.
	stable := "| attributes | worker records/s | bare insert records/s | worker / bare | worker CPU per record | worker allocations per record |\n|---|---|---|---|---|---|\n"
	stable += fmt.Sprintf("| 1× | %s | %s | %.2f | %.1f µs | %.1f |\n", thousands(int64(median(workerR))), thousands(int64(median(bareR))),
		median(workerR)/median(bareR), median(workerCPU), median(workerAllocs))
	for _, scale := range []int{2, 4} {
		es, ms, err := fleetRecords(loadgen.NewFleet(50, 7).WithAttrScale(scale), n/2, n/2, time.Now().UTC().Add(-10*time.Minute), 10*time.Minute)
		if err != nil {
			return err
		}
		wr, wc, err := workerCost(ctx, e, es, ms)
		e.cleanup()
		if err != nil {
			return err
		}
		br, _, err := bareCost(ctx, e, es, ms, indexToday)
		e.cleanup()
		if err != nil {
			return err
		}
		x := fmt.Sprintf("attributes %d×", scale)
		s.Figures = append(s.Figures, compare("worker records/s, "+x, "records/s", []float64{wr}, "attributes 1×", workerR),
			compare("worker CPU per record, "+x, "µs", []float64{wc.cpuUS}, "attributes 1×", workerCPU))
		stable += fmt.Sprintf("| %d× | %s | %s | %.2f | %.1f µs | %.1f |\n", scale, thousands(int64(wr)), thousands(int64(br)), wr/br, wc.cpuUS, wc.allocs)
	}
	s.Notes = append(s.Notes, "Record size: one more run of the worker and of the bare insert with each record's attributes twice "+
		"and four times over (`TRIBUTARY_LOADGEN_ATTR_SCALE`: copies under other keys, the same values and series). CPU and "+
		"allocations per record are this process's over the timed part (the worker with its Kafka client, or the bare "+
		"insert's clickhouse-go; ClickHouse is its own process), GC included.", stable)
	s.Notes = append(s.Notes, fmt.Sprintf("Each run pre-loads %s records of the load generator's fleet (half events, half metrics over "+
		"10 minutes, zstd) into fresh 4-partition topics and a fresh database. The worker runs with the consumer role's settings "+
		"(50,000-record batches, 1 s interval, GC target 400) and rollups on (1 m and 1 h tiers); its time runs from its start, "+
		"group join included, until every record is stored. The bare baseline inserts the same rows, already decoded, with "+
		"clickhouse-go columnar batches. Before each side the harness waits for ClickHouse's background merges to finish. "+
		"A fourth side inserts the same way into tables without the attribute index's materialized view: what that index "+
		"costs every insert (each event adds a row per attribute to events_attr_index). A fifth side inserts into tables "+
		"with the index this one replaced (migration 0007's events_by_attr_hash: the event's tenant, id, type, name, trace "+
		"and span id as texts on every row, where today's row has their hashes and no trace or span): the alternative "+
		"measured against it. For these three sides the ClickHouse server's CPU time over the insert (user and system, "+
		"from /proc) is reported per record too: the share of the work the index adds, steadier than a rate on a shared "+
		"host.",
		thousands(int64(n))),
		"The in-database anchor: the same rows as JSONEachRow (already flattened to the tables' columns: ClickHouse does no Avro "+
			"decoding, attribute flattening or rollups) on two topics, read by Kafka-engine tables (one consumer each, "+
			"kafka_max_block_size 50,000, group offsets committed at the start beforehand) through materialized views into the "+
			"same `events` and `metrics` tables; timed from creating the views until every row is stored.")
	if engineErr != "" {
		s.Notes = append(s.Notes, "The Kafka-engine anchor failed on this machine: `"+engineErr+"`.")
	}
	return nil
}

// settle waits (up to 20 s) until ClickHouse runs no background merges, so a side does not pay for
// the previous one's.
func settle(ctx context.Context, conn driver.Conn) { settleFor(ctx, conn, 20*time.Second) }

// settleFor is settle with its own limit.
func settleFor(ctx context.Context, conn driver.Conn, limit time.Duration) {
	runtime.GC()
	for range int(limit / (100 * time.Millisecond)) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func preload(ctx context.Context, k kafka.Config, es []schemas.Event, ms []schemas.Metric) error {
	codec, err := schemas.NewCodec()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.MaxBufferedRecords(len(es)+len(ms)+1))
	if err != nil {
		return err
	}
	defer cl.Close()
	for i := range es {
		v, _ := codec.AppendEvent(nil, &es[i])
		cl.Produce(ctx, &kgo.Record{Topic: k.EventsTopic, Key: []byte(es[i].TraceID), Value: v}, nil)
	}
	for i := range ms {
		v, _ := codec.AppendMetric(nil, &ms[i])
		cl.Produce(ctx, &kgo.Record{Topic: k.MetricsTopic, Key: producer.SeriesKey(&ms[i]), Value: v}, nil)
	}
	return cl.Flush(ctx)
}

func workerSide(ctx context.Context, e *Env, es []schemas.Event, ms []schemas.Metric) (float64, error) {
	r, _, err := workerCost(ctx, e, es, ms)
	return r, err
}

// perRecord is what this process spent per record on a side: CPU (user + system) and heap
// allocations, GC included.
// perRecord is a side's cost per record: this process's CPU and allocations, and (bare inserts)
// the ClickHouse server's CPU.
type perRecord struct{ cpuUS, allocs, serverUS float64 }

type procUsage struct {
	cpu     float64 // seconds
	mallocs uint64
}

func usageNow() procUsage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return procUsage{cpu: tv(ru.Utime) + tv(ru.Stime), mallocs: mallocs()}
}

func (u procUsage) since(u0 procUsage, n int) perRecord {
	return perRecord{cpuUS: (u.cpu - u0.cpu) / float64(n) * 1e6, allocs: float64(u.mallocs-u0.mallocs) / float64(n)}
}

// workerCost is workerSide with this process's cost per record over the timed part (the worker
// and its Kafka client; ClickHouse is another process).
func workerCost(ctx context.Context, e *Env, es []schemas.Event, ms []schemas.Metric) (float64, perRecord, error) {
	var cost perRecord
	n := uint64(len(es) + len(ms))
	chcfg, conn, k, err := e.fresh(ctx, 4)
	if err != nil {
		return 0, cost, err
	}
	if err := preload(ctx, k, es, ms); err != nil {
		return 0, cost, err
	}
	cfg := consumerConfig(k, chcfg, unique("bench"))
	store, err := consumer.NewClickHouseStore(conn, chcfg.Database)
	if err != nil {
		return 0, cost, err
	}
	w, err := consumer.New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return 0, cost, err
	}
	settle(ctx, conn)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	stopProfile, err := startProfile("worker")
	if err != nil {
		cancel()
		return 0, cost, err
	}
	defer stopProfile()
	u0, start := usageNow(), time.Now()
	go func() { done <- w.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for w.Stats().Written < n {
		if time.Now().After(deadline) {
			cancel()
			return 0, cost, fmt.Errorf("worker stored %d of %d records in 5 minutes", w.Stats().Written, n)
		}
		select {
		case err := <-done:
			cancel()
			return 0, cost, fmt.Errorf("worker stopped: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cost = usageNow().since(u0, int(n))
	stopProfile()
	cancel()
	if err := <-done; err != nil {
		return 0, cost, err
	}
	return float64(n) / elapsed.Seconds(), cost, nil
}

// consumerConfig is the consumer role's defaults on the given topics, database and group.
func consumerConfig(k kafka.Config, ch chdb.Config, group string) consumer.Config {
	c := consumer.DefaultConfig()
	c.Kafka, c.ClickHouse, c.Group = k, ch, group
	return c
}

// attrIndex is the attribute index the bare insert's tables have.
type attrIndex int

const (
	indexToday    attrIndex = iota // events_attr_index (migration 0008)
	indexNone                      // no index: what any index costs the insert
	indexPrevious                  // events_by_attr_hash (migration 0007: the tenant, id, type, name, trace and span texts on every row)
)

// bareCost is a bare insert's records/s with its cost per record: this process's (clickhouse-go's
// columnar batches) and the ClickHouse server's CPU (when its pid file is found; else 0).
func bareCost(ctx context.Context, e *Env, es []schemas.Event, ms []schemas.Metric, index attrIndex) (float64, perRecord, error) {
	var cost perRecord
	chcfg, conn, err := e.database(ctx)
	if err != nil {
		return 0, cost, err
	}
	if index != indexToday {
		if err := conn.Exec(ctx, "DROP TABLE "+chcfg.Database+".events_attr_index_mv"); err != nil {
			return 0, cost, err
		}
	}
	if index == indexPrevious { // the table and view of migration 0007, without its backfill
		migrations, err := schemas.Migrations()
		if err != nil {
			return 0, cost, err
		}
		for _, m := range migrations {
			if m.Version != 7 {
				continue
			}
			for _, stmt := range m.Statements[:2] {
				sql, _ := schemas.Render(stmt, chcfg.Database)
				if err := conn.Exec(ctx, sql); err != nil {
					return 0, cost, fmt.Errorf("the previous attribute index: %w", err)
				}
			}
		}
	}
	settle(ctx, conn)
	pid := e.serverPID("clickhouse/server.pid")
	s0, _ := cpuSeconds(pid)
	u0, start := usageNow(), time.Now()
	if err := consumertest.Write(ctx, conn, chcfg.Database, es, ms); err != nil {
		return 0, cost, err
	}
	elapsed := time.Since(start)
	cost = usageNow().since(u0, len(es)+len(ms))
	if s1, err := cpuSeconds(pid); err == nil && pid > 0 {
		cost.serverUS = (s1 - s0) / float64(len(es)+len(ms)) * 1e6
	}
	return float64(len(es)+len(ms)) / elapsed.Seconds(), cost, nil
}

const chTime = "2006-01-02 15:04:05"

// engineSide is the in-database anchor (see runConsumer).
func engineSide(ctx context.Context, e *Env, es []schemas.Event, ms []schemas.Metric) (float64, error) {
	chcfg, conn, k, err := e.fresh(ctx, 4)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC().Format(chTime)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.MaxBufferedRecords(len(es)+len(ms)+1))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	for i := range es {
		ev := &es[i]
		js, keys, vals := schemas.AttributeColumns(ev.Attributes)
		b, _ := json.Marshal(map[string]any{"tenant": ev.Tenant, "event_id": ev.EventID, "trace_id": ev.TraceID, "span_id": ev.SpanID,
			"type": ev.Type, "name": ev.Name, "timestamp": ev.Timestamp.UTC().Format(chTime), "timestamp_us": ev.Timestamp.UnixMicro(),
			"attributes": js, "attr_keys": keys, "attr_values": vals, "service": ev.Service, "host": ev.Host, "ingested_at": now})
		cl.Produce(ctx, &kgo.Record{Topic: k.EventsTopic, Key: []byte(ev.TraceID), Value: b}, nil)
	}
	for i := range ms {
		m := &ms[i]
		js, keys, vals := schemas.AttributeColumns(m.Attributes)
		b, _ := json.Marshal(map[string]any{"tenant": m.Tenant, "metric_id": m.MetricID, "trace_id": m.TraceID, "name": m.Name,
			"value": m.Value, "unit": m.Unit, "aggregation_type": string(m.AggregationType), "timestamp": m.Timestamp.UTC().Format(chTime),
			"timestamp_us": m.Timestamp.UnixMicro(), "attributes": js, "attr_keys": keys, "attr_values": vals, "service": m.Service,
			"host": m.Host, "ingested_at": now})
		cl.Produce(ctx, &kgo.Record{Topic: k.MetricsTopic, Key: producer.SeriesKey(m), Value: b}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	// The engine starts a new group at the end of the topic: commit offset 0 for it first.
	group := unique("engine")
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	for _, t := range []string{k.EventsTopic, k.MetricsTopic} {
		for p := range k.TopicPartitions {
			offs.Add(kadm.Offset{Topic: t, Partition: p, At: 0, LeaderEpoch: -1})
		}
	}
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		return 0, fmt.Errorf("commit the engine's start offsets: %w", err)
	}
	db := chcfg.Database
	settle(ctx, conn)
	e.defer_(func() {
		for _, t := range []string{"events_kafka_mv", "metrics_kafka_mv", "events_kafka", "metrics_kafka"} {
			_ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+db+"."+t)
		}
	})
	start := time.Now()
	for _, t := range []struct{ table, topic string }{{"events", k.EventsTopic}, {"metrics", k.MetricsTopic}} {
		stmts := []string{
			fmt.Sprintf("CREATE TABLE %s.%s_kafka AS %s.%s ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s', "+
				"kafka_group_name = '%s', kafka_format = 'JSONEachRow', kafka_max_block_size = 50000",
				db, t.table, db, t.table, k.Brokers[0], t.topic, group),
			fmt.Sprintf("CREATE MATERIALIZED VIEW %s.%s_kafka_mv TO %s.%s AS SELECT * FROM %s.%s_kafka", db, t.table, db, t.table, db, t.table),
		}
		for _, st := range stmts {
			if err := conn.Exec(ctx, st); err != nil {
				return 0, err
			}
		}
	}
	want := uint64(len(es) + len(ms))
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var got uint64
		if err := conn.QueryRow(ctx, "SELECT (SELECT count() FROM "+db+".events) + (SELECT count() FROM "+db+".metrics)").Scan(&got); err != nil {
			return 0, err
		}
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the Kafka engine stored %d of %d rows in 3 minutes", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(want) / time.Since(start).Seconds(), nil
}
