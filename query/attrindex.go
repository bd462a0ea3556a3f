package query

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/tributary/tributary/schemas"
)

// pageByAttr finds the page of an event filter with attribute conditions in the attribute index
// (events_by_attr_hash, one row per event and attribute, ordered by tenant, the attribute's hash
// cityHash64(key, value) and time) instead of scanning events: the index rows of the filter's
// attributes that satisfy its other conditions, grouped by event and kept when the event has
// every one of the attributes, give the page's (tenant, type, timestamp, event_id), in the page's
// order. The events are then read from events, which checks the attributes themselves (see
// eventsByKey).
//
// ClickHouse 18.16 sorts every matching row before applying LIMIT, so a frequent value (a
// four-valued region across 10M events) would cost a sort of millions of rows. It therefore
// reads a time window at the page's end of the range first, sized from the row count of the
// filter's first attribute (in sorted key order) so that it probably holds the page, and widens it
// eightfold until it holds the page or covers the whole range. A window holding a full page holds
// exactly the first rows of the whole range.
func (s *Server) pageByAttr(ctx context.Context, f Filter) ([]eventRef, error) {
	keys := slices.Sorted(maps.Keys(f.Attributes))
	db := s.cfg.ClickHouse.Database

	// The first attribute's rows and time span within the requested range (cheap: key columns only).
	stat := Filter{Start: f.Start, End: f.End, scope: f.scope}
	cond, args := where(stat, "events")
	cond = andCond(cond, "attr_hash = cityHash64(?, ?)")
	args = append(args, keys[0], f.Attributes[keys[0]])
	var n uint64
	var lo, hi uint64
	if err := s.conn.QueryRow(ctx, "SELECT count(), min(timestamp_us), max(timestamp_us) FROM "+db+".events_by_attr_hash"+cond, args...).
		Scan(&n, &lo, &hi); err != nil {
		return nil, fmt.Errorf("query events by attribute: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	hi++ // exclusive
	need := uint64(f.Offset + f.Limit)
	frac := min(1.0, 4*float64(need)/float64(n))

	// The filter's other conditions apply to the index's own columns (type, name, span_id, time).
	other := f
	other.Attributes = nil
	hashes := make([]string, len(keys))
	var hargs []any
	for i, k := range keys {
		hashes[i] = "attr_hash = cityHash64(?, ?)"
		hargs = append(hargs, k, f.Attributes[k])
	}
	var refs []eventRef
	for {
		w := other
		width := uint64(float64(hi-lo) * frac)
		if frac < 1 {
			// Window [a, b) in microseconds, at the end of the range the page starts from.
			a, b := lo, lo+width
			if f.Descending {
				a, b = hi-width, hi
			}
			w.Start, w.End = time.UnixMicro(int64(a)), time.UnixMicro(int64(b))
			if !f.Start.IsZero() && w.Start.Before(f.Start) {
				w.Start = f.Start
			}
			if !f.End.IsZero() && w.End.After(f.End) {
				w.End = f.End
			}
		}
		cond, args := where(w, "events")
		cond = andCond(cond, "("+strings.Join(hashes, " OR ")+")")
		args = append(args, hargs...)
		tail, targs := orderLimit(f, "event_id")
		// Replays of an event repeat its index rows until ClickHouse merges them: count each
		// attribute once.
		var err error
		refs, err = s.eventRefs(ctx, "SELECT tenant, type, timestamp, event_id, timestamp_us FROM "+db+".events_by_attr_hash"+cond+
			" GROUP BY tenant, type, timestamp, event_id, timestamp_us HAVING uniqExact(attr_hash) = ?"+tail,
			append(append(args, len(keys)), targs...))
		if err != nil {
			return nil, err
		}
		if len(refs) >= f.Limit || frac >= 1 {
			break
		}
		frac = min(1, frac*8)
	}
	return refs, nil
}

// eventRef is an event's sorting key in events.
type eventRef struct {
	tenant, typ, id string
	ts              time.Time
}

// eventRefs runs sql, which selects tenant, type, timestamp, event_id and timestamp_us (which DISTINCT
// with ORDER BY needs), in the page's order.
func (s *Server) eventRefs(ctx context.Context, sql string, args []any) ([]eventRef, error) {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var refs []eventRef
	for rows.Next() {
		var r eventRef
		var us uint64
		if err := rows.Scan(&r.tenant, &r.typ, &r.ts, &r.id, &us); err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		refs = append(refs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return refs, nil
}

// eventsByKey reads the events of refs from events by its sorting key, in the page's order. The
// refs travel as an external table (sent beside the statement in the native protocol), so the
// statement's size does not grow with the page: a literal IN list of 10,000 UUID keys passed
// ClickHouse's max_query_size (256 KiB) at about 2,800 rows.
func (s *Server) eventsByKey(ctx context.Context, refs []eventRef, descending bool) ([]EventJSON, error) {
	if len(refs) == 0 {
		return []EventJSON{}, nil
	}
	tbl, err := ext.NewTable("page_refs", ext.Column("tenant", "String"), ext.Column("type", "String"),
		ext.Column("timestamp", "DateTime"), ext.Column("event_id", "String"))
	if err != nil {
		return nil, fmt.Errorf("query events: page keys: %w", err)
	}
	for _, r := range refs {
		if err := tbl.Append(r.tenant, r.typ, r.ts, r.id); err != nil {
			return nil, fmt.Errorf("query events: page keys: %w", err)
		}
	}
	dir := "ASC"
	if descending {
		dir = "DESC"
	}
	sql := eventColumns + s.cfg.ClickHouse.Database + ".events FINAL WHERE (tenant, type, timestamp, event_id) IN" +
		" (SELECT tenant, type, timestamp, event_id FROM page_refs) ORDER BY timestamp_us " + dir + ", event_id " + dir
	return s.readEvents(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), sql, nil)
}

// haveAttributes reports whether every event has every attribute of attrs, compared as the
// attr_values column holds them (flattened text). The attribute index finds events by a hash of
// each attribute; this tells a page that a collision put a wrong event in from a right one,
// without reading the events' attribute arrays in ClickHouse (which cost the index read about a
// third more at 10M events).
func haveAttributes(events []EventJSON, attrs map[string]string) bool {
	for _, e := range events {
		parsed, err := schemas.ParseAttributesJSON(e.Attributes)
		if err != nil {
			return false
		}
		keys, values := schemas.FlattenAttributes(parsed)
		for k, want := range attrs {
			i, found := slices.BinarySearch(keys, k)
			if !found || values[i] != want {
				return false
			}
		}
	}
	return true
}

// andCond adds c to a WHERE clause built by where.
func andCond(cond, c string) string {
	if cond == "" {
		return " WHERE " + c
	}
	return cond + " AND " + c
}
