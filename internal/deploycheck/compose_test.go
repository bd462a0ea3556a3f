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
	c := checkCompose(t, "docker-compose.yml")
	for _, want := range []string{"kafka", "clickhouse", "migrate", "consumer", "query", "gateway", "retention"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("service %s missing", want)
		}
	}
	checkQueryService(t, c)
}

// checkCompose reads the compose file at rel (from the repository root) and checks what holds for
// every Tributary compose file: each service has an image or a build whose Dockerfile exists and
// whose command is a tributary subcommand, every TRIBUTARY_ setting is documented in the README,
// dependencies exist (and have a healthcheck when waited on), and every mount exists or is a
// declared volume. Relative paths are the compose file's own (its directory), as Compose reads them.
func checkCompose(t *testing.T, rel string) compose {
	t.Helper()
	dir := root(t)
	raw, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	base := filepath.Join(dir, filepath.Dir(rel))
	readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
	cmd := exec.Command("go", "run", "./cmd/tributary", "help")
	cmd.Dir = dir
	help, err := cmd.Output()
	if err != nil {
		t.Fatalf("tributary help: %v", err)
	}
	setting := regexp.MustCompile(`^TRIBUTARY_[A-Z_]+$`)
	for name, s := range c.Services {
		if (s.Image == "") == (s.Build == nil) {
			t.Errorf("%s: %s: needs exactly one of image and build", rel, name)
		}
		if s.Build != nil {
			ctx, _ := s.Build["context"].(string)
			df, _ := s.Build["dockerfile"].(string)
			if _, err := os.Stat(filepath.Join(base, ctx, df)); err != nil {
				t.Errorf("%s: %s: dockerfile %q in context %q: %v", rel, name, df, ctx, err)
			}
			if len(s.Command) == 0 || !strings.Contains(string(help), "  "+s.Command[0]+" ") {
				t.Errorf("%s: %s: command %v is not a tributary subcommand", rel, name, s.Command)
			}
		}
		for k := range s.Environment {
			if setting.MatchString(k) && !strings.Contains(string(readme), "`"+k+"`") {
				t.Errorf("%s: %s: %s is not a documented setting", rel, name, k)
			}
		}
		for dep, d := range s.DependsOn {
			other, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s: %s depends on unknown service %s", rel, name, dep)
			}
			if d.Condition == "service_healthy" && other.Healthcheck == nil {
				t.Errorf("%s: %s waits for %s to be healthy, which has no healthcheck", rel, name, dep)
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
				if _, err := os.Stat(filepath.Join(base, src)); err != nil {
					t.Errorf("%s: %s: mounts %s: %v", rel, name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: %s: volume %s is not declared", rel, name, src)
			}
		}
	}
	return c
}

func checkQueryService(t *testing.T, c compose) {
	t.Helper()
	if q := c.Services["query"]; q.Environment["TRIBUTARY_CLICKHOUSE_USER"] != "tributary_ro" {
		t.Error("the query service must use the read-only ClickHouse user")
	}
	if !slices.Contains(c.Services["query"].Ports, "8080:8080") {
		t.Error("the query service's port is not published")
	}
}
