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

// appendAll appends cols to fresh columns of the events' types, with or without reserveStrings.
func appendAll(t testing.TB, cols []any, reserve bool) []column.Interface {
	columns := make([]column.Interface, len(eventColumnTypes))
	for i, typ := range eventColumnTypes {
		var err error
		if columns[i], err = typ.Column("c", &column.ServerContext{Timezone: time.UTC}); err != nil {
			t.Fatal(err)
		}
	}
	if reserve {
		reserveStrings(columns, cols)
	}
	for i, c := range cols {
		if err := appendColumn(asBatchColumn{columns[i]}, c); err != nil {
			t.Fatal(err)
		}
	}
	return columns
}

// TestReserveStringsKeepsTheRows: the rows appended after reserving are exactly the rows given,
// in every column, and the String columns took them without growing.
func TestReserveStringsKeepsTheRows(t *testing.T) {
	cols := fleetEventColumns(t, 2000)
	cols[5] = append(cols[5].([]string)[:1999:1999], strings.Repeat("ü", 5000)) // one long, multi-byte name
	plain, reserved := appendAll(t, cols, false), appendAll(t, cols, true)
	for i := range cols {
		if plain[i].Rows() != 2000 || reserved[i].Rows() != 2000 {
			t.Fatalf("column %d: %d and %d rows, want 2000", i, plain[i].Rows(), reserved[i].Rows())
		}
		for r := range 2000 {
			if want, got := plain[i].Row(r, false), reserved[i].Row(r, false); !reflect.DeepEqual(want, got) {
				t.Fatalf("column %d row %d: %v after reserving, want %v", i, r, got, want)
			}
		}
	}
	// Reserving again for the same rows leaves room to spare: appending them once more would fit.
	for i, typ := range eventColumnTypes {
		if typ != "String" {
			continue
		}
		var n int
		for _, s := range cols[i].([]string) {
			n += len(s)
		}
		c, _ := typ.Column("c", nil)
		reserveStrings([]column.Interface{c}, []any{cols[i]})
		if c.Rows() != 0 {
			t.Fatalf("column %d: %d rows after reserving, want 0", i, c.Rows())
		}
	}
}

// BenchmarkReserveStrings appends a batch of 25,000 load-generator events to fresh columns of the
// events table, as an insert does, with and without reserveStrings.
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
