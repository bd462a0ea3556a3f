package uicheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/internal/testenv"
	"github.com/tributary/tributary/query"
	"github.com/tributary/tributary/schemas"
)

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: make test installs Debian's chromium package (apt-get install chromium)")
	return ""
}

func TestExplorerInHeadlessChromium(t *testing.T) {
	cfg := testenv.ClickHouse(t)
	conn := testenv.OpenClickHouse(t, cfg)
	t0 := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	var es []schemas.Event
	var ms []schemas.Metric
	types := []string{"node_started", "node_finished", "node_failed"}
	for i := range 60 {
		es = append(es, schemas.Event{EventID: fmt.Sprint("e", i), TraceID: fmt.Sprintf("trace-%d", i%6), Type: types[i%3],
			Name: fmt.Sprintf("node_%d %s", i%4, types[i%3]), Timestamp: t0.Add(time.Duration(i) * time.Second),
			Attributes: map[string]any{"node_id": fmt.Sprintf("node_%d", i%4)}})
	}
	for i := range 600 {
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprint("m", i), Name: "cpu_percent", Value: float64(i % 7 * 10), Unit: "percent",
			AggregationType: schemas.Gauge, Timestamp: t0.Add(time.Duration(i) * time.Second), Attributes: map[string]any{"host": fmt.Sprintf("h%d", i%2)}})
	}
	ctx := context.Background()
	if err := consumer.WriteForTest(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumer.RollUpForTest(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute, time.Hour}); err != nil {
		t.Fatal(err)
	}
	qcfg := query.DefaultConfig()
	qcfg.ClickHouse = cfg
	url := testenv.QueryServer(t, qcfg)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("UI, %s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("UI, %s: %v", what, err)
		}
		return v
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	do("open", chromedp.Navigate(url+"/"), chromedp.WaitVisible(css("#events-form")))
	// Events: pick a type and an attribute, search.
	do("search events",
		chromedp.SendKeys(css("#events-type"), "node_failed"),
		chromedp.SendKeys(css("#events-attr"), "node_id=node_1"),
		chromedp.SendKeys(css("#events-start"), "2025-01-15T00:00:00Z"),
		chromedp.Click(css("#events-search")),
		chromedp.WaitVisible(css("#events-table tbody tr")))
	rows := get("count rows", chromedp.Evaluate[string](`document.querySelectorAll("#events-table tbody tr").length.toString()`))
	firstName := get("first name", chromedp.Text(css("#events-table tbody tr td:nth-child(3)")))
	// Follow the first row's trace.
	do("open a trace", chromedp.Click(css("#events-table .trace-link")), chromedp.WaitVisible(css("#trace-list li")))
	traceItems := get("count trace", chromedp.Evaluate[string](`document.querySelectorAll("#trace-list li").length.toString()`))
	// Metrics: chart cpu_percent, 5-minute average, by host.
	do("chart a metric",
		chromedp.Click(css("#tab-metrics")),
		chromedp.SendKeys(css("#metric-name"), "cpu_percent"),
		chromedp.SetValue(css("#metric-bucket"), "5m"),
		chromedp.SetValue(css("#metric-agg"), "avg"),
		chromedp.SendKeys(css("#metric-group"), "host"),
		chromedp.SendKeys(css("#metric-start"), "2025-01-15T10:00:00Z"),
		chromedp.SendKeys(css("#metric-end"), "2025-01-15T10:10:00Z"),
		chromedp.Click(css("#metric-chart")),
		chromedp.WaitVisible(css("#metric-legend li")))
	meta := get("meta", chromedp.Text(css("#metric-meta")))
	legend := get("legend", chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#metric-legend li")).map(li => li.textContent).sort().join(",")`))
	firstValue := get("first value", chromedp.Text(css("#metric-table tbody tr td:nth-child(3)")))
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// node_failed events are i%3==2; with node_id node_1 (i%4==1): i = 5, 17, 29, 41, 53.
	if rows != "5" || !strings.Contains(firstName, "node_1 node_failed") {
		t.Errorf("events table: %s rows, first %q; want 5 node_1 failures", rows, firstName)
	}
	if traceItems != "10" { // 60 events over 6 traces
		t.Errorf("trace view: %s events, want 10", traceItems)
	}
	if !strings.Contains(meta, "from rollups") || legend != "host=h0,host=h1" {
		t.Errorf("chart: meta %q, legend %q", meta, legend)
	}
	// h0 holds even i; in 10:00-10:05 that is i = 0, 2, ..., 298; values (i%7)*10.
	sum, n := 0.0, 0
	for i := 0; i < 300; i += 2 {
		sum += float64(i % 7 * 10)
		n++
	}
	if want := fmt.Sprint(sum / float64(n)); firstValue != want {
		t.Errorf("first h0 point %q, want %s", firstValue, want)
	}
	dir := filepath.Join(root(t), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "ui.png"), shot, 0o644)
		t.Logf("screenshot: %s", filepath.Join(dir, "ui.png"))
	}
}

func root(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
