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

// pageByAttr answers an event filter with attribute conditions (and neither a trace nor a span
// id) from the attribute index (events_attr_index: one row per event and attribute, every column
// a hash or a time, ordered by the tenant's and the attribute's hash and time) instead of scanning
// events. The index rows of the filter's attributes that satisfy its other conditions, grouped by
// event and kept when the event has every one of the attributes, name the page's events by
// (tenant_hash, timestamp_us, event_hash); the events are then read from events, in the page's
// order, which is by (timestamp_us, event_id): the index orders events of one microsecond by
// their id's hash instead, so the page's first and last microsecond are read whole and the page
// is cut from them by id (see cutPage). It returns the page (up to f.Limit events) and false when
// the events read do not agree with the index (a hash collision put in an event the filter does
// not match, retention or new rows moved the page between two reads): the caller then answers
// from events alone, whose SQL checks every condition.
//
// ClickHouse 18.16 sorts every matching row before applying LIMIT, so a frequent value (a
// four-valued region across 10M events) would cost a sort of millions of rows. It therefore
// reads a time window at the page's end of the range first, sized from the row count of the
// filter's first attribute (in sorted key order) so that it probably holds the page, and widens it
// eightfold until it holds the page or covers the whole range. A window holding a full page holds
// exactly the first rows of the whole range.
func (s *Server) pageByAttr(ctx context.Context, f Filter) ([]EventJSON, bool, error) {
	keys := slices.Sorted(maps.Keys(f.Attributes))
	idx := s.cfg.ClickHouse.Database + ".events_attr_index"

	// The first attribute's rows and time span within the requested range (cheap: key columns only).
	stat := Filter{Start: f.Start, End: f.End, scope: f.scope}
	cond, args := indexWhere(stat)
	cond = andCond(cond, "attr_hash = cityHash64(?, ?)")
	args = append(args, keys[0], f.Attributes[keys[0]])
	var n uint64
	var lo, hi uint64
	if err := s.conn.QueryRow(ctx, "SELECT count(), min(timestamp_us), max(timestamp_us) FROM "+idx+cond, args...).
		Scan(&n, &lo, &hi); err != nil {
		return nil, false, fmt.Errorf("query events by attribute: %w", err)
	}
	if n == 0 {
		return []EventJSON{}, true, nil
	}
	hi++ // exclusive
	need := uint64(f.Offset + f.Limit)
	frac := min(1.0, 4*float64(need)/float64(n))

	hashes := make([]string, len(keys))
	var hargs []any
	for i, k := range keys {
		hashes[i] = "attr_hash = cityHash64(?, ?)"
		hargs = append(hargs, k, f.Attributes[k])
	}
	// matching is the events of w's range (and extra, a condition on timestamp_us) that have every
	// attribute, once each: replays of an event repeat its index rows until ClickHouse merges them.
	matching := func(w Filter, extra string, extraArgs ...any) (string, []any) {
		cond, args := indexWhere(w)
		cond = andCond(cond, "("+strings.Join(hashes, " OR ")+")")
		if extra != "" {
			cond = andCond(cond, extra)
		}
		args = append(append(args, hargs...), extraArgs...)
		return "SELECT tenant_hash, timestamp_us, event_hash FROM " + idx + cond +
			" GROUP BY tenant_hash, timestamp_us, event_hash HAVING uniqExact(attr_hash) = ?", append(args, len(keys))
	}
	dir := sortDir(f.Descending)
	var refs []attrRef
	for {
		w := f
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
		sql, args := matching(w, "")
		var err error
		refs, err = s.attrRefs(ctx, sql+" ORDER BY timestamp_us "+dir+", event_hash "+dir+" LIMIT ?, ?", append(args, f.Offset, f.Limit))
		if err != nil {
			return nil, false, err
		}
		if len(refs) >= f.Limit || frac >= 1 {
			break
		}
		frac = min(1, frac*8)
	}
	if len(refs) == 0 {
		return []EventJSON{}, true, nil
	}

	// The page's first and last microsecond whole, and how many matching events come before the
	// first (none when the page starts the range).
	first, last := refs[0].us, refs[len(refs)-1].us
	sql, bargs := matching(f, "timestamp_us IN (?, ?)", first, last)
	edges, err := s.attrRefs(ctx, sql+" LIMIT ?", append(bargs, maxEdgeEvents+1))
	if err != nil {
		return nil, false, err
	}
	if len(edges) > maxEdgeEvents {
		return nil, false, nil // a microsecond with that many events: answer from events
	}
	var before uint64
	if f.Offset > 0 {
		op := "<"
		if f.Descending {
			op = ">"
		}
		sql, cargs := matching(f, "timestamp_us "+op+" ?", first)
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM ("+sql+")", cargs...).Scan(&before); err != nil {
			return nil, false, fmt.Errorf("query events by attribute: %w", err)
		}
	}
	want := edges
	for _, r := range refs {
		if r.us != first && r.us != last {
			want = append(want, r)
		}
	}
	events, err := s.eventsByRef(ctx, want, f)
	if err != nil {
		return nil, false, err
	}
	if len(events) != len(want) || !matchFilter(events, f) {
		return nil, false, nil
	}
	page, ok := cutPage(events, f.Offset-int(before), f.Limit)
	return page, ok, nil
}

