package consumer

import (
	"context"
	"fmt"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/schemas"
)

// ClickHouseStore is the Store of a ClickHouse database: a batch's raw rows go to the events and
// metrics tables with columnar inserts (Write), rollup windows to the rollups table (LoadWindows,
// LatestWindows, WriteWindows in rollupstore.go). Safe for concurrent use, as its connection is.
type ClickHouseStore struct {
	conn     driver.Conn
	database string
	suffix   string // appended to the raw tables' names: "_local" for Local

	replicasMu sync.Mutex
	replicas   *[][]replica // once known: the replicas of each shard (nil: one server)

	remoteUser, remotePassword string // the account remote() reads replicas as (see ReadReplicasAs)
}

// NewClickHouseStore returns a store writing to database's tables through conn.
func NewClickHouseStore(conn driver.Conn, database string) (*ClickHouseStore, error) {
	if !schemas.ValidIdentifier(database) {
		return nil, fmt.Errorf("clickhouse database %q: not a valid identifier", database)
	}
	return &ClickHouseStore{conn: conn, database: database}, nil
}

// ReadReplicasAs sets the account the store reads rollup windows from each replica as, on a
// cluster (remote(), see replicas.go): the consumer's own (chdb.Config User and Password).
// Without it remote() connects as "default", which a server may not have (the official image
// with CLICKHOUSE_USER set has none). Call it before the store is used; it returns s.
func (s *ClickHouseStore) ReadReplicasAs(user, password string) *ClickHouseStore {
	s.remoteUser, s.remotePassword = user, password
	return s
}

// Local returns a store whose Write inserts into each raw table's shard-local twin (events_local,
// metrics_local) of a cluster-mode database, for a connection to one server of a shard: the write
// path that skips the Distributed table (make bench's cluster scenario compares the two; the
// worker writes through the Distributed tables).
func (s *ClickHouseStore) Local() *ClickHouseStore {
	return &ClickHouseStore{conn: s.conn, database: s.database, suffix: "_local"}
}

// The column lists are spelled out: ClickHouse 18.16 refuses a batch INSERT without them.
const (
	eventColumns = "tenant, event_id, trace_id, span_id, type, name, timestamp, timestamp_us, attributes, " +
		"attr_keys, attr_values, service, host, ingested_at"
	metricColumns = "tenant, metric_id, trace_id, name, value, unit, aggregation_type, timestamp, timestamp_us, " +
		"attributes, attr_keys, attr_values, service, host, ingested_at, value_count, value_min, value_max, bucket_bounds, " +
		"bucket_counts, exp_scale, exp_zero_count, exp_zero_threshold, exp_positive_offset, exp_positive_counts, " +
		"exp_negative_offset, exp_negative_counts"
)

// Write inserts the batch's events and its metrics, the two at once (on two connections: the
// batch is stored when the slower one is, not after both in turn). A kind already written in an
// earlier attempt of the same batch is not written again; when both fail, the events' error is
// returned.
func (s *ClickHouseStore) Write(ctx context.Context, b *Batch) error {
	var evErr error
	var wg sync.WaitGroup
	if len(b.Events.EventID) > 0 && !b.eventsWritten {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &b.Events
			if evErr = s.insert(ctx, "events", eventColumns, c.Tenant, c.EventID, c.TraceID, c.SpanID, c.Type, c.Name,
				c.Timestamp, c.TimestampUS, c.Attributes, c.AttrKeys, c.AttrValues, c.Service, c.Host, c.IngestedAt); evErr == nil {
				b.eventsWritten = true
			}
		}()
	}
	var mErr error
	if len(b.Metrics.MetricID) > 0 && !b.metricsWritten {
		c, h := &b.Metrics, &b.Metrics.Hist
		if mErr = s.insert(ctx, "metrics", metricColumns, c.Tenant, c.MetricID, c.TraceID, c.Name, c.Value, c.Unit,
			c.AggregationType, c.Timestamp, c.TimestampUS, c.Attributes, c.AttrKeys, c.AttrValues, c.Service, c.Host, c.IngestedAt,
			h.Count, h.Min, h.Max, h.Bounds, h.Counts, h.ExpScale, h.ExpZeroCount, h.ExpZeroThreshold, h.ExpPosOffset, h.ExpPositive,
			h.ExpNegOffset, h.ExpNegative); mErr == nil {
			b.metricsWritten = true
		}
	}
	wg.Wait()
	if evErr != nil {
		return evErr
	}
	return mErr
}

