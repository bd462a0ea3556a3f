package consumer

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/tributary/tributary/internal/loadgen"
	"github.com/tributary/tributary/producer"
	"github.com/tributary/tributary/schemas"
)

// eventColumnTypes are the events table's column types, in eventColumns' order.
var eventColumnTypes = []column.Type{"String", "String", "String", "String", "String", "String", "DateTime", "UInt64",
	"String", "Array(String)", "Array(String)", "String", "String", "DateTime"}

// asBatchColumn adapts a column to the driver.BatchColumn that appendColumn takes.
type asBatchColumn struct{ c column.Interface }

func (a asBatchColumn) Append(v any) error    { _, err := a.c.Append(v); return err }
func (a asBatchColumn) AppendRow(v any) error { return a.c.AppendRow(v) }

// fleetEventColumns returns n of the load generator's events as a batch's columns.
func fleetEventColumns(t testing.TB, n int) []any {
	f := loadgen.NewFleet(50, 3)
	es := make([]schemas.Event, n)
	now := time.Now().UTC()
	for i := range es {
		es[i] = f.Event(now)
		es[i].EventID = producer.NewID()
		var err error
		if es[i].Attributes, err = schemas.NormalizeAttributes(es[i].Attributes); err != nil {
			t.Fatal(err)
		}
	}
	c := &NewBatch(es, nil, now).Events
	return []any{c.Tenant, c.EventID, c.TraceID, c.SpanID, c.Type, c.Name, c.Timestamp, c.TimestampUS, c.Attributes,
		c.AttrKeys, c.AttrValues, c.Service, c.Host, c.IngestedAt}
}

// appendAll appends cols to fresh columns of the events' types: as an insert does (reserveStrings,
// then appendColumn), or with clickhouse-go's own Append of each whole column.
func appendAll(t testing.TB, cols []any, asInsert bool) []column.Interface {
	columns := make([]column.Interface, len(eventColumnTypes))
	for i, typ := range eventColumnTypes {
		var err error
		if columns[i], err = typ.Column("c", &column.ServerContext{Timezone: time.UTC}); err != nil {
			t.Fatal(err)
		}
	}
	if asInsert {
		reserveStrings(columns, cols)
	}
	for i, c := range cols {
		var err error
		if asInsert {
			err = appendColumn(asBatchColumn{columns[i]}, c)
		} else {
			_, err = columns[i].Append(c)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return columns
}

// TestInsertColumnsKeepTheRows: the rows an insert appends (reserved, Array columns row by row,
// strings by pointer) are exactly the rows clickhouse-go's own whole-column Append makes, in every
// column.
func TestInsertColumnsKeepTheRows(t *testing.T) {
	cols := fleetEventColumns(t, 2000)
	cols[5] = append(cols[5].([]string)[:1999:1999], strings.Repeat("ü", 5000)) // one long, multi-byte name
	cols[9].([][]string)[7], cols[10].([][]string)[7] = []string{}, []string{}  // an event without attributes
	plain, reserved := appendAll(t, cols, false), appendAll(t, cols, true)
	for i := range cols {
		if plain[i].Rows() != 2000 || reserved[i].Rows() != 2000 {
			t.Fatalf("column %d: %d and %d rows, want 2000", i, plain[i].Rows(), reserved[i].Rows())
		}
		for r := range 2000 {
			if want, got := plain[i].Row(r, false), reserved[i].Row(r, false); !reflect.DeepEqual(want, got) {
				t.Fatalf("column %d row %d: %v as an insert appends it, want %v", i, r, got, want)
			}
		}
	}
	// Reserving leaves a column empty.
	for i, typ := range eventColumnTypes {
		if typ != "String" {
			continue
		}
		c, _ := typ.Column("c", nil)
		reserveStrings([]column.Interface{c}, []any{cols[i]})
		if c.Rows() != 0 {
			t.Fatalf("column %d: %d rows after reserving, want 0", i, c.Rows())
		}
	}
}

// BenchmarkReserveStrings appends a batch of 25,000 load-generator events to fresh columns of the
// events table with clickhouse-go's whole-column Append (grow) and as an insert does (reserved).
func BenchmarkReserveStrings(b *testing.B) {
	cols := fleetEventColumns(b, 25000)
	for _, reserve := range []bool{false, true} {
		name := "grow"
		if reserve {
			name = "reserved"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				appendAll(b, cols, reserve)
			}
		})
	}
}
