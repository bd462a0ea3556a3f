package query

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The explorer page and every file it references are served from the binary, with the page's
// content security policy; directories are not listed.
func TestUIServesPageAndVendoredChart(t *testing.T) {
	srv := httptest.NewServer(uiHandler())
	defer srv.Close()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	code, typ, page := get("/ui/")
	if code != http.StatusOK || !strings.HasPrefix(typ, "text/html") {
		t.Fatalf("/ui/: %d %s", code, typ)
	}
	refs := regexp.MustCompile(`(?:src|href)="(vendor/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 2 {
		t.Fatalf("page references %v, want uPlot's script and stylesheet", refs)
	}
	want := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, r := range refs {
		code, typ, body := get("/ui/" + r[1])
		ext := r[1][strings.LastIndex(r[1], "."):]
		if code != http.StatusOK || !strings.HasPrefix(typ, want[ext]) || len(body) < 1000 {
			t.Errorf("/ui/%s: %d %s, %d bytes", r[1], code, typ, len(body))
		}
	}
	if code, _, body := get("/ui/vendor/uplot/LICENSE"); code != http.StatusOK || !strings.Contains(body, "MIT License") {
		t.Errorf("uPlot's licence: %d", code)
	}
	for _, path := range []string{"/ui/vendor/", "/ui/vendor/uplot/", "/ui/vendor/uplot/README.md", "/ui/nothing.js"} {
		if code, _, _ := get(path); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
}
