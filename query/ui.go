package query

import (
	_ "embed"
	"net/http"
)

// uiPage is the explorer: one self-contained page (no build step, no network but this service's
// API) to search events, follow a trace and chart a metric's time series.
//
//go:embed ui/index.html
var uiPage []byte

func serveUI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
	_, _ = w.Write(uiPage)
}
