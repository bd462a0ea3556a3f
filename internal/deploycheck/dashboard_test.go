package deploycheck

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tributary/tributary/internal/testenv"
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
// and to SQL that runs on the real ClickHouse.
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
			if tg.RawSQL != "" {
				sql := strings.NewReplacer("$__fromTime", "toDateTime('2025-01-15 00:00:00')", "$__toTime", "now()",
					"tributary.", cfg.Database+".").Replace(tg.RawSQL)
				rows, err := conn.Query(context.Background(), sql)
				if err != nil {
					t.Errorf("%q: SQL fails on ClickHouse: %v\n%s", p.Title, err, sql)
					continue
				}
				rows.Close()
			}
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
