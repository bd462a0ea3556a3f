package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type compose struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       map[string]any `yaml:"build"`
		Command     []string       `yaml:"command"`
		Environment map[string]any `yaml:"environment"`
		Volumes     []string       `yaml:"volumes"`
		Ports       []string       `yaml:"ports"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck map[string]any `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func root(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func TestComposeFile(t *testing.T) {
	dir := root(t)
	raw, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	cmd := exec.Command("go", "run", "./cmd/tributary", "help")
	cmd.Dir = dir
	help, err := cmd.Output()
	if err != nil {
		t.Fatalf("tributary help: %v", err)
	}
	for _, want := range []string{"kafka", "clickhouse", "migrate", "consumer", "query", "gateway", "retention"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("service %s missing", want)
		}
	}
	setting := regexp.MustCompile(`^TRIBUTARY_[A-Z_]+$`)
	for name, s := range c.Services {
		if (s.Image == "") == (s.Build == nil) {
			t.Errorf("%s: needs exactly one of image and build", name)
		}
		if s.Build != nil {
			df, _ := s.Build["dockerfile"].(string)
			if _, err := os.Stat(filepath.Join(dir, df)); err != nil {
				t.Errorf("%s: dockerfile %q: %v", name, df, err)
			}
			if len(s.Command) == 0 || !strings.Contains(string(help), "  "+s.Command[0]+" ") {
				t.Errorf("%s: command %v is not a tributary subcommand", name, s.Command)
			}
		}
		for k := range s.Environment {
			if setting.MatchString(k) && !strings.Contains(string(readme), "`"+k+"`") {
				t.Errorf("%s: %s is not a documented setting", name, k)
			}
		}
		for dep, d := range s.DependsOn {
			other, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			if d.Condition == "service_healthy" && other.Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("%s: mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: volume %s is not declared", name, src)
			}
		}
	}
	if q := c.Services["query"]; q.Environment["TRIBUTARY_CLICKHOUSE_USER"] != "tributary_ro" {
		t.Error("the query service must use the read-only ClickHouse user")
	}
	if !slices.Contains(c.Services["query"].Ports, "8080:8080") {
		t.Error("the query service's port is not published")
	}
}
