package docscheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tributary/tributary/internal/testenv"
)

// block is one fenced code block of a page in docs/.
type block struct {
	file string // e.g. docs/analysts.md
	line int    // of the opening fence
	lang string // the fence's info string: sql, python, java
	code string
}

func (b block) String() string { return b.file + ":" + strconv.Itoa(b.line) + " (" + b.lang + ")" }

var fence = regexp.MustCompile("(?ms)^```([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^```")

// docBlocks is every fenced code block of docs/*.md, in file and line order.
func docBlocks(t *testing.T) []block {
	t.Helper()
	root := testenv.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md under %s: %v", root, err)
	}
	var out []block
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		for _, m := range fence.FindAllStringSubmatchIndex(text, -1) {
			out = append(out, block{file: "docs/" + filepath.Base(f), line: strings.Count(text[:m[0]], "\n") + 1,
				lang: text[m[2]:m[3]], code: text[m[4]:m[5]]})
		}
	}
	return out
}

// blocksIn is the blocks of one language.
func blocksIn(t *testing.T, lang string) []block {
	var out []block
	for _, b := range docBlocks(t) {
		if b.lang == lang {
			out = append(out, b)
		}
	}
	return out
}

// runners are the languages whose blocks a test in this package runs, with that test.
var runners = map[string]string{
	"sql":    "TestSQLBlocksRun (the real ClickHouse, on loaded data)",
	"python": "TestPythonBlocksRun (deploy/docs/venv.sh's Python, the real broker)",
	"java":   "TestJavaBlocksRun (javac and java with deploy/interop's libraries)",
	"json":   "TestDataBlocksParse (a JSON value, or JSON lines)",
	"yaml":   "TestDataBlocksParse (YAML)",
}

// Every code block in docs/ is run by a test: a block in another language, or with none, fails
// here until a runner for it is added.
func TestEveryBlockHasARunner(t *testing.T) {
	blocks := docBlocks(t)
	if len(blocks) < 10 {
		t.Fatalf("found %d code blocks in docs/", len(blocks))
	}
	for _, b := range blocks {
		if _, ok := runners[b.lang]; !ok {
			t.Errorf("%s: no test runs %q blocks (runners: %s); tag the block or add a runner to internal/docscheck",
				b, b.lang, strings.Join(slices.Sorted(maps.Keys(runners)), ", "))
		}
	}
}

// Data blocks cannot run; each JSON block is JSON (one value or JSON lines), each YAML block YAML.
func TestDataBlocksParse(t *testing.T) {
	for _, b := range docBlocks(t) {
		var err error
		switch b.lang {
		case "json":
			dec := json.NewDecoder(strings.NewReader(b.code))
			for n := 0; ; n++ {
				var v any
				if e := dec.Decode(&v); e != nil {
					if !errors.Is(e, io.EOF) || n == 0 {
						err = e
					}
					break
				}
			}
		case "yaml":
			dec := yaml.NewDecoder(bytes.NewReader([]byte(b.code)))
			for {
				var v any
				if e := dec.Decode(&v); e != nil {
					if !errors.Is(e, io.EOF) {
						err = e
					}
					break
				}
			}
		}
		if err != nil {
			t.Errorf("%s does not parse: %v\n%s", b, err, b.code)
		}
	}
}
