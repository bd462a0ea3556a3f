package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/envconf"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodesAndHelp(t *testing.T) {
	if code, out, _ := run(); code != 2 || !strings.Contains(out, "Commands:") {
		t.Errorf("no args: %d %q", code, out)
	}
	if code, _, errs := run("frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %q", code, errs)
	}
	if code, out, _ := run("help"); code != 0 || !strings.Contains(out, "demo") {
		t.Errorf("help: %d %q", code, out)
	}
	for _, c := range commands() {
		code, out, _ := run(c.name, "--help")
		if code != 0 || !strings.HasPrefix(out, "Usage: tributary "+c.name) || !strings.Contains(out, "Example") {
			t.Errorf("%s --help: %d, want usage with examples: %q", c.name, code, out)
		}
	}
	if code, _, errs := run("query", "extra"); code != 2 || !strings.Contains(errs, "unexpected arguments") {
		t.Errorf("extra args: %d %q", code, errs)
	}
}

func TestBadConfigurationNamesTheSetting(t *testing.T) {
	t.Setenv("TRIBUTARY_QUERY_MAX_LIMIT", "0")
	if code, _, errs := run("query"); code != 2 || !strings.Contains(errs, "max limit") {
		t.Errorf("got %d %q", code, errs)
	}
	t.Setenv("TRIBUTARY_QUERY_MAX_LIMIT", "ten")
	if code, _, errs := run("query"); code != 2 || !strings.Contains(errs, "QUERY_MAX_LIMIT") {
		t.Errorf("got %d %q", code, errs)
	}
	t.Setenv("TRIBUTARY_LOG_FORMAT", "xml")
	if code, _, errs := run("consumer"); code != 2 || !strings.Contains(errs, "TRIBUTARY_LOG_FORMAT") {
		t.Errorf("got %d %q", code, errs)
	}
}

// The README's configuration table must list every setting with its default.
func TestReadmeListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `TRIBUTARY_") {
			continue
		}
		cells := strings.Split(line, "|")
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	seen := 0
	for _, spec := range settingSpecs() {
		vars, err := envconf.Vars(Prefix, spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vars {
			key, def := v.Key, v.Default
			seen++
			cell, ok := rows[key]
			switch {
			case !ok:
				t.Errorf("README's configuration table lacks %s", key)
			case def == "" && !strings.HasPrefix(cell, "("):
				t.Errorf("README gives %s the default %s; the code has none", key, cell)
			case def != "" && cell != "`"+def+"`":
				t.Errorf("README gives %s the default %s; the code has %q", key, cell, def)
			}
		}
	}
	if seen < 30 {
		t.Fatalf("only %d settings found; is the template right?", seen)
	}
}

// tributary query --help names every route the query service registers (its Handler and the
// shared /metrics, /healthz, /readyz), and the tokens' minimum length that Validate enforces.
func TestQueryHelpListsEveryEndpoint(t *testing.T) {
	_, out, _ := run("query", "--help")
	root := testenv.RepoRoot(t)
	route := regexp.MustCompile(`"GET (/[^"]*)"`)
	var routes []string
	for _, f := range []string{"query/server.go", "internal/observe/observe.go"} {
		src, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range route.FindAllStringSubmatch(string(src), -1) {
			routes = append(routes, strings.TrimSuffix(m[1], "{$}"))
		}
	}
	if len(routes) < 10 {
		t.Fatalf("found %d routes in query/server.go and internal/observe: %v", len(routes), routes)
	}
	for _, r := range routes {
		if !regexp.MustCompile(`GET [^\n]*` + regexp.QuoteMeta(r) + `[\s,;]`).MatchString(out) {
			t.Errorf("query --help does not list GET %s:\n%s", r, out)
		}
	}
	cfg := query.DefaultConfig()
	cfg.Tokens = map[string]string{"1234567": "acme"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "8 characters") || !strings.Contains(out, "8 characters or more") {
		t.Errorf("a 7-character token: %v; help must state the minimum Validate enforces", err)
	}
}
