// Package chdb holds the ClickHouse settings that consumer.Config and query.Config embed as their
// ClickHouse field, opens connections, and applies Tributary's DDL migrations (schemas/ddl)
// idempotently. It works with ClickHouse 18.16 and current releases.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/schemas"
)

// Config says how to reach ClickHouse. Every field is read from the environment with the prefix of
// the component (TRIBUTARY_CLICKHOUSE_ADDR and so on).
type Config struct {
	// Addr lists native-protocol host:port addresses (comma-separated in the environment).
	Addr []string `envconfig:"ADDR" default:"127.0.0.1:19000"`
	// Database holds Tributary's tables; migrate creates it.
	Database string `envconfig:"DATABASE" default:"tributary"`
	// User and Password authenticate; the query service should use a read-only user.
	User     string `envconfig:"USER" default:"default"`
	Password string `envconfig:"PASSWORD" default:""`
	// DialTimeout bounds connecting; MaxOpenConns bounds the pool.
	DialTimeout  time.Duration `envconfig:"DIAL_TIMEOUT" default:"5s"`
	MaxOpenConns int           `envconfig:"MAX_OPEN_CONNS" default:"8"`
	// Cluster, when set, names the remote_servers cluster Tributary's tables are spread over:
	// migrate creates Replicated*MergeTree tables <table>_local on every server of it and
	// Distributed tables under today's names (see cluster.go), and inserts into Distributed tables
	// wait for every shard. Empty: one server, today's schema.
	Cluster string `envconfig:"CLUSTER" default:""`
}

// DefaultConfig returns the defaults of every setting: its fields' default tags, as the tributary
// command reads them when no TRIBUTARY_CLICKHOUSE_* variable is set.
func DefaultConfig() Config { return envconf.Default[Config]() }

// Validate reports every bad setting, each naming its setting (errors.Join).
func (c Config) Validate() error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, errors.New("clickhouse addr: empty"))
	}
	if !schemas.ValidIdentifier(c.Database) {
		errs = append(errs, fmt.Errorf("clickhouse database %q: must match [A-Za-z_][A-Za-z0-9_]*", c.Database))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("clickhouse dial timeout %v: must be positive", c.DialTimeout))
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, fmt.Errorf("clickhouse max open conns %d: must be at least 1", c.MaxOpenConns))
	}
	if c.Cluster != "" && !schemas.ValidIdentifier(c.Cluster) {
		errs = append(errs, fmt.Errorf("clickhouse cluster %q: must match [A-Za-z_][A-Za-z0-9_]*", c.Cluster))
	}
	return errors.Join(errs...)
}

// Open connects to ClickHouse and pings it. With useDatabase false the connection's default
// database is "default" (migrate uses that, since Database may not exist yet).
func Open(ctx context.Context, cfg Config, useDatabase bool) (driver.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db := "default"
	if useDatabase {
		db = cfg.Database
	}
	var settings clickhouse.Settings
	if cfg.Cluster != "" {
		settings = clusterSettings
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Settings:     settings,
		Addr:         cfg.Addr,
		Auth:         clickhouse.Auth{Database: db, Username: cfg.User, Password: cfg.Password},
		DialTimeout:  cfg.DialTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %v: %w", cfg.Addr, err)
	}
	return conn, nil
}

