package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

const queryCLIHelp = `
Common flags:
  -url URL      query service (default $TRIBUTARY_QUERY_URL or http://127.0.0.1:8080)
  -token TOKEN  bearer token (default $TRIBUTARY_QUERY_TOKEN)
  -json         print the answer as JSON instead of a table
  -start, -end  RFC 3339 times or Unix seconds; -last 1h is start=now-1h
  -attr k=v     attribute equality (repeatable)
`

const eventsUsage = `Usage: tributary events [flags]

Lists events from the query service. Flags: -type (repeatable), -name, -trace, -limit (100),
-order asc|desc.` + queryCLIHelp + `
Examples:
  tributary events -type node_failed -last 1h
  tributary events -trace 550e8400-e29b-41d4-a716-446655440000 -json
`

const metricsUsage = `Usage: tributary metrics [flags]

Lists raw metric points. Flags: -name, -trace, -limit (100), -order asc|desc.` + queryCLIHelp + `
Example:
  tributary metrics -name cache_hits -attr node_id=transform_1
`

const aggregateUsage = `Usage: tributary aggregate -name NAME [flags]

A metric's time series. Flags: -bucket (1m), -aggregates (count,sum,min,max,avg), -group-by k1,k2,
-top N, -source auto|raw|rollups.` + queryCLIHelp + `
Examples:
  tributary aggregate -name cpu_percent -bucket 5m -aggregates avg -last 1h
  tributary aggregate -name node_duration -aggregates count,p50,p95,p99 -group-by node_id -top 5
`

type attrFlag map[string]string

func (a attrFlag) String() string { return fmt.Sprint(map[string]string(a)) }
func (a attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	a[k] = v
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type common struct {
	url, token, start, end string
	last                   time.Duration
	json                   bool
	attrs                  attrFlag
}

func commonFlags(fs *flag.FlagSet, env *Env) *common {
	c := &common{attrs: attrFlag{}}
	fs.SetOutput(env.Stderr)
	fs.StringVar(&c.url, "url", getenv("TRIBUTARY_QUERY_URL", "http://127.0.0.1:8080"), "query service URL")
	fs.StringVar(&c.token, "token", getenv("TRIBUTARY_QUERY_TOKEN", ""), "bearer token")
	fs.StringVar(&c.start, "start", "", "start time")
	fs.StringVar(&c.end, "end", "", "end time")
	fs.DurationVar(&c.last, "last", 0, "start = now - last")
	fs.BoolVar(&c.json, "json", false, "JSON output")
	fs.Var(c.attrs, "attr", "attribute key=value (repeatable)")
	return c
}

func (c *common) times() (start, end time.Time, err error) {
	parse := func(flagName, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		var sec int64
		if _, err := fmt.Sscanf(v, "%d", &sec); err == nil && fmt.Sprint(sec) == v {
			return time.Unix(sec, 0).UTC(), nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return t, fmt.Errorf("%w: -%s %q: want RFC 3339 or Unix seconds", errUsage, flagName, v)
		}
		return t, nil
	}
	if start, err = parse("start", c.start); err != nil {
		return
	}
	if end, err = parse("end", c.end); err != nil {
		return
	}
	if c.last > 0 {
		start = time.Now().Add(-c.last).UTC().Truncate(time.Second)
	}
	return
}

func (c *common) client() *query.Client {
	return query.NewClient(c.url, nil).WithToken(c.token)
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listCmd is what events and metrics share: their flags and the filter they make.
type listCmd struct {
	*common
	name, trace, order *string
	limit              *int
}

func newListCmd(name string, env *Env) (*flag.FlagSet, *listCmd) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	l := &listCmd{common: commonFlags(fs, env)}
	l.name = fs.String("name", "", name[:len(name)-1]+" name")
	l.trace = fs.String("trace", "", "trace id")
	l.limit = fs.Int("limit", 100, "rows")
	l.order = fs.String("order", "asc", "asc or desc")
	return fs, l
}

func (l *listCmd) filter(fs *flag.FlagSet, args []string) (query.Filter, error) {
	if err := parseFlags(fs, args); err != nil {
		return query.Filter{}, err
	}
	start, end, err := l.times()
	return query.Filter{Name: *l.name, TraceID: *l.trace, Start: start, End: end, Attributes: l.attrs,
		Limit: *l.limit, Descending: *l.order == "desc"}, err
}

func runEvents(ctx context.Context, env *Env, args []string) error {
	fs, l := newListCmd("events", env)
	var types listFlag
	fs.Var(&types, "type", "event type (repeatable)")
	f, err := l.filter(fs, args)
	if err != nil {
		return err
	}
	f.Types = types
	es, _, err := l.client().QueryEvents(ctx, f)
	if err != nil {
		return err
	}
	return printList(env, l.json, es, "TIME\tTYPE\tNAME\tTRACE\tATTRIBUTES", func(e *schemas.Event) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", e.Timestamp.Format(time.RFC3339Nano), e.Type, e.Name, e.TraceID, schemas.AppendAttributesJSON(nil, e.Attributes))
	})
}

