package chdbcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// step is one statement as it reached ClickHouse 18.16, and what 18.16 answered.
type step struct {
	Kind     string     `json:"kind"`           // exec, query or insert
	Database string     `json:"database"`       // the connection's current database
	SQL      string     `json:"sql"`            // the text clickhouse-go sent, parameters bound
	Data     string     `json:"data,omitempty"` // an insert's block, as JSONCompactEachRow lines
	External []external `json:"external,omitempty"`

	Origin string  `json:"origin"`                 // the code path that sent it
	Rows   [][]any `json:"answer_18_16,omitempty"` // 18.16's answer as the code scanned it (see canonical)
	err    error   // 18.16's error, or a capture failure
}

// external is an external-data table sent with a statement.
type external struct {
	Name      string `json:"name"`
	Structure string `json:"structure"`
	Data      string `json:"data"`
}

// recorder records the statements of the capturing connections it opens, in order. It is also their
// clickhouse-go logger: clickhouse-go logs each statement's final text ("sending query") while it
// sends it. Statements are serialised so that each is paired with its own log record.
type recorder struct {
	mu     sync.Mutex // held for the duration of one statement's call
	steps  []*step
	origin string

	logMu sync.Mutex
	sent  []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "sending query" {
		return nil
	}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key != "query" {
			return true
		}
		r.logMu.Lock()
		r.sent = append(r.sent, a.Value.String())
		r.logMu.Unlock()
		return false
	})
	return nil
}

// open returns a capturing connection to addr with database as its current one, opened as
// chdb opens Tributary's (native protocol, LZ4), with the recorder as its logger.
func (r *recorder) open(t *testing.T, addr, database string) *captureConn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         []string{addr},
		Auth:         clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout:  5 * time.Second,
		MaxOpenConns: 4,
		MaxIdleConns: 4,
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		Logger:       slog.New(r),
	})
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &captureConn{Conn: conn, rec: r, database: database}
}

// at names the code path that sends the next statements.
func (r *recorder) at(origin string) {
	r.mu.Lock()
	r.origin = origin
	r.mu.Unlock()
}

// begin starts a statement: it takes the lock that end releases.
func (r *recorder) begin(ctx context.Context, kind, database string) *step {
	r.mu.Lock()
	r.logMu.Lock()
	r.sent = nil
	r.logMu.Unlock()
	s := &step{Kind: kind, Database: database, Origin: r.origin}
	tables, err := externalTables(ctx)
	if err != nil {
		s.err = err
	}
	for _, tbl := range tables {
		data, err := encodeBlock(tbl.Block().Columns)
		if err != nil {
			s.err = fmt.Errorf("external table %s: %w", tbl.Name(), err)
		}
		s.External = append(s.External, external{Name: tbl.Name(), Structure: tbl.Structure(), Data: data})
	}
	return s
}

// end pairs s with the text clickhouse-go logged for it, records it unless keep is false (a batch
// is recorded when it is sent), and releases the lock.
func (r *recorder) end(s *step, sql string, err error, keep bool) {
	defer r.mu.Unlock()
	r.logMu.Lock()
	sent := r.sent
	r.logMu.Unlock()
	switch {
	case len(sent) == 1:
		s.SQL = sent[0]
	case err == nil:
		err = fmt.Errorf("clickhouse-go logged %d statements for one call of %q", len(sent), sql)
	default:
		s.SQL = sql // never sent (the error says why)
	}
	if s.err == nil {
		s.err = err
	}
	if keep {
		r.steps = append(r.steps, s)
	}
}

func (r *recorder) add(s *step) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

// captureConn is a driver.Conn that records what it sends (see recorder). The calls Tributary does
// not use fail, so that a new use is noticed here.
type captureConn struct {
	driver.Conn
	rec      *recorder
	database string
}

var errNotCaptured = errors.New("chdbcheck: this call is not captured; teach captureConn about it")

func (c *captureConn) Exec(ctx context.Context, sql string, args ...any) error {
	s := c.rec.begin(ctx, "exec", c.database)
	err := c.Conn.Exec(ctx, sql, args...)
	c.rec.end(s, sql, err, true)
	return err
}

func (c *captureConn) Query(ctx context.Context, sql string, args ...any) (driver.Rows, error) {
	s := c.rec.begin(ctx, "query", c.database)
	rows, err := c.Conn.Query(ctx, sql, args...)
	c.rec.end(s, sql, err, true)
	if err != nil {
		return nil, err
	}
	return &captureRows{Rows: rows, step: s}, nil
}

func (c *captureConn) QueryRow(ctx context.Context, sql string, args ...any) driver.Row {
	s := c.rec.begin(ctx, "query", c.database)
	row := c.Conn.QueryRow(ctx, sql, args...)
	c.rec.end(s, sql, row.Err(), true)
	return &captureRow{Row: row, step: s}
}

