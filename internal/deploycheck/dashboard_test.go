package deploycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.yaml.in/yaml/v3"

	"github.com/tributary/tributary/consumer/consumertest"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/schemas"
)

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr   string `json:"expr"`
			RawSQL string `json:"rawSql"`
		} `json:"targets"`
	} `json:"panels"`
}

// The provisioned dashboard refers only to provisioned data sources, to metrics the code exports,
// and to SQL that runs on the real ClickHouse and answers rows there; the p95 panel answers p95s.
func TestGrafanaDashboard(t *testing.T) {
	dir := root(t)
	var d dashboard
	raw, err := os.ReadFile(filepath.Join(dir, "deploy/compose/grafana/dashboards/tributary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &d); err != nil || d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard JSON: %v (%d panels)", err, len(d.Panels))
	}
	var prov struct {
		Datasources []struct{ UID, Type string } `yaml:"datasources"`
	}
	pr, _ := os.ReadFile(filepath.Join(dir, "deploy/compose/grafana/provisioning/datasources/datasources.yml"))
	if err := yaml.Unmarshal(pr, &prov); err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, s := range prov.Datasources {
		sources[s.UID] = s.Type
	}
	code := goSource(t, dir)
	metric := regexp.MustCompile(`tributary_[a-z_]+`)
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	exact := loadPanelData(t, conn, cfg.Database)
	for _, p := range d.Panels {
		if sources[p.Datasource.UID] != p.Datasource.Type {
			t.Errorf("%q: data source %s/%s is not provisioned", p.Title, p.Datasource.Type, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !strings.Contains(code, `"`+base+`"`) && !strings.Contains(code, `"`+strings.TrimPrefix(base, "tributary_kafka_")+`"`) {
					t.Errorf("%q: metric %s is not exported by the code", p.Title, m)
				}
			}
			if tg.RawSQL == "" {
				continue
			}
			// The macros as the ClickHouse data source expands them (seconds since the epoch).
			sql := strings.NewReplacer("$__fromTime", fmt.Sprintf("toDateTime(%d)", panelT0.Add(-time.Hour).Unix()), "$__toTime", "now()",
				"tributary.", cfg.Database+".").Replace(tg.RawSQL)
			got, err := panelRows(conn, sql)
			if err != nil {
				t.Errorf("%q: SQL fails on ClickHouse: %v\n%s", p.Title, err, sql)
				continue
			}
			if len(got) == 0 {
				t.Errorf("%q: no rows on data that should match:\n%s", p.Title, sql)
			}
			if strings.Contains(p.Title, "p95") {
				checkP95(t, p.Title, got, exact)
			}
		}
	}
}

// panelT0 is the first minute of the data the panels are run on.
var panelT0 = time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)

// loadPanelData stores raw rows and minute rollups of the metrics the ClickHouse panels chart,
// and returns node_duration's exact p95 (quantileExact's rank, floor(0.95 n)) by minute and node.
// Each node has two series (graph a and b), so the p95 panel must merge sketches.
func loadPanelData(t *testing.T, conn driver.Conn, database string) map[string]float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	var ms []schemas.Metric
	byCell := map[string][]float64{}
	add := func(name string, typ schemas.AggregationType, v float64, ts time.Time, attrs map[string]any) {
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprint("m", len(ms)), Name: name, Value: v, Unit: "seconds",
			AggregationType: typ, Timestamp: ts, Attributes: attrs})
	}
	for i := range 3 * 240 {
		ts := panelT0.Add(time.Duration(i) * 250 * time.Millisecond)
		node := fmt.Sprint("node_", i%2)
		v := math.Round(rng.Float64()*1000) / 1000
		if i%50 == 0 {
			v = 0 // the sketch's zero bucket
		}
		add("node_duration", schemas.Histogram, v, ts, map[string]any{"node_id": node, "graph": []string{"a", "b"}[i/2%2]})
		key := ts.Truncate(time.Minute).Format(time.RFC3339) + " " + node
		byCell[key] = append(byCell[key], v)
		if i%10 == 0 {
			add("node_execution_count", schemas.Counter, 1, ts, map[string]any{"node_id": node})
			add("node_error_count", schemas.Counter, 1, ts, map[string]any{"node_id": node})
			add("graph_execution_count", schemas.Counter, 1, ts, nil)
			add("llm_api_cost", schemas.Counter, 0.002, ts, map[string]any{"model": "m"})
			add("llm_input_tokens", schemas.Counter, 120, ts, map[string]any{"model": "m"})
			add("tool_execution_count", schemas.Counter, 1, ts, map[string]any{"tool": "search"})
		}
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, database, nil, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, database, ms, []time.Duration{time.Minute}); err != nil {
		t.Fatal(err)
	}
	exact := map[string]float64{}
	for k, vs := range byCell {
		slices.Sort(vs)
		exact[k] = vs[int(0.95*float64(len(vs)))]
	}
	return exact
}

// panelRows runs a panel's SQL and returns its rows as text columns (time first).
func panelRows(conn driver.Conn, sql string) ([][]string, error) {
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(rows.ColumnTypes()))
		for i, ct := range rows.ColumnTypes() {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			switch x := reflect.ValueOf(v).Elem().Interface().(type) {
			case time.Time:
				row[i] = x.UTC().Format(time.RFC3339)
			default:
				row[i] = fmt.Sprint(x)
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// checkP95 compares the panel's (time, node, p95) rows with the exact p95: the sketch keeps every
// value within 1% (a max would be off by far more on these uniform values).
func checkP95(t *testing.T, title string, got [][]string, exact map[string]float64) {
	t.Helper()
	if len(got) != len(exact) {
		t.Errorf("%q: %d rows, want one per minute and node (%d)", title, len(got), len(exact))
	}
	for _, row := range got {
		if len(row) != 3 {
			t.Fatalf("%q: row %v, want time, node, p95", title, row)
		}
		want, ok := exact[row[0]+" "+row[1]]
		v, err := strconv.ParseFloat(row[2], 64)
		if !ok || err != nil || math.Abs(v-want) > 0.01*want {
			t.Errorf("%q: %s %s p95 = %s, want %v within 1%%", title, row[0], row[1], row[2], want)
		}
	}
}

func goSource(t *testing.T, dir string) string {
	var b strings.Builder
	for _, pkg := range []string{"consumer", "producer", "producer/gateway", "query"} {
		files, _ := filepath.Glob(filepath.Join(dir, pkg, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(src)
		}
	}
	return b.String()
}
