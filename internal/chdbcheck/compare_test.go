package chdbcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Values are compared in a canonical form that both sides map to: strings, json.Number for
// numbers, DateTime and times as Unix seconds, "nan"/"inf"/"-inf" for those floats (as chdb
// writes them), []any for arrays.

func canonicalRow(dest []any) []any {
	row := make([]any, len(dest))
	for i, d := range dest {
		row[i] = canonical(reflect.ValueOf(d).Elem())
	}
	return row
}

func canonical(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == timeType {
		return json.Number(strconv.FormatInt(v.Interface().(interface{ Unix() int64 }).Unix(), 10))
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return json.Number(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return json.Number(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		return json.Number(floatText(v.Float(), false))
	case reflect.Bool:
		return v.Bool()
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = canonical(v.Index(i))
		}
		return out
	case reflect.Pointer, reflect.Interface:
		return canonical(v.Elem())
	}
	return fmt.Sprintf("%v", v.Interface())
}

// same reports whether two canonical values are equal: texts equal, or both numbers that are equal
// within 1e-9 relative (integers exactly).
func same(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok || bok {
		if !aok || !bok || len(as) != len(bs) {
			return false
		}
		for i := range as {
			if !same(as[i], bs[i]) {
				return false
			}
		}
		return true
	}
	x, y := fmt.Sprint(a), fmt.Sprint(b)
	if x == y {
		return true
	}
	if isInteger(x) && isInteger(y) {
		return false
	}
	fx, errx := strconv.ParseFloat(x, 64)
	fy, erry := strconv.ParseFloat(y, 64)
	if errx != nil || erry != nil || math.IsNaN(fx) || math.IsNaN(fy) {
		return false
	}
	return fx == fy || math.Abs(fx-fy) <= 1e-9*math.Max(math.Abs(fx), math.Abs(fy))
}

func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// sortKey orders rows for a comparison as multisets: floats rounded so that last-digit
// differences sort alike.
func sortKey(v any) string {
	if vs, ok := v.([]any); ok {
		parts := make([]string, len(vs))
		for i, e := range vs {
			parts[i] = sortKey(e)
		}
		return "[" + strings.Join(parts, "\x1f") + "]"
	}
	s := fmt.Sprint(v)
	if f, err := strconv.ParseFloat(s, 64); err == nil && !isInteger(s) {
		return strconv.FormatFloat(f, 'g', 6, 64)
	}
	return s
}

// selectList splits the outermost SELECT list of sql into its expressions.
func selectList(sql string) []string {
	sql = strings.TrimPrefix(strings.TrimSpace(sql), "SELECT ")
	var out []string
	depth, from, quoted := 0, 0, false
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' && (i == 0 || sql[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case depth == 0 && c == ',':
			out = append(out, strings.TrimSpace(sql[from:i]))
			from = i + 1
		case depth == 0 && strings.HasPrefix(sql[i:], " FROM "):
			return append(out, strings.TrimSpace(sql[from:i]))
		}
	}
	return append(out, strings.TrimSpace(sql[from:]))
}

// maskAny blanks the any(...) columns of the rows whose count() column is not 1: any() of several
// rows may pick any of them, and the query service reads those columns (a rollup window's stored
// percentiles) only in cells of one window row, merging the sketches of the others.
func maskAny(sql string, rows [][]any) [][]any {
	exprs := selectList(sql)
	count := slices.Index(exprs, "count()")
	var anys []int
	for i, e := range exprs {
		if strings.HasPrefix(e, "any(") {
			anys = append(anys, i)
		}
	}
	if count < 0 || len(anys) == 0 {
		return rows
	}
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = r
		if count < len(r) && fmt.Sprint(r[count]) != "1" {
			out[i] = slices.Clone(r)
			for _, j := range anys {
				if j < len(r) {
					out[i][j] = "(any of several)"
				}
			}
		}
	}
	return out
}

// diffRows says how got differs from want ("" when it does not): in order, or else as multisets.
func diffRows(want, got [][]any) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d rows, 18.16 answered %d", len(got), len(want))
	}
	first := ""
	for i := range want {
		if !same(want[i], got[i]) {
			first = fmt.Sprintf("row %d is %v, 18.16 answered %v", i, got[i], want[i])
			break
		}
	}
	if first == "" {
		return ""
	}
	sorted := func(rows [][]any) [][]any {
		out := slices.Clone(rows)
		slices.SortStableFunc(out, func(a, b []any) int { return strings.Compare(sortKey(a), sortKey(b)) })
		return out
	}
	w, g := sorted(want), sorted(got)
	for i := range w {
		if !same(w[i], g[i]) {
			return first
		}
	}
	return "" // the same rows in another order
}

// engine is one chdb release, as deploy/chdb.sh lists it.
type engine struct {
	req     string // pip requirement, e.g. chdb==3.7.2
	release string // ClickHouse release it embeds, e.g. 25.8
	python  string
}

// engines installs the chdb venvs (deploy/chdb.sh install, which does nothing when they are there)
// and returns them. A failed install fails the test.
func engines(t *testing.T, root string) []engine {
	t.Helper()
	script := filepath.Join(root, "deploy/chdb.sh")
	if out, err := exec.Command("bash", script, "install").CombinedOutput(); err != nil {
		t.Fatalf("deploy/chdb.sh install (Python venvs with chdb from PyPI) failed: %v\n%s", err, out)
	}
	out, err := exec.Command("bash", script, "pythons").Output()
	if err != nil {
		t.Fatalf("deploy/chdb.sh pythons: %v", err)
	}
	var es []engine
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("deploy/chdb.sh pythons printed %q; want <requirement> <release> <python>", line)
		}
		es = append(es, engine{req: f[0], release: f[1], python: f[2]})
	}
	if !slices.ContainsFunc(es, func(e engine) bool { return e.release == "25.8" }) || len(es) < 2 {
		t.Fatalf("deploy/chdb.sh lists %v: want ClickHouse 25.8 (docker-compose's) and the newest chdb-core", es)
	}
	return es
}

// replayResult is what replay.py reports.
type replayResult struct {
	Version string `json:"version"`
	Results []struct {
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
		Output string `json:"output"`
	} `json:"results"`
}

// replay runs the steps on e in a fresh chdb session keeping its data in dataDir, and writes
// its results to out.
func replay(e engine, script, stepsFile, out, dataDir string) (*replayResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.python, script, stepsFile, out, dataDir)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v\n%s", e.python, script, err, stderr.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var r replayResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", out, err)
	}
	return &r, nil
}

// answerRows decodes a JSONCompact answer into canonical rows.
func answerRows(output string) ([][]any, error) {
	dec := json.NewDecoder(strings.NewReader(output))
	dec.UseNumber()
	var ans struct {
		Data [][]any `json:"data"`
	}
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	return ans.Data, nil
}

// excerpt shortens a statement for a failure message.
func excerpt(sql string) string {
	if len(sql) > 3000 {
		return sql[:3000] + " ..."
	}
	return sql
}