func (c *captureConn) PrepareBatch(ctx context.Context, sql string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	s := c.rec.begin(ctx, "insert", c.database)
	b, err := c.Conn.PrepareBatch(ctx, sql, opts...)
	c.rec.end(s, sql, err, err != nil)
	if err != nil {
		return nil, err
	}
	return &captureBatch{Batch: b, rec: c.rec, step: s}, nil
}

func (c *captureConn) Select(context.Context, any, string, ...any) error { return errNotCaptured }
func (c *captureConn) AsyncInsert(context.Context, string, bool, ...any) error {
	return errNotCaptured
}

type captureRows struct {
	driver.Rows
	step *step
}

func (r *captureRows) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return err
	}
	r.step.Rows = append(r.step.Rows, canonicalRow(dest))
	return nil
}

func (r *captureRows) ScanStruct(any) error { return errNotCaptured }

type captureRow struct {
	driver.Row
	step *step
}

func (r *captureRow) Scan(dest ...any) error {
	if err := r.Row.Scan(dest...); err != nil {
		return err
	}
	r.step.Rows = append(r.step.Rows, canonicalRow(dest))
	return nil
}

type captureBatch struct {
	driver.Batch
	rec  *recorder
	step *step
}

// Send records the block as it is about to be sent, then sends it.
func (b *captureBatch) Send() error {
	data, err := encodeBlock(b.Batch.Columns())
	b.step.Data = data
	serr := b.Batch.Send()
	if b.step.err == nil {
		b.step.err = errors.Join(err, serr)
	}
	b.rec.add(b.step)
	return serr
}

// optionsKey is the context key under which clickhouse.Context keeps the QueryOptions. It is
// unexported, so it is found by handing clickhouse.Context a context that notes what it asks for.
var optionsKey = sync.OnceValue(func() any {
	spy := &keySpy{Context: context.Background()}
	clickhouse.Context(spy)
	return spy.key
})

type keySpy struct {
	context.Context
	key any
}

func (k *keySpy) Value(key any) any {
	k.key = key
	return nil
}

// externalTables returns the external-data tables that clickhouse-go sends with a statement run
// with ctx (clickhouse.WithExternalTable). clickhouse-go keeps them in an unexported field of its
// QueryOptions, read here with reflect.
func externalTables(ctx context.Context) ([]*ext.Table, error) {
	opts, ok := ctx.Value(optionsKey()).(clickhouse.QueryOptions)
	if !ok {
		return nil, nil
	}
	f := reflect.ValueOf(&opts).Elem().FieldByName("external")
	if !f.IsValid() || f.Type() != reflect.TypeOf([]*ext.Table(nil)) {
		return nil, errors.New("clickhouse-go's QueryOptions has no field external []*ext.Table any more: update externalTables")
	}
	return *(*[]*ext.Table)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// encodeBlock writes the rows of a block as JSONCompactEachRow lines, in the values' ClickHouse
// text forms: DateTime as Unix seconds, nan and inf quoted.
func encodeBlock(cols []column.Interface) (string, error) {
	if len(cols) == 0 {
		return "", nil
	}
	var b strings.Builder
	for i := range cols[0].Rows() {
		b.WriteByte('[')
		for j, c := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			if err := appendJSON(&b, reflect.ValueOf(c.Row(i, false))); err != nil {
				return "", fmt.Errorf("column %s row %d: %w", c.Name(), i, err)
			}
		}
		b.WriteString("]\n")
	}
	return b.String(), nil
}

var timeType = reflect.TypeOf(time.Time{})

func appendJSON(b *strings.Builder, v reflect.Value) error {
	if !v.IsValid() {
		b.WriteString("null")
		return nil
	}
	if v.Type() == timeType {
		b.WriteString(strconv.FormatInt(v.Interface().(time.Time).Unix(), 10))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return fmt.Errorf("%q is not UTF-8, which JSON cannot carry", v.String())
		}
		q, _ := json.Marshal(v.String())
		b.Write(q)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(floatText(v.Float(), true))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Slice, reflect.Array:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendJSON(b, v.Index(i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case reflect.Pointer, reflect.Interface:
		return appendJSON(b, v.Elem())
	default:
		return fmt.Errorf("no JSON form for %s", v.Type())
	}
	return nil
}

// floatText is f as ClickHouse writes it in JSON with output_format_json_quote_denormals (nan and
// inf quoted), or unquoted for canonical values.
func floatText(f float64, quote bool) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	switch {
	case math.IsNaN(f):
		s = "nan"
	case math.IsInf(f, 1):
		s = "inf"
	case math.IsInf(f, -1):
		s = "-inf"
	default:
		return s
	}
	if quote {
		return `"` + s + `"`
	}
	return s
}
