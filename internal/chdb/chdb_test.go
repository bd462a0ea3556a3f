package chdb_test

import (
	"context"
	"testing"

	"github.com/tributary/tributary/internal/chdb"
	"github.com/tributary/tributary/internal/testenv"
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
	for _, table := range []string{"events", "events_by_trace", "events_by_trace_mv", "events_by_attr", "events_by_attr_mv", "metrics", "rollups", "schema_migrations"} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", cfg.Database, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s.%s missing", cfg.Database, table)
		}
	}
	if _, err := chdb.Migrate(ctx, conn, "bad-name; DROP"); err == nil {
		t.Fatal("a bad database name was accepted")
	}
}
