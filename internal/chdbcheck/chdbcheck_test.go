package chdbcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tributary/tributary/internal/testenv"
)

// TestEveryStatementOnCurrentClickHouse: see the package documentation.
func TestEveryStatementOnCurrentClickHouse(t *testing.T) {
	root := testenv.RepoRoot(t)
	engines := engines(t, root)
	rec := &recorder{}
	start := time.Now()
	db := captureWorkload(t, rec, root)
	for _, s := range rec.steps {
		if s.err != nil {
			t.Errorf("ClickHouse 18.16: %s: %v\nstatement: %s", s.Origin, s.err, excerpt(s.SQL))
		}
	}
	checkCoverage(t, rec.steps, db)
	if t.Failed() {
		t.FailNow()
	}
	captured := time.Since(start)

	// The statements and each release's answers are kept in artifacts/chdbcheck/.
	dir := filepath.Join(root, "artifacts", "chdbcheck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stepsFile := filepath.Join(dir, "statements.json")
	raw, err := json.MarshalIndent(map[string]any{"steps": rec.steps}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stepsFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "internal/chdbcheck/replay.py")
	results := make([]*replayResult, len(engines))
	errs := make([]error, len(engines))
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Go(func() {
			out := filepath.Join(dir, strings.ReplaceAll(e.req, "==", "-")+".json")
			results[i], errs[i] = replay(e, script, stepsFile, out, t.TempDir())
		})
	}
	wg.Wait()

	queries, withRows := 0, 0
	for _, s := range rec.steps {
		if s.Kind == "query" {
			queries++
			if len(s.Rows) > 0 {
				withRows++
			}
		}
	}
	var versions []string
	for i, e := range engines {
		if errs[i] != nil {
			t.Errorf("replay on %s (ClickHouse %s): %v", e.req, e.release, errs[i])
			continue
		}
		compare(t, e, results[i], rec.steps)
		versions = append(versions, results[i].Version+" ("+e.req+")")
	}
	t.Logf("%d statements (%d queries, %d answering rows) captured on 18.16 in %v, replayed on %s in %v",
		len(rec.steps), queries, withRows, captured.Round(time.Millisecond), strings.Join(versions, ", "),
		(time.Since(start) - captured).Round(time.Millisecond))
}

// compare fails the test for each step that failed on e or answered other rows than on 18.16.
func compare(t *testing.T, e engine, r *replayResult, steps []*step) {
	t.Helper()
	name := fmt.Sprintf("ClickHouse %s (%s)", r.Version, e.req)
	if !strings.HasPrefix(r.Version, e.release+".") {
		t.Errorf("%s: deploy/chdb.sh says it is ClickHouse %s", name, e.release)
	}
	if len(r.Results) != len(steps) {
		t.Errorf("%s: %d results for %d statements", name, len(r.Results), len(steps))
		return
	}
	for i, s := range steps {
		res := r.Results[i]
		if !res.OK {
			t.Errorf("%s: %s fails: %s\nstatement: %s", name, s.Origin, res.Error, excerpt(s.SQL))
			continue
		}
		if s.Kind != "query" {
			continue
		}
		got, err := answerRows(res.Output)
		if err != nil {
			t.Errorf("%s: %s: %v", name, s.Origin, err)
			continue
		}
		if d := diffRows(maskAny(s.SQL, s.Rows), maskAny(s.SQL, got)); d != "" {
			t.Errorf("%s: %s answers differently: %s\nstatement: %s", name, s.Origin, d, excerpt(s.SQL))
		}
	}
}