func runMetrics(ctx context.Context, env *Env, args []string) error {
	fs, l := newListCmd("metrics", env)
	f, err := l.filter(fs, args)
	if err != nil {
		return err
	}
	ms, _, err := l.client().QueryMetrics(ctx, f)
	if err != nil {
		return err
	}
	return printList(env, l.json, ms, "TIME\tNAME\tVALUE\tUNIT\tTYPE\tATTRIBUTES", func(m *schemas.Metric) string {
		return fmt.Sprintf("%s\t%s\t%g\t%s\t%s\t%s", m.Timestamp.Format(time.RFC3339Nano), m.Name, m.Value, m.Unit, m.AggregationType, schemas.AppendAttributesJSON(nil, m.Attributes))
	})
}

// printList prints the records of an events or metrics answer: as JSON with --json, otherwise as
// a table under header with a line (of tab-separated cells) a record.
func printList[T any](env *Env, asJSON bool, rows []T, header string, line func(*T) string) error {
	if asJSON {
		return printJSON(env.Stdout, rows)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for i := range rows {
		fmt.Fprintln(tw, line(&rows[i]))
	}
	return tw.Flush()
}

func runAggregate(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("aggregate", flag.ContinueOnError)
	c := commonFlags(fs, env)
	name := fs.String("name", "", "metric name (required)")
	bucket := new(bucketFlag)
	*bucket = bucketFlag(time.Minute)
	fs.Var(bucket, "bucket", "bucket width: a Go duration (30s, 5m, 1h) or whole days (1d, 7d)")
	aggs := fs.String("aggregates", "count,sum,min,max,avg", "aggregates")
	groupBy := fs.String("group-by", "", "attribute keys, comma-separated")
	top := fs.Int("top", 0, "keep the N largest groups")
	source := fs.String("source", "auto", "auto, raw or rollups")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%w: -name is required", errUsage)
	}
	start, end, err := c.times()
	if err != nil {
		return err
	}
	q := query.AggregateQuery{Name: *name, Bucket: time.Duration(*bucket), Aggregates: strings.Split(*aggs, ","), Start: start, End: end,
		Attributes: c.attrs, Top: *top, Source: *source}
	if *groupBy != "" {
		q.GroupBy = strings.Split(*groupBy, ",")
	}
	a, err := c.client().Aggregate(ctx, q)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(env.Stdout, a)
	}
	fmt.Fprintf(env.Stdout, "%s, %ds buckets, from %s\n", a.Name, a.BucketSeconds, a.Source)
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TIME\tGROUP\t%s\n", strings.ToUpper(strings.Join(q.Aggregates, "\t")))
	for _, s := range a.Series {
		keys := make([]string, 0, len(s.Group))
		for k, v := range s.Group {
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		for _, p := range s.Points {
			fmt.Fprintf(tw, "%s\t%s", p.Time.Format(time.RFC3339), strings.Join(keys, ","))
			for _, agg := range q.Aggregates {
				if v, ok := p.Values[agg]; ok {
					fmt.Fprintf(tw, "\t%.6g", v)
				} else {
					fmt.Fprint(tw, "\t-")
				}
			}
			fmt.Fprintln(tw)
		}
	}
	return tw.Flush()
}

// bucketFlag is a duration flag that also takes whole days ("1d", "7d"), as the query service does.
type bucketFlag time.Duration

func (b *bucketFlag) String() string { return time.Duration(*b).String() }

func (b *bucketFlag) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return fmt.Errorf("bucket %q: whole days must be a positive integer such as 1d", s)
		}
		*b = bucketFlag(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bucket %q: %w", s, err)
	}
	*b = bucketFlag(d)
	return nil
}