func (s *ClickHouseStore) insert(ctx context.Context, table, columns string, cols ...any) error {
	table += s.suffix
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.database+"."+table+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	reserveStrings(batch.Columns(), cols)
	for i, col := range cols {
		if err := appendColumn(batch.Column(i), col); err != nil {
			_ = batch.Abort()
			return Permanent(fmt.Errorf("insert into %s: column %d: %w", table, i, err))
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

// appendColumn appends a whole column. Array columns go in row by row: clickhouse-go's Append of
// a [][]T walks it by reflection, boxing every element through reflect.Value.Interface, where its
// AppendRow of a []T takes a typed path (measured on 50,000 rows of 5 strings: 16 ms against 23).
// Strings go in as pointers to them (appendStringRows).
func appendColumn(c driver.BatchColumn, col any) error {
	switch rows := col.(type) {
	case [][]string:
		return appendStringRows(c, rows)
	case [][]float64:
		return appendRows(c, rows)
	case [][]uint64:
		return appendRows(c, rows)
	case [][]int32:
		return appendRows(c, rows)
	}
	return c.Append(col)
}

// appendStringRows appends an Array(String) column row by row, each row as pointers to its strings
// (one reused slice): clickhouse-go's typed path for a []string boxes every string into an
// interface, one allocation each, where a *string fits an interface as it is. On 50,000 rows of 5
// strings: 1 allocation per row against 6, 14-18 ms against 22-27. (Each row's slice is still
// boxed once.)
func appendStringRows(c driver.BatchColumn, rows [][]string) error {
	var ptrs []*string
	for _, r := range rows {
		ptrs = ptrs[:0]
		for j := range r {
			ptrs = append(ptrs, &r[j])
		}
		if err := c.AppendRow(ptrs); err != nil {
			return err
		}
	}
	return nil
}

func appendRows[T any](c driver.BatchColumn, rows [][]T) error {
	for _, r := range rows {
		if err := c.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}

// reserveStrings gives each String and Array(String) column of an insert room for the bytes it is
// about to get, in one allocation. Otherwise each column's buffer grows as its rows go in (by a
// quarter at a time once large), copying itself several times over into fresh memory: in a
// profile of the worker, a fifth of its CPU (BenchmarkReserveStrings). The room is made by
// appending one string of that size and resetting the column, which keeps its capacity.
func reserveStrings(columns []column.Interface, cols []any) {
	for i, v := range cols {
		if i >= len(columns) {
			return
		}
		c := columns[i]
		var n int
		switch v := v.(type) {
		case []string:
			for _, s := range v {
				n += len(s)
			}
		case [][]string:
			for _, r := range v {
				for _, s := range r {
					n += len(s)
				}
			}
			a, ok := c.(*column.Array)
			if !ok {
				continue
			}
			c = a.Base()
		default:
			continue
		}
		if s, ok := c.(*column.String); ok && n > 0 && s.AppendRow(filler(n)) == nil {
			columns[i].Reset()
		}
	}
}

var (
	fillMu sync.Mutex
	fill   string // zero bytes, shared: strings are immutable
)

// filler returns a string of n bytes.
func filler(n int) string {
	fillMu.Lock()
	defer fillMu.Unlock()
	if len(fill) < n {
		fill = string(make([]byte, n+n/4))
	}
	return fill[:n]
}
