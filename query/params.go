package query

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/schemas"
)

// ParamError is a bad request parameter; the service answers it with HTTP 400.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %q: %s", e.Param, e.Reason) }

func badParam(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// Filter is what a request for raw events or metrics asks for. Zero fields do not filter.
type Filter struct {
	Types           []string          // events: type IN (...)
	Name            string            // events and metrics
	TraceID         string            // events and metrics
	SpanID          string            // events
	AggregationType string            // metrics
	Start, End      time.Time         // start inclusive, end exclusive
	Attributes      map[string]string // top-level attribute key = value (as flattened text)
	Limit, Offset   int
	Descending      bool

	scope tenantScope // set from the request's token, never from parameters
}

const attrPrefix = "attr."

// parseFilter reads and checks the query string. allowed lists the plain parameters the endpoint
// takes; attr.<key> parameters are always allowed. Unknown parameters are errors, so a typo does not
// silently widen a query.
func parseFilter(q url.Values, cfg Config, allowed ...string) (Filter, error) {
	f := Filter{Limit: cfg.DefaultLimit}
	ok := map[string]bool{"start": true, "end": true, "limit": true, "offset": true, "order": true}
	for _, a := range allowed {
		ok[a] = true
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := q[k]
		if k == "" {
			return f, badParam("(unnamed)", "a parameter has no name")
		}
		if strings.HasPrefix(k, attrPrefix) {
			key := strings.TrimPrefix(k, attrPrefix)
			if key == "" || len(vals) != 1 {
				return f, badParam(k, "give one attr.<key>=<value> per attribute key")
			}
			if f.Attributes == nil {
				f.Attributes = map[string]string{}
			}
			f.Attributes[key] = vals[0]
			continue
		}
		if !ok[k] {
			return f, badParam(k, "unknown parameter (allowed: %s, attr.<key>)", strings.Join(slices.Sorted(maps.Keys(ok)), ", "))
		}
		if k != "type" && len(vals) > 1 {
			return f, badParam(k, "given %d times; give it once", len(vals))
		}
		v := vals[0]
		var err error
		switch k {
		case "type":
			for _, t := range vals {
				for _, one := range strings.Split(t, ",") {
					if one == "" {
						return f, badParam(k, "empty event type")
					}
					f.Types = append(f.Types, one)
				}
			}
		case "name":
			f.Name = v
		case "trace_id":
			f.TraceID = v
		case "span_id":
			f.SpanID = v
		case "aggregation_type":
			if _, err := schemas.ParseAggregationType(v); err != nil {
				return f, badParam(k, "%q is not counter, gauge or histogram", v)
			}
			f.AggregationType = v
		case "start":
			f.Start, err = parseTime(k, v)
		case "end":
			f.End, err = parseTime(k, v)
		case "limit":
			f.Limit, err = parseInt(k, v, 1, cfg.MaxLimit)
		case "offset":
			f.Offset, err = parseInt(k, v, 0, cfg.MaxOffset)
		case "order":
			switch v {
			case "asc":
			case "desc":
				f.Descending = true
			default:
				err = badParam(k, "%q: want asc or desc", v)
			}
		}
		if err != nil {
			return f, err
		}
	}
	if !f.Start.IsZero() && !f.End.IsZero() && !f.End.After(f.Start) {
		return f, badParam("end", "%s is not after start %s", f.End.Format(time.RFC3339Nano), f.Start.Format(time.RFC3339Nano))
	}
	return f, nil
}

// parseTime accepts RFC 3339 (fractional seconds allowed) or integer Unix seconds, within the range
// ClickHouse's DateTime holds.
func parseTime(param, v string) (time.Time, error) {
	var t time.Time
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		t = time.Unix(n, 0).UTC()
	} else if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
		return t, badParam(param, "%q: want RFC 3339 (2025-01-15T10:00:00Z) or Unix seconds", v)
	}
	if t.Unix() < 0 || t.Unix() > 1<<32-1 {
		return t, badParam(param, "%q: outside 1970..2106", v)
	}
	return t.UTC(), nil
}

func parseInt(param, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badParam(param, "%q is not an integer", v)
	}
	if n < lo || n > hi {
		return 0, badParam(param, "%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}
