package chdb_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/chdb"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

func TestMigrateIsIdempotent(t *testing.T) {
	cfg := testenv.ClickHouse(t) // migrated once already
	conn := testenv.OpenClickHouse(t, cfg)
	ctx := context.Background()
	applied, err := chdb.Migrate(ctx, conn, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v again", applied)
	}
	for _, table := range []string{"events", "events_trace_index", "events_trace_index_mv", "events_attr_index", "events_attr_index_mv", "metrics", "rollups", "schema_migrations"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s.%s missing", cfg.Database, table)
		}
	}
	for _, table := range []string{"events_by_attr", "events_by_attr_mv", "events_by_attr_hash", "events_by_attr_hash_mv", "events_by_trace", "events_by_trace_mv"} { // replaced by events_by_attr_hash (0007), then events_attr_index (0008); events_trace_index (0009)
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("table %s.%s still there", cfg.Database, table)
		}
	}
	if _, err := chdb.Migrate(ctx, conn, "bad-name; DROP"); err == nil {
		t.Fatal("a bad database name was accepted")
	}
}

// schemaOf describes database's tables and columns, for comparing two databases.
func schemaOf(t *testing.T, conn driver.Conn, database string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT table, name, type, default_expression FROM system.columns WHERE database = ? ORDER BY table, name", database)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var table, name, typ, def string
		if err := rows.Scan(&table, &name, &typ, &def); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s.%s %s %s\n", table, name, typ, def)
	}
	var engines []string
	trows, err := conn.Query(context.Background(), "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name", database)
	if err != nil {
		t.Fatal(err)
	}
	defer trows.Close()
	for trows.Next() {
		var name, engine string
		if err := trows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		engines = append(engines, name+" "+engine)
	}
	return b.String() + strings.Join(engines, "\n")
}

// freshDatabase returns a database name that does not exist yet, dropped when the test ends.
func freshDatabase(t *testing.T, conn driver.Conn) string {
	db := testenv.Unique("mig")
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	return db
}

// Four migrate runs at once on a new database all succeed and leave the schema one run leaves.
func TestMigrateConcurrently(t *testing.T) {
	ref := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, ref)
	want := schemaOf(t, conn, ref.Database)
	for round := range 3 {
		db := freshDatabase(t, conn)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = chdb.Migrate(context.Background(), conn, db)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent migrate %d: %v", round, i, err)
			}
		}
		if got := schemaOf(t, conn, db); got != want {
			t.Fatalf("round %d: schema after concurrent migrates:\n%s\nwant:\n%s", round, got, want)
		}
	}
}

// A migrate that died after any statement (before recording its migration) is completed by the
// next run, which leaves the same schema as an uninterrupted one.
func TestMigrateAfterACrashBetweenAnyTwoStatements(t *testing.T) {
	ref := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, ref)
	want := schemaOf(t, conn, ref.Database)
	migrations, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, m := range migrations {
		stmts = append(stmts, m.Statements...)
	}
	ctx := context.Background()
	for k := 1; k <= len(stmts); k++ {
		db := freshDatabase(t, conn)
		if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range stmts[:k] { // what the crashed run did
			sql, _ := schemas.Render(stmt, db)
			if err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("statement %d: %v", k, err)
			}
		}
		if _, err := chdb.Migrate(ctx, conn, db); err != nil {
			t.Fatalf("migrate after a crash after statement %d of %d: %v", k, len(stmts), err)
		}
		if got := schemaOf(t, conn, db); got != want {
			t.Fatalf("crash after statement %d: schema\n%s\nwant:\n%s", k, got, want)
		}
	}
}

// A database that events reached before migration 0007 gets them in the new attribute index: the
// upgrade indexes every stored event's attributes and drops the old index.
func TestMigrateIndexesStoredEventsByAttributeHash(t *testing.T) {
	ref := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, ref)
	ctx := context.Background()
	migrations, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := freshDatabase(t, conn)
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		if m.Version >= 7 {
			break
		}
		for _, stmt := range m.Statements {
			sql, _ := schemas.Render(stmt, db)
			if err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("migration %d: %v", m.Version, err)
			}
		}
	}
	// 1,000 events of three attributes each, stored before the upgrade.
	if err := conn.Exec(ctx, "INSERT INTO "+db+".events (tenant, event_id, type, name, timestamp, timestamp_us, attr_keys, attr_values) "+
		"SELECT 'acme', toString(number), 'node_failed', 'n', toDateTime(1764000000 + number), (1764000000 + number) * 1000000, "+
		"['host', 'region', 'n'], [concat('h', toString(number % 10)), ['eu', 'us'][number % 2 + 1], toString(number)] FROM system.numbers LIMIT 1000"); err != nil {
		t.Fatal(err)
	}
	if _, err := chdb.Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	var rows, eu, h3eu uint64
	if err := conn.QueryRow(ctx, "SELECT count(), countIf(attr_hash = cityHash64('region', 'eu')), "+
		"(SELECT count() FROM (SELECT event_hash FROM "+db+".events_attr_index WHERE attr_hash IN (cityHash64('host', 'h3'), cityHash64('region', 'us')) "+
		"GROUP BY event_hash HAVING uniqExact(attr_hash) = 2)) FROM "+db+".events_attr_index FINAL").Scan(&rows, &eu, &h3eu); err != nil {
		t.Fatal(err)
	}
	if rows != 3000 || eu != 500 || h3eu != 100 {
		t.Errorf("after the upgrade the index has %d rows (want 3000), %d of region=eu (want 500), %d events of host=h3 and region=us (want 100)", rows, eu, h3eu)
	}
	var old uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('events_by_attr', 'events_by_attr_mv', 'events_by_attr_hash', 'events_by_attr_hash_mv')", db).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if old != 0 {
		t.Errorf("the old attribute index is still there (%d tables)", old)
	}
}
