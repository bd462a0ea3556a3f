package query

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Aggregates a time-series request may ask for.
var aggregateNames = []string{"count", "sum", "min", "max", "avg", "rate", "last", "p50", "p90", "p95", "p99"}

var quantileOf = map[string]float64{"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}

// quantileNames orders the percentiles as raw queries compute them and cells hold them.
var quantileNames = [...]string{"p50", "p90", "p95", "p99"}

func (c *cell) setQuantile(name string, v float64) {
	i := slices.Index(quantileNames[:], name)
	c.quantiles[i], c.hasQuantile[i] = v, true
}

// groupKeyRE is what an attribute key used in group_by may look like.
var groupKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// AggregateQuery asks for one metric's time series: one point per bucket and group.
type AggregateQuery struct {
	Name       string
	Bucket     time.Duration
	Aggregates []string
	GroupBy    []string
	Start, End time.Time
	Attributes map[string]string
	Top        int    // keep the Top groups with the most points; 0 keeps all
	Source     string // auto (default), raw or rollups
}

// Values renders q as query parameters: its name, range and attributes as a Filter renders them,
// plus the aggregation's own.
func (q AggregateQuery) Values() url.Values {
	v := Filter{Name: q.Name, Start: q.Start, End: q.End, Attributes: q.Attributes}.Values()
	if q.Bucket > 0 {
		v.Set("bucket", q.Bucket.String())
	}
	if len(q.Aggregates) > 0 {
		v.Set("aggregates", strings.Join(q.Aggregates, ","))
	}
	if len(q.GroupBy) > 0 {
		v.Set("group_by", strings.Join(q.GroupBy, ","))
	}
	if q.Top > 0 {
		v.Set("top", strconv.Itoa(q.Top))
	}
	if q.Source != "" {
		v.Set("source", q.Source)
	}
	return v
}

func parseAggregate(q url.Values, cfg Config, now time.Time) (AggregateQuery, error) {
	a := AggregateQuery{Source: "auto", Aggregates: []string{"count", "sum", "min", "max", "avg"}}
	f, err := parseFilter(withoutKeys(q, "bucket", "aggregates", "group_by", "top", "source"), cfg, "name")
	if err != nil {
		return a, err
	}
	a.Name, a.Start, a.End, a.Attributes = f.Name, f.Start, f.End, f.Attributes
	if q.Has("limit") || q.Has("offset") || q.Has("order") {
		return a, badParam("limit", "aggregations take no limit, offset or order (use top)")
	}
	if a.Name == "" {
		return a, badParam("name", "required")
	}
	if a.End.IsZero() {
		a.End = now.UTC().Truncate(time.Second).Add(time.Second)
	}
	if a.Start.IsZero() {
		a.Start = a.End.Add(-time.Hour)
	}
	if !a.End.After(a.Start) {
		return a, badParam("start", "%s is not before end %s", a.Start.Format(time.RFC3339), a.End.Format(time.RFC3339))
	}
	if a.Bucket, err = parseBucket(q.Get("bucket"), cfg, a.Start, a.End); err != nil {
		return a, err
	}
	if s := q.Get("aggregates"); s != "" {
		a.Aggregates = nil
		for _, name := range strings.Split(s, ",") {
			if !slices.Contains(aggregateNames, name) {
				return a, badParam("aggregates", "%q: want some of %s", name, strings.Join(aggregateNames, ", "))
			}
			if !slices.Contains(a.Aggregates, name) {
				a.Aggregates = append(a.Aggregates, name)
			}
		}
	}
	if s := q.Get("group_by"); s != "" {
		for _, k := range strings.Split(s, ",") {
			if !groupKeyRE.MatchString(k) {
				return a, badParam("group_by", "%q: attribute keys are 1-64 of A-Z a-z 0-9 _ . : -", k)
			}
			if !slices.Contains(a.GroupBy, k) {
				a.GroupBy = append(a.GroupBy, k)
			}
		}
		if len(a.GroupBy) > 4 {
			return a, badParam("group_by", "%d keys, at most 4", len(a.GroupBy))
		}
	}
	if s := q.Get("top"); s != "" {
		if a.Top, err = parseInt("top", s, 1, 1000); err != nil {
			return a, err
		}
	}
	switch a.Source = q.Get("source"); a.Source {
	case "":
		a.Source = "auto"
	case "auto", "raw", "rollups":
	default:
		return a, badParam("source", "%q: want auto, raw or rollups", a.Source)
	}
	return a, nil
}

// parseBucket reads a bucket width (a Go duration such as 30s, 5m, 1h or 1h30m, whole days such
// as 1d or 7d, or seconds such as 300; default 1m) and checks the number of buckets that
// [start, end) touches. Buckets are aligned to the Unix epoch, so an unaligned range touches one
// more bucket than its length holds; that one counts too.
func parseBucket(b string, cfg Config, start, end time.Time) (time.Duration, error) {
	bucket := time.Minute
	if b != "" {
		days, isDays := strings.CutSuffix(b, "d")
		if n, err := strconv.Atoi(b); err == nil {
			bucket = time.Duration(n) * time.Second
		} else if n, err := strconv.Atoi(days); isDays && err == nil && n >= 0 && n <= 31 {
			bucket = time.Duration(n) * 24 * time.Hour
		} else if bucket, err = time.ParseDuration(b); err != nil {
			return 0, badParam("bucket", "%q: want a duration (30s, 5m, 1h, 1d) or seconds", b)
		}
	}
	if bucket < time.Second || bucket > 31*24*time.Hour || bucket%time.Second != 0 {
		return 0, badParam("bucket", "%v: want whole seconds from 1s to 31 days", bucket)
	}
	bs := int64(bucket / time.Second)
	lastSecond := (end.UnixMicro() - 1) / 1e6 // end is exclusive
	if n := lastSecond/bs - start.Unix()/bs + 1; n > int64(cfg.MaxBuckets) {
		return 0, badParam("bucket", "%v over %v is %d buckets, at most %d; widen the bucket or narrow the range", bucket, end.Sub(start), n, cfg.MaxBuckets)
	}
	return bucket, nil
}

func withoutKeys(q url.Values, keys ...string) url.Values {
	out := url.Values{}
	for k, v := range q {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

// rollupTier returns the widest rollup tier that divides the bucket and the range's ends (so the
// rollup windows cover exactly the range), or 0.
func rollupTier(a AggregateQuery, tiers []time.Duration) int64 {
	var best int64
	for _, t := range tiers {
		s := int64(t / time.Second)
		if s > 0 && int64(a.Bucket/time.Second)%s == 0 && a.Start.Nanosecond() == 0 && a.End.Nanosecond() == 0 &&
			a.Start.Unix()%s == 0 && a.End.Unix()%s == 0 && s > best {
			best = s
		}
	}
	return best
}

// Point is one bucket of one group: the requested aggregates by name.
type Point struct {
	Time   time.Time          `json:"t"`
	Values map[string]float64 `json:"values"`

	// The service builds points in this compact form instead of Values (which a client's decoding
	// fills): vals[i] is aggregate names[i] (sorted), present if set[i].
	names []string
	vals  []float64
	set   []bool
}

// Series is one group's points.
type Series struct {
	Group  map[string]string `json:"group"`
	Points []Point           `json:"points"`
	count  uint64
}

// AggregateAnswer is the body of GET /v1/aggregate. Source says whether rollups or raw rows
// answered; percentiles from rollups are within 1% of the exact ones (quantileExact's rank), plus
// the bucket error of rows that hold many values (OTLP histograms: rollups.BucketValueOf).
type AggregateAnswer struct {
	Name          string   `json:"name"`
	Source        string   `json:"source"`
	BucketSeconds int64    `json:"bucket_seconds"`
	Start         string   `json:"start"`
	End           string   `json:"end"`
	Series        []Series `json:"series"`
}

// cell is what one SQL row gives for one bucket and group.
type cell struct {
	bucket      uint32
	groups      []string
	count       uint64
	sum, lo, hi float64
	last        float64
	quantiles   [len(quantileNames)]float64 // by index in quantileNames
	hasQuantile [len(quantileNames)]bool
}

// value is one aggregate of the cell; false when the cell has none (a percentile without a sketch).
func (c *cell) value(agg string, bucketSeconds float64) (float64, bool) {
	switch agg {
	case "count":
		return float64(c.count), true
	case "sum":
		return c.sum, true
	case "min":
		return c.lo, true
	case "max":
		return c.hi, true
	case "avg":
		return c.sum / float64(c.count), true
	case "rate":
		return c.sum / bucketSeconds, true
	case "last":
		return c.last, true
	}
	if i := slices.Index(quantileNames[:], agg); i >= 0 && c.hasQuantile[i] {
		return c.quantiles[i], true
	}
	return 0, false
}

// OverflowError is an aggregate whose value does not fit a float64: a sum (or avg, rate) of
// values near ±1.8e308 overflows to infinity. The service answers it with HTTP 422 naming
// aggregates, since JSON has no infinity; count, min, max, last and percentiles never overflow.
type OverflowError struct {
	Aggregate string
	Bucket    time.Time
	Group     map[string]string
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("%s of the bucket at %s (group %v) overflows float64 (beyond ±1.8e308); ask for count, min, max, last or percentiles, or use a narrower bucket",
		e.Aggregate, e.Bucket.Format(time.RFC3339), e.Group)
}

// checkFinite returns an *OverflowError for the first point of series with an infinite or NaN
// value.
func checkFinite(series []Series) error {
	for _, s := range series {
		for _, p := range s.Points {
			for i, v := range p.vals {
				if p.set[i] && (math.IsInf(v, 0) || math.IsNaN(v)) {
					return &OverflowError{Aggregate: p.names[i], Bucket: p.Time, Group: s.Group}
				}
			}
		}
	}
	return nil
}

// assemble turns cells into series, keeps the top groups by point count, and orders series by
// count (descending) then group.
func assemble(a AggregateQuery, cells []cell) []Series {
	byGroup := map[string]*Series{}
	var order []string
	// Points carry their values in the compact form (one backing array for all), not as maps:
	// a day of minute buckets for 32 groups is 46,080 points.
	names := slices.Clone(a.Aggregates)
	slices.Sort(names)
	vals, set := make([]float64, len(cells)*len(names)), make([]bool, len(cells)*len(names))
	for i := range cells {
		c := &cells[i]
		key := strings.Join(c.groups, "\x00")
		s := byGroup[key]
		if s == nil {
			g := map[string]string{}
			for j, k := range a.GroupBy {
				g[k] = c.groups[j]
			}
			s = &Series{Group: g}
			byGroup[key] = s
			order = append(order, key)
		}
		s.count += c.count
		v, ok := vals[i*len(names):(i+1)*len(names)], set[i*len(names):(i+1)*len(names)]
		for j, name := range names {
			v[j], ok[j] = c.value(name, a.Bucket.Seconds())
		}
		s.Points = append(s.Points, Point{Time: time.Unix(int64(c.bucket), 0).UTC(), names: names, vals: v, set: ok})
	}
	out := make([]Series, 0, len(order))
	for _, k := range order {
		s := byGroup[k]
		sort.Slice(s.Points, func(i, j int) bool { return s.Points[i].Time.Before(s.Points[j].Time) })
		out = append(out, *s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return fmt.Sprint(out[i].Group) < fmt.Sprint(out[j].Group)
	})
	if a.Top > 0 && len(out) > a.Top {
		out = out[:a.Top]
	}
	return out
}
