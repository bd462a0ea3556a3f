package query

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// uiFiles is the explorer: one page (no build step, no network but this service's API) to search
// events, follow a trace and chart a metric's time series, with uPlot (query/ui/vendor/uplot,
// MIT) for the charts.
//
//go:embed ui/index.html ui/vendor/uplot/uPlot.iife.min.js ui/vendor/uplot/uPlot.min.css ui/vendor/uplot/LICENSE
var uiFiles embed.FS

// uiHandler serves GET /ui/... from uiFiles: /ui/ is the page, /ui/vendor/uplot/... its library.
// Directories other than /ui/ itself are not listed (404).
func uiHandler() http.Handler {
	root, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui/" && strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