// checkCoverage fails the test when the workload no longer sends a statement of each kind Tributary
// sends (a code path renamed or moved would otherwise go unproven).
func checkCoverage(t *testing.T, steps []*step, db string) {
	t.Helper()
	want := []struct{ what, re string }{
		{"the migrations' DDL", `CREATE TABLE IF NOT EXISTS ` + db + `\.events_attr_index\b`},
		{"the migrations' materialized views", `CREATE MATERIALIZED VIEW IF NOT EXISTS ` + db + `\.events_trace_index_mv`},
		{"the migrations' ADD COLUMN", `ALTER TABLE ` + db + `\.rollups ADD COLUMN sketch_p99`},
		{"migrate's column check", `FROM system\.columns`},
		{"migrate's record", `INSERT INTO ` + db + `\.schema_migrations \(`},
		{"event inserts", `INSERT INTO ` + db + `\.events \(`},
		{"metric inserts", `INSERT INTO ` + db + `\.metrics \(`},
		{"rollup inserts", `INSERT INTO ` + db + `\.rollups \(.*sketch_p99`},
		{"LoadWindows", `series_id IN _series`},
		{"LatestWindows", `toUInt32\(max\(window_start\)\)`},
		{"events by key (page_refs)", `SELECT tenant, type, timestamp, event_id FROM page_refs`},
		{"events by attribute index reference (page_refs)", `SELECT tenant_hash, timestamp_us, event_hash FROM page_refs`},
		{"trace reads", `FROM ` + db + `\.events_trace_index WHERE trace_hash`},
		{"the attribute index", `FROM ` + db + `\.events_attr_index WHERE`},
		{"the attribute index's page edges", `timestamp_us IN \(`},
		{"tenant scoping", `tenant = 'acme'`},
		{"raw aggregates", `quantilesExact\(`},
		{"rollup aggregates", `argMax\(last_ts_us, last_offset\)`},
		{"merged sketches", `groupArrayArray\(v1\)`},
		{"the rollup type check", `SELECT toString\(aggregation_type\) FROM ` + db + `\.rollups`},
		{"metric reads with their histogram columns", `exp_negative_counts FROM ` + db + `\.metrics FINAL WHERE name = 'http\.server\.duration'`},
		{"event counts", `GROUP BY b, type`},
		{"retention's partition list", `FROM system\.parts`},
		{"retention's drop", `DROP PARTITION`},
		{"the analysts' guide", `sumMap\(sketch_pos_keys`},
		{"the dashboard", `AS per_minute`},
	}
	for _, w := range want {
		re := regexp.MustCompile(w.re)
		found := false
		for _, s := range steps {
			if re.MatchString(s.SQL) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the workload sent none of %s (no statement matches %s)", w.what, w.re)
		}
	}
	loaded := false
	for _, s := range steps {
		if len(s.External) > 0 && s.External[0].Name == "_series" && len(s.Rows) > 0 {
			loaded = true
		}
	}
	if !loaded {
		t.Error("LoadWindows never found a stored window: the workload should roll up in successive batches")
	}
}

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// analystsGuide runs every SQL block of docs/ (the analysts' guide, docs/analysts.md, has them),
// as internal/docscheck runs them.
func analystsGuide(t *testing.T, rec *recorder, conn driver.Conn, db, root string) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range sqlBlock.FindAllStringSubmatch(string(doc), -1) {
			sql := strings.TrimSuffix(strings.TrimSpace(strings.ReplaceAll(b[1], "tributary.", db+".")), ";")
			for j, stmt := range strings.Split(sql, ";\n") {
				rec.at(fmt.Sprintf("docs/%s SQL block %d statement %d", filepath.Base(f), i+1, j+1))
				queryAll(t, conn, stmt)
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no SQL blocks in docs/")
	}
}

// dashboard runs the SQL of every Grafana panel, its time macros bound as deploycheck binds them.
func dashboard(t *testing.T, rec *recorder, conn driver.Conn, db, root string, base time.Time) {
	raw, err := os.ReadFile(filepath.Join(root, "deploy/compose/grafana/dashboards/tributary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RawSQL string `json:"rawSql"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	from := fmt.Sprintf("toDateTime(%d)", base.Add(-time.Hour).Unix())
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL == "" {
				continue
			}
			n++
			rec.at(fmt.Sprintf("Grafana panel %q", p.Title))
			queryAll(t, conn, strings.NewReplacer("$__fromTime", from, "$__toTime", "now()", "tributary.", db+".").Replace(tg.RawSQL))
		}
	}
	if n == 0 {
		t.Fatal("no SQL panels in the Grafana dashboard")
	}
}