// OpenWait is Open retried until ClickHouse answers or ctx ends, waiting 1 s after the first
// failure and twice as long after each next one, up to 15 s, and logging each failure: a service
// started while ClickHouse is down (or still starting) waits for it instead of exiting.
func OpenWait(ctx context.Context, cfg Config, useDatabase bool, log *slog.Logger) (driver.Conn, error) {
	backoff := time.Second
	for {
		conn, err := Open(ctx, cfg, useDatabase)
		if err == nil {
			return conn, nil
		}
		if cfg.Validate() != nil {
			return nil, err
		}
		log.Warn("waiting for ClickHouse", "addr", cfg.Addr, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for clickhouse %v: %w (last error: %v)", cfg.Addr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// Migrate creates the database and applies every migration not yet recorded in
// <database>.schema_migrations, in order, calling progress (if given) after each. It is
// idempotent and safe to run concurrently from several places: each statement can be run again
// after a crash at any point (see apply), so a migration interrupted half-way is applied again in
// full. It returns the versions it applied.
func Migrate(ctx context.Context, conn driver.Conn, database string, progress ...func(schemas.Migration)) ([]int, error) {
	return MigrateConfig(ctx, conn, Config{Database: database}, progress...)
}

// MigrateConfig is Migrate of cfg.Database, on the cluster cfg.Cluster when that is set (then it
// connects with cfg's account to each server of the cluster for ADD COLUMN).
func MigrateConfig(ctx context.Context, conn driver.Conn, cfg Config, progress ...func(schemas.Migration)) ([]int, error) {
	database := cfg.Database
	run := func(ctx context.Context, conn driver.Conn, database, sql string) error {
		if cfg.Cluster != "" {
			return applyCluster(ctx, conn, cfg, sql)
		}
		return apply(ctx, conn, database, sql)
	}
	if !schemas.ValidIdentifier(database) {
		return nil, fmt.Errorf("database name %q: must match [A-Za-z_][A-Za-z0-9_]*", database)
	}
	migrations, err := schemas.Migrations()
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS " + database,
		"CREATE TABLE IF NOT EXISTS " + database + ".schema_migrations (version UInt32, name String, applied_at DateTime) " +
			"ENGINE = MergeTree() ORDER BY version",
	} {
		if err := run(ctx, conn, database, stmt); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", firstLine(stmt), err)
		}
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+database+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
		}
		done[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	var applied []int
	for i, m := range migrations {
		if done[m.Version] {
			continue
		}
		for _, stmt := range m.Statements {
			sql, err := schemas.Render(stmt, database)
			if err != nil {
				return applied, err
			}
			if err := run(ctx, conn, database, sql); err != nil && !droppedLater(err, migrations[i+1:], database) {
				return applied, fmt.Errorf("migration %04d_%s: %s: %w", m.Version, m.Name, firstLine(sql), err)
			}
		}
		if err := record(ctx, conn, database, m); err != nil {
			return applied, fmt.Errorf("migration %04d_%s: record: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
		for _, p := range progress {
			p(m)
		}
	}
	return applied, nil
}

// unknownTableRE reads the table of ClickHouse's UNKNOWN_TABLE message (18.16: "Table db.t
// doesn't exist."; current releases: "Table db.t does not exist").
var unknownTableRE = regexp.MustCompile(`Table ([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*) does(?:n't| not) exist`)

// droppedLater reports whether err says a table is missing that one of the later migrations drops
// (DROP TABLE IF EXISTS): a concurrent migrate is already past that migration (0008 drops the
// index 0007 creates and fills), so the statement, which only built what is dropped, is moot. The
// run goes on and applies the later migrations itself.
func droppedLater(err error, later []schemas.Migration, database string) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 60 {
		return false
	}
	m := unknownTableRE.FindStringSubmatch(ex.Message)
	if m == nil || m[1] != database {
		return false
	}
	table := strings.TrimSuffix(m[2], "_local") // in cluster mode the local twin may be named
	for _, l := range later {
		for _, stmt := range l.Statements {
			sql, _ := schemas.Render(stmt, database)
			if d := dropTableRE.FindStringSubmatch(sql); d != nil && d[1] == database && d[2] == table {
				return true
			}
		}
	}
	return false
}

// addColumnRE matches the one form of ALTER the migrations use: one ADD COLUMN per statement.
var addColumnRE = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)\s`)

// ClickHouse error codes that a concurrent migrate causes when it got there first: the column,
// table or database now exists, which is what the statement was for.
var alreadyDone = map[int32]bool{
	44: true, // ILLEGAL_COLUMN: "Cannot add column ...: column with this name already exists"
	57: true, // TABLE_ALREADY_EXISTS
	82: true, // DATABASE_ALREADY_EXISTS
}

// apply runs one migration statement so that it can be run again after a crash at any point and
// concurrently with another migrate: CREATE statements say IF NOT EXISTS; an ADD COLUMN is skipped
// when system.columns has the column (18.16 has no ADD COLUMN IF NOT EXISTS); and an error saying
// another run created the object first counts as done once the object is there.
func apply(ctx context.Context, conn driver.Conn, database, sql string) error {
	m := addColumnRE.FindStringSubmatch(sql)
	if m != nil {
		exists, err := hasColumn(ctx, conn, m[1], m[2], m[3])
		if err != nil || exists {
			return err
		}
	}
	err := conn.Exec(ctx, sql)
	var ex *clickhouse.Exception
	if err == nil || !errors.As(err, &ex) || !alreadyDone[ex.Code] {
		return err
	}
	if m != nil {
		if exists, cerr := hasColumn(ctx, conn, m[1], m[2], m[3]); cerr != nil || !exists {
			return err
		}
	}
	return nil
}

func hasColumn(ctx context.Context, conn driver.Conn, database, table, column string) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
		database, table, column).Scan(&n); err != nil {
		return false, fmt.Errorf("read system.columns: %w", err)
	}
	return n > 0, nil
}

// record notes m as applied. It uses a batch: on ClickHouse 18.16 an INSERT ... VALUES sent through
// Exec with arguments never completes.
func record(ctx context.Context, conn driver.Conn, database string, m schemas.Migration) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+database+".schema_migrations (version, name, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name, time.Now().UTC().Truncate(time.Second)); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
