package chdb

import (
	"errors"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/tributary/tributary/schemas"
)

// A statement that fails because a table is missing is moot when a later migration drops that
// table (a concurrent migrate got there first); any other missing table, or another error, is
// still an error.
func TestDroppedLater(t *testing.T) {
	migrations, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var after7 []schemas.Migration
	for _, m := range migrations {
		if m.Version > 7 {
			after7 = append(after7, m)
		}
	}
	missing := func(msg string) error { return &clickhouse.Exception{Code: 60, Message: msg} }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{missing("Table db.events_by_attr_hash doesn't exist."), true},       // 18.16, dropped by 0008
		{missing("Table db.events_by_attr_hash_local does not exist"), true}, // current release, cluster mode
		{missing("Table db.events_by_trace doesn't exist."), true},           // dropped by 0009
		{missing("Table db.events doesn't exist."), false},                   // nothing later drops it
		{missing("Table other.events_by_attr_hash doesn't exist."), false},   // another database
		{&clickhouse.Exception{Code: 57, Message: "Table db.events_by_attr_hash doesn't exist."}, false},
		{errors.New("Table db.events_by_attr_hash doesn't exist."), false}, // not from ClickHouse
	} {
		if got := droppedLater(c.err, after7, "db"); got != c.want {
			t.Errorf("%v: %v, want %v", c.err, got, c.want)
		}
	}
	if droppedLater(missing("Table db.events_by_attr_hash doesn't exist."), nil, "db") {
		t.Error("with no later migration, a missing table is an error")
	}
}
