package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/chdb"
	"github.com/tributary/tributary/internal/kafka"
	"github.com/tributary/tributary/internal/observe"
	"github.com/tributary/tributary/query"
)

const migrateUsage = `Usage: tributary migrate

Creates the ClickHouse database and tables (schemas/ddl, recorded in schema_migrations) and the
Kafka topics, if missing. Safe to run again and from several places at once.

Settings: TRIBUTARY_CLICKHOUSE_*, TRIBUTARY_KAFKA_* (see the README). Set
TRIBUTARY_MIGRATE_KAFKA=false to leave Kafka alone.

Example:
  TRIBUTARY_CLICKHOUSE_ADDR=127.0.0.1:19000 TRIBUTARY_KAFKA_BROKERS=127.0.0.1:19092 tributary migrate
`

type migrateConfig struct {
	ClickHouse chdb.Config  `envconfig:"CLICKHOUSE"`
	Kafka      kafka.Config `envconfig:"KAFKA"`
	WithKafka  bool         `envconfig:"MIGRATE_KAFKA" default:"true"`
}

func (c *migrateConfig) Validate() error {
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	if c.WithKafka {
		return c.Kafka.Validate()
	}
	return nil
}

func runMigrate(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var cfg migrateConfig
	if err := loadConfig(&cfg); err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	applied, err := chdb.Migrate(ctx, conn, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "clickhouse %s: %d migration(s) applied %v\n", cfg.ClickHouse.Database, len(applied), applied)
	if cfg.WithKafka {
		if err := kafka.EnsureTopics(ctx, cfg.Kafka); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "kafka: topics %s and %s present\n", cfg.Kafka.EventsTopic, cfg.Kafka.MetricsTopic)
	}
	return nil
}

const consumerUsage = `Usage: tributary consumer

Runs one consumer worker of the group TRIBUTARY_CONSUMER_GROUP: reads the events and metrics
topics, writes batches to ClickHouse, commits offsets after each write. Run several for more
throughput; they share the partitions. SIGINT/SIGTERM writes the batch in hand, commits and exits.

Settings: TRIBUTARY_KAFKA_*, TRIBUTARY_CLICKHOUSE_*, TRIBUTARY_CONSUMER_* (see the README).
`

type consumerRole struct {
	consumer.Config
	// MetricsListen serves /metrics, /healthz and /readyz; empty turns it off.
	MetricsListen string `envconfig:"CONSUMER_METRICS_LISTEN" default:"127.0.0.1:9464"`
	// GCPercent is the Go garbage collector's target (GOGC). Decoding allocates a lot; 400 trades
	// memory for about 1.5x the throughput on 2 cores (BENCHMARKS.md). The GOGC variable wins if set.
	GCPercent int `envconfig:"CONSUMER_GC_PERCENT" default:"400"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT), in bytes: near it the
	// collector runs as often as needed, so the relaxed GCPercent costs no unbounded memory. The
	// GOMEMLIMIT variable wins if set; 0 turns the limit off.
	MemoryLimit int64 `envconfig:"CONSUMER_MEMORY_LIMIT" default:"402653184"`
}

func runConsumer(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var role consumerRole
	if err := loadConfig(&role); err != nil {
		return err
	}
	cfg := role.Config
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(role.GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && role.MemoryLimit > 0 {
		debug.SetMemoryLimit(role.MemoryLimit)
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	sink, err := consumer.NewClickHouseSink(conn, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	w, err := consumer.New(cfg, sink, env.Log)
	if err != nil {
		return err
	}
	if role.MetricsListen != "" {
		reg := observe.NewRegistry()
		if err := w.Register(reg); err != nil {
			return err
		}
		kc, err := kgo.NewClient(cfg.Kafka.ClientOpts()...)
		if err != nil {
			return err
		}
		defer kc.Close()
		mux := http.NewServeMux()
		observe.Mount(mux, reg, map[string]observe.Check{"clickhouse": conn.Ping, "kafka": kc.Ping})
		ready := make(chan string, 1)
		go func() {
			if err := observe.Serve(ctx, role.MetricsListen, mux, ready); err != nil {
				env.Log.Error("metrics endpoint", "err", err)
			}
		}()
		select {
		case addr := <-ready:
			env.Log.Info("metrics endpoint listening", "addr", "http://"+addr+"/metrics")
		case <-time.After(5 * time.Second):
		}
	}
	env.Log.Info("consumer started", "brokers", cfg.Kafka.Brokers, "group", cfg.Group, "clickhouse", cfg.ClickHouse.Addr)
	err = w.Run(ctx)
	env.Log.Info("consumer stopped", "stats", fmt.Sprintf("%+v", w.Stats()))
	return err
}

const queryUsage = `Usage: tributary query

Serves the HTTP JSON API on TRIBUTARY_QUERY_LISTEN:
  GET /v1/events   type, name, trace_id, span_id, start, end, attr.<key>, limit, offset, order
  GET /v1/metrics  name, trace_id, aggregation_type, start, end, attr.<key>, limit, offset, order
  GET /healthz, /readyz

Use a read-only ClickHouse account (deploy/clickhouse.sh creates tributary_ro).

Example:
  TRIBUTARY_CLICKHOUSE_USER=tributary_ro TRIBUTARY_CLICKHOUSE_PASSWORD=tributary_ro tributary query
  curl 'http://127.0.0.1:8080/v1/events?type=node_failed&start=2025-01-15T00:00:00Z&limit=10'
`

func runQuery(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var cfg query.Config
	if err := loadConfig(&cfg); err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	s, err := query.New(cfg, conn, env.Log)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		if addr, ok := <-ready; ok {
			env.Log.Info("query service listening", "addr", "http://"+addr)
		}
	}()
	return s.Run(ctx, ready)
}
