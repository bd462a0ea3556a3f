package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
			t.Errorf("%s: no test runs %q blocks (runners: sql, python, java); tag the block or add a runner to internal/docscheck", b, b.lang)
		}
	}
}
