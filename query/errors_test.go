package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
)

// A query ClickHouse refuses (here: its table was dropped) answers 500 with a random error id and
// a generic message, never the SQL or values; the log has the full error under the same id.
func TestServerErrorsHideSQLAndLogAnID(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	admin := testenv.OpenClickHouse(t, cfg)
	var logs testenv.SyncBuffer
	ro := cfg
	ro.User, ro.Password = "tributary_ro", "tributary_ro"
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse = ro
	s, err := query.New(qcfg, testenv.OpenClickHouse(t, ro), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	if err := admin.Exec(context.Background(), "DROP TABLE "+cfg.Database+".events_trace_index"); err != nil {
		t.Fatal(err)
	}
	const secret = "trace-secret-7f3a"
	ids := map[string]bool{}
	for range 2 {
		resp, err := http.Get(srv.URL + "/v1/traces/" + secret)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct {
			Error   string `json:"error"`
			ErrorID string `json:"error_id"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusInternalServerError || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(body.ErrorID) {
			t.Fatalf("HTTP %d %s, want 500 with an error_id", resp.StatusCode, raw)
		}
		for _, leak := range []string{secret, "SELECT", "events_trace_index", cfg.Database, "code:"} {
			if strings.Contains(string(raw), leak) {
				t.Errorf("the 500 body %s carries %q", raw, leak)
			}
		}
		if !strings.Contains(body.Error, body.ErrorID) {
			t.Errorf("message %q does not name its error id", body.Error)
		}
		ids[body.ErrorID] = true
		var logged string
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "error_id="+body.ErrorID) {
				logged = line
			}
		}
		if !strings.Contains(logged, "events_trace_index") || !strings.Contains(logged, "path=/v1/traces/"+secret) {
			t.Errorf("no log line with the error id and the full error: %q in %q", logged, logs.String())
		}
	}
	if len(ids) != 2 {
		t.Errorf("two failures share an error id: %v", ids)
	}
	// The Go client carries the id.
	_, err = query.NewClient(srv.URL, nil).Trace(context.Background(), secret)
	var apiErr *query.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || len(apiErr.ErrorID) != 16 || strings.Contains(apiErr.Message, "SELECT") {
		t.Fatalf("client error %#v", err)
	}
}
