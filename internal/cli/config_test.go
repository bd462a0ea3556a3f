package cli

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/kafka"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/producer/gateway"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/rollups"
)

// settingSpecs is every configuration the binary reads from the environment.
func settingSpecs() []any {
	return []any{&LogConfig{}, &migrateConfig{}, &consumerRole{}, &query.Config{}, &producer.Config{}, &gateway.Config{},
		&loadgen.Config{}, &retentionRole{}, &demoConfig{}}
}

// unsetSettings clears every TRIBUTARY_* setting for the test, restoring them after it.
func unsetSettings(t *testing.T) {
	for _, spec := range settingSpecs() {
		vars, err := envconf.Vars(Prefix, spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vars {
			if _, ok := os.LookupEnv(v.Key); ok {
				t.Setenv(v.Key, "") // restores the value after the test
				os.Unsetenv(v.Key)
			}
		}
	}
}

// With no variable set, each role reads exactly its components' DefaultConfig: the tags are the
// one source of defaults, for programs and for the binary alike, and the defaults are valid.
func TestRolesReadTheComponentsDefaults(t *testing.T) {
	unsetSettings(t)
	t.Setenv("USER", "someone") // the bare names envconfig would fall back to are not read
	t.Setenv("HOST", "somewhere")
	load := func(spec interface{ Validate() error }) {
		t.Helper()
		if err := envconf.Load(Prefix, spec); err != nil {
			t.Fatal(err)
		}
	}
	same := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s read from an empty environment:\n got %+v\nwant %+v", name, got, want)
		}
	}
	var c consumerRole
	load(&c)
	same("consumer", c.Config, consumer.DefaultConfig())
	var q queryRole
	load(&q)
	same("query", q.Config, query.DefaultConfig())
	var m migrateConfig
	load(&m)
	same("migrate's kafka", m.Kafka, kafka.DefaultConfig())
	same("migrate's clickhouse", m.ClickHouse, chdb.DefaultConfig())
	var p producer.Config
	if err := envconf.Load(Prefix, &p); err != nil {
		t.Fatal(err)
	}
	same("producer", p, producer.DefaultConfig())
	same("producer's kafka", p.Kafka, kafka.DefaultConfig()) // rollups and dead-letter topics included
	var g gateway.Config
	if err := envconf.Load(Prefix, &g); err != nil {
		t.Fatal(err)
	}
	same("gateway", g, gateway.DefaultConfig())

	gw := gateway.DefaultConfig()
	gw.Tokens = map[string]string{"s3cret-token": "acme"}
	for name, cfg := range map[string]interface{ Validate() error }{"consumer": consumer.DefaultConfig(), "query": query.DefaultConfig(),
		"producer": producer.DefaultConfig(), "gateway with a token": gw, "kafka": kafka.DefaultConfig(), "clickhouse": chdb.DefaultConfig(),
		"rollups": rollups.DefaultConfig(), "consumer role": &c, "migrate role": &m, "query role": &q} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s defaults: %v", name, err)
		}
	}
}

// Validate reports every bad setting at once, not the first.
func TestValidateReportsEveryProblem(t *testing.T) {
	f := func(name string, cfg interface{ Validate() error }, want ...string) {
		t.Helper()
		err := cfg.Validate()
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want an error naming %q among %q", name, err, w, want)
			}
		}
	}
	k := kafka.DefaultConfig()
	k.Brokers, k.TopicPartitions, k.SASLMechanism = nil, 0, "KERBEROS"
	f("kafka", k, "kafka brokers", "partitions", "sasl mechanism")
	ch := chdb.DefaultConfig()
	ch.Database, ch.MaxOpenConns = "no-dashes", 0
	f("clickhouse", ch, "clickhouse database", "max open conns")
	p := producer.DefaultConfig()
	p.Kafka.EventsTopic, p.SampleRate, p.Compression = "", 2, "brotli"
	f("producer", p, "kafka topics", "sample rate", "compression")
	c := consumer.DefaultConfig()
	c.Group, c.BatchInterval, c.RollupTiers, c.Kafka.DLQTopic = "", 0, []time.Duration{1500 * time.Millisecond}, ""
	f("consumer", c, "consumer group", "batch interval", "rollup tier 1.5s", "dlq topic")
	q := query.DefaultConfig()
	q.Listen, q.Timeout, q.ClickHouse.Addr = "", time.Millisecond, nil
	f("query", q, "query listen", "query timeout", "clickhouse addr")
	g := gateway.DefaultConfig()
	g.MaxRecords, g.CumulativeStreams = 0, 0
	f("gateway", g, "gateway tokens", "max records", "cumulative streams")
	r := rollups.DefaultConfig()
	r.Lateness, r.MaxWindows = -time.Second, 0
	f("rollups", r, "rollup lateness", "max windows")
	m := migrateConfig{ClickHouse: ch, Kafka: k, WithKafka: true}
	f("migrate", &m, "clickhouse database", "kafka brokers")
}

// The CLI prints every problem on the one line it exits with.
func TestBadConfigurationListsEveryProblem(t *testing.T) {
	t.Setenv("TRIBUTARY_QUERY_MAX_OFFSET", "-1")
	t.Setenv("TRIBUTARY_QUERY_TIMEOUT", "1ms")
	code, _, errs := run("query")
	if code != 2 || !strings.Contains(errs, "max offset -1") || !strings.Contains(errs, "; query timeout 1ms") ||
		strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("got %d %q; want both problems on one line", code, errs)
	}
}
