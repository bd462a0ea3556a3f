package bench

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// tributary-bench's usage errors exit 2 naming the problem, before anything is measured.
func TestCommandUsage(t *testing.T) {
	t.Setenv("TRIBUTARY_TEST_KAFKA_BROKERS", "127.0.0.1:1")
	t.Setenv("TRIBUTARY_TEST_CLICKHOUSE_ADDR", "127.0.0.1:1")
	f := func(wantCode int, wantOut, wantErr string, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		if code != wantCode || !strings.Contains(out.String(), wantOut) || !strings.Contains(errb.String(), wantErr) {
			t.Errorf("tributary-bench %q: exit %d, stdout %q, stderr %q; want %d, %q, %q", args, code, out.String(), errb.String(),
				wantCode, wantOut, wantErr)
		}
	}
	f(0, "Usage: tributary-bench", "", "-h")
	f(2, "", "flag provided but not defined: -frob", "-frob")
	f(2, "", "unexpected arguments", "extra")
	f(2, "", `-only "nosuch": no such scenario`, "-only", "query,nosuch")
	missing := filepath.Join(t.TempDir(), "tributary")
	f(2, "", "no tributary binary at "+missing, "-tributary", missing)
	t.Setenv("TRIBUTARY_TEST_CLICKHOUSE_ADDR", "")
	f(2, "", "set TRIBUTARY_TEST_KAFKA_BROKERS and TRIBUTARY_TEST_CLICKHOUSE_ADDR")
}
