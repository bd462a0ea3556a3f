package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/internal/observe"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
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
	if c.WithKafka {
		return errors.Join(c.ClickHouse.Validate(), c.Kafka.Validate())
	}
	return c.ClickHouse.Validate()
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
	fmt.Fprintf(env.Stdout, "clickhouse %s: migrating\n", cfg.ClickHouse.Database)
	applied, err := chdb.MigrateConfig(ctx, conn, cfg.ClickHouse, func(m schemas.Migration) {
		fmt.Fprintf(env.Stdout, "  applied %04d_%s (%d statements)\n", m.Version, m.Name, len(m.Statements))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "clickhouse %s: %d migration(s) applied, schema up to date\n", cfg.ClickHouse.Database, len(applied))
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

Settings: TRIBUTARY_KAFKA_*, TRIBUTARY_CLICKHOUSE_*, TRIBUTARY_CONSUMER_*, TRIBUTARY_ROLLUP_*
(see the README). Metrics, liveness and readiness on TRIBUTARY_CONSUMER_METRICS_LISTEN.

Example:
  TRIBUTARY_KAFKA_BROKERS=127.0.0.1:19092 TRIBUTARY_CONSUMER_GROUP=ingest tributary consumer
  curl http://127.0.0.1:9464/readyz
`

type consumerRole struct {
	consumer.Config
	// MetricsListen serves /metrics, /healthz and /readyz; empty turns it off.
	MetricsListen string `envconfig:"CONSUMER_METRICS_LISTEN" default:"127.0.0.1:9464"`
	// GCPercent is the Go garbage collector's target (GOGC). Decoding allocates a lot; 400 trades
	// memory for throughput (the consumer stage went from 0.60 to 0.72 of a bare insert on 2 cores
	// when it was introduced; make bench's consumer scenario runs at 400). GOGC wins if set.
	GCPercent int `envconfig:"CONSUMER_GC_PERCENT" default:"400"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT), in bytes: near it the
	// collector runs as often as needed, so the relaxed GCPercent costs no unbounded memory. The
	// GOMEMLIMIT variable wins if set; 0 turns the limit off.
	MemoryLimit int64 `envconfig:"CONSUMER_MEMORY_LIMIT" default:"402653184"`
	// Pprof serves Go's profiler (/debug/pprof/) on the metrics listener, for finding where the
	// time goes (make bench profiles the consumer with it). Off by default.
	Pprof bool `envconfig:"CONSUMER_PPROF" default:"false"`
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
	conn, err := chdb.OpenWait(ctx, cfg.ClickHouse, true, env.Log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting: nothing was consumed
		}
		return err
	}
	defer conn.Close()
	store, err := consumer.NewClickHouseStore(conn, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	store.ReadReplicasAs(cfg.ClickHouse.User, cfg.ClickHouse.Password)
	w, err := consumer.New(cfg, store, env.Log)
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
		if role.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		}
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

Serves the HTTP JSON API on TRIBUTARY_QUERY_LISTEN (GET /openapi.json describes every parameter):
  GET /v1/events             type, name, trace_id, span_id, start, end, attr.<key>, limit, offset, order
  GET /v1/events/counts      bucket, type, name, trace_id, start, end, attr.<key>: events per bucket and type
  GET /v1/traces/{trace_id}  every event of a trace, in time order
  GET /v1/metrics            name, trace_id, aggregation_type, start, end, attr.<key>, limit, offset, order
  GET /v1/aggregate          name, bucket, aggregates, group_by, top, source, start, end, attr.<key>
  GET /openapi.json          the OpenAPI 3 description of the API
  GET /ui/                   the explorer (web UI); GET / redirects to it
  GET /metrics               Prometheus metrics
  GET /healthz, /readyz      liveness; readiness (ClickHouse answers)

With TRIBUTARY_QUERY_TOKENS=token1:tenant1,... (each token 8 characters or more) every /v1 request
needs Authorization: Bearer <token> and sees only its tenant's rows. Use a read-only ClickHouse
account (deploy/clickhouse.sh creates tributary_ro).

Example:
  TRIBUTARY_CLICKHOUSE_USER=tributary_ro TRIBUTARY_CLICKHOUSE_PASSWORD=tributary_ro tributary query
  curl 'http://127.0.0.1:8080/v1/events?type=node_failed&start=2025-01-15T00:00:00Z&limit=10'
`

type queryRole struct {
	query.Config
	// GCPercent is the Go garbage collector's target (GOGC). The service's live heap is small and a
	// large answer allocates many times it, so at 100 the collector runs through every answer: a
	// 24-hour minute series of 32 groups took ~160 ms at 100 and ~120 ms at 400. GOGC wins if set.
	GCPercent int `envconfig:"QUERY_GC_PERCENT" default:"400"`
}

func runQuery(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var role queryRole
	if err := loadConfig(&role); err != nil {
		return err
	}
	cfg := role.Config
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(role.GCPercent)
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

const gatewayUsage = `Usage: tributary gateway

Serves the HTTP ingest API on TRIBUTARY_GATEWAY_LISTEN for hosts that do not embed the Go SDK:
  POST /v1/ingest  (Authorization: Bearer <token>; JSON object, JSON array or NDJSON; gzip allowed)
  GET /metrics, /healthz, /readyz
Tokens map to tenants: TRIBUTARY_GATEWAY_TOKENS=token1:tenant1,token2:tenant2. Records are
published through the SDK (TRIBUTARY_KAFKA_*, TRIBUTARY_MAX_BUFFERED_RECORDS, ...). The package
documentation of producer/gateway lists every answer.

Example:
  TRIBUTARY_GATEWAY_TOKENS=s3cret-token:acme tributary gateway &
  curl -H 'Authorization: Bearer s3cret-token' -H 'Content-Type: application/json' \
    -d '[{"kind":"metric","name":"cpu_percent","value":45.2,"unit":"percent","aggregation_type":"gauge"}]' \
    http://127.0.0.1:8090/v1/ingest
`

type gatewayRole struct {
	Producer producer.Config
	Gateway  gateway.Config
}

func (g *gatewayRole) Validate() error {
	return errors.Join(g.Producer.Validate(), g.Gateway.Validate())
}

func runGateway(ctx context.Context, env *Env, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var role gatewayRole // both halves read TRIBUTARY_*, not TRIBUTARY_PRODUCER_* and _GATEWAY_GATEWAY_*
	for _, spec := range []any{&role.Producer, &role.Gateway} {
		if err := envconf.Load(Prefix, spec); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if err := role.Validate(); err != nil {
		return configError(err)
	}
	reg := observe.NewRegistry()
	p, err := producer.New(role.Producer, kgo.WithHooks(kprom.NewMetrics("tributary_kafka", kprom.Registerer(reg))))
	if err != nil {
		return err
	}
	g, err := gateway.New(role.Gateway, p, env.Log, reg)
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		if addr, ok := <-ready; ok {
			env.Log.Info("gateway listening", "addr", "http://"+addr+"/v1/ingest", "brokers", role.Producer.Kafka.Brokers)
		}
	}()
	err = g.Run(ctx, ready)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(err, p.Close(cctx))
}