// maxEdgeEvents bounds the events of one microsecond that pageByAttr reads to order a page's
// edge by id; past it the page is answered from events.
const maxEdgeEvents = 100_000

// cutPage returns the limit events from skip of events, which are the page's events in its order
// from the first event of its first microsecond (skip: how many of those come before the page).
// It returns false when skip is outside events (the index and events disagree).
func cutPage(events []EventJSON, skip, limit int) ([]EventJSON, bool) {
	if skip < 0 || skip >= len(events) {
		return nil, false
	}
	return events[skip:min(len(events), skip+limit)], true
}

// attrRef names an event in the attribute index.
type attrRef struct {
	tenant, us, event uint64 // tenant_hash, timestamp_us, event_hash
}

// attrRefs runs sql, which selects tenant_hash, timestamp_us and event_hash.
func (s *Server) attrRefs(ctx context.Context, sql string, args []any) ([]attrRef, error) {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query events by attribute: %w", err)
	}
	defer rows.Close()
	var refs []attrRef
	for rows.Next() {
		var r attrRef
		if err := rows.Scan(&r.tenant, &r.us, &r.event); err != nil {
			return nil, fmt.Errorf("query events by attribute: %w", err)
		}
		refs = append(refs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events by attribute: %w", err)
	}
	return refs, nil
}

// eventsByRef reads the events refs name from events, in f's order (timestamp_us, then
// event_id). The refs travel as an external table; the time range of the refs (and the tenant of
// a scoped request) bound the read with the sorting key and partitions.
func (s *Server) eventsByRef(ctx context.Context, refs []attrRef, f Filter) ([]EventJSON, error) {
	tbl, err := ext.NewTable("page_refs", ext.Column("tenant_hash", "UInt64"), ext.Column("timestamp_us", "UInt64"),
		ext.Column("event_hash", "UInt64"))
	if err != nil {
		return nil, fmt.Errorf("query events: page keys: %w", err)
	}
	lo, hi := refs[0].us, refs[0].us
	for _, r := range refs {
		if err := tbl.Append(r.tenant, r.us, r.event); err != nil {
			return nil, fmt.Errorf("query events: page keys: %w", err)
		}
		lo, hi = min(lo, r.us), max(hi, r.us)
	}
	w := Filter{Start: time.UnixMicro(int64(lo)), End: time.UnixMicro(int64(hi) + 1), scope: f.scope}
	cond, args := where(w, "events")
	dir := sortDir(f.Descending)
	sql := eventColumns + s.cfg.ClickHouse.Database + ".events FINAL" + andCond(cond,
		"(cityHash64(tenant), timestamp_us, cityHash64(event_id)) IN (SELECT tenant_hash, timestamp_us, event_hash FROM page_refs)") +
		" ORDER BY timestamp_us " + dir + ", event_id " + dir
	return s.readEvents(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), sql, args)
}

// indexWhere is where for the attribute index: the tenant, types and name as their hashes, and the
// time range. (A filter with a trace or span id does not read the index.)
func indexWhere(f Filter) (string, []any) {
	var conds []string
	var args []any
	if f.scope.scoped {
		conds, args = append(conds, "tenant_hash = cityHash64(?)"), append(args, f.scope.tenant)
	}
	if len(f.Types) > 0 {
		conds = append(conds, "type_hash IN ("+strings.TrimSuffix(strings.Repeat("cityHash64(?), ", len(f.Types)), ", ")+")")
		args = append(args, anySlice(f.Types)...)
	}
	if f.Name != "" {
		conds, args = append(conds, "name_hash = cityHash64(?)"), append(args, f.Name)
	}
	tc, targs := timeConds(f)
	conds, args = append(conds, tc...), append(args, targs...)
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// matchFilter reports whether every event matches f's types, name and attributes: the index
// compares their hashes.
func matchFilter(events []EventJSON, f Filter) bool {
	for _, e := range events {
		if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) || f.Name != "" && e.Name != f.Name {
			return false
		}
	}
	return haveAttributes(events, f.Attributes)
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
	dir := sortDir(descending)
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
