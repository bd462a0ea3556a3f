package uicheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/tributary/tributary/consumer/consumertest"
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
		ms = append(ms, schemas.Metric{MetricID: fmt.Sprint("m", i), Name: "cpu_percent", Value: float64(i%7*10) / 3, Unit: "percent",
			AggregationType: schemas.Gauge, Timestamp: t0.Add(time.Duration(i) * time.Second), Attributes: map[string]any{"host": fmt.Sprintf("h%d", i%2)}})
	}
	ctx := context.Background()
	if err := consumertest.Write(ctx, conn, cfg.Database, es, ms); err != nil {
		t.Fatal(err)
	}
	if err := consumertest.RollUp(ctx, conn, cfg.Database, ms, []time.Duration{time.Minute, time.Hour}); err != nil {
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
		chromedp.WaitVisible(css("#chart .u-legend .u-series")))
	meta := get("meta", chromedp.Text(css("#metric-meta")))
	legend := get("legend", chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#chart .u-legend .u-series .u-label"))
		.map(e => e.textContent).filter(l => l !== "time (UTC)").sort().join(",")`))
	firstValue := get("first value", chromedp.Text(css("#metric-table tbody tr td:nth-child(3)")))
	firstExact := get("first value's title", chromedp.Evaluate[string](`document.querySelector("#metric-table tbody tr td:nth-child(3)").title`))
	xTicks := get("x ticks", chromedp.Evaluate[string](`document.getElementById("chart").dataset.xTicks || "[]"`))
	yTicks := get("y ticks", chromedp.Evaluate[string](`document.getElementById("chart").dataset.yTicks || "[]"`))
	grid := get("grid", chromedp.Evaluate[string](`String(explorerChart.axes[0].grid.show && explorerChart.axes[1].grid.show)`))
	// Hover near the left edge of the plot: the cursor snaps to the first bucket (10:00).
	var over struct{ X, Y, W, H float64 }
	if err := json.Unmarshal([]byte(get("plot area", chromedp.Evaluate[string](
		`(() => { const r = document.querySelector("#chart .u-over").getBoundingClientRect(); return JSON.stringify({X: r.x, Y: r.y, W: r.width, H: r.height}); })()`))), &over); err != nil {
		t.Fatal(err)
	}
	do("hover the chart", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, over.X+over.W*0.05, over.Y+over.H/2), chromedp.WaitVisible(css("#chart-tooltip")))
	tip := get("tooltip", chromedp.Text(css("#chart-tooltip")))
	liveValues := get("legend values", chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#chart .u-legend .u-series"))
		.map(r => r.querySelector(".u-label").textContent + "=" + r.querySelector(".u-value").textContent).join(";")`))
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot()) // the viewport, as hovered
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Clicking the second series' legend entry hides its line: none of its colour is left drawn.
	const first, second = "34,119,170", "238,102,51" // the palette's first two colours, #27a and #e63
	before := [2]string{get("pixels", chromedp.Evaluate[string](pixels(first))), get("pixels", chromedp.Evaluate[string](pixels(second)))}
	do("toggle a series", chromedp.Click(css("#chart .u-legend .u-series:nth-child(3) .u-label")))
	after := [2]string{get("pixels", chromedp.Evaluate[string](pixels(first))), get("pixels", chromedp.Evaluate[string](pixels(second)))}
	hidden := get("hidden", chromedp.Evaluate[string](`String(!explorerChart.series[2].show && document.querySelector("#chart .u-legend .u-series:nth-child(3)").classList.contains("u-off"))`))
	do("toggle it back", chromedp.Click(css("#chart .u-legend .u-series:nth-child(3) .u-label")))
	back := get("pixels", chromedp.Evaluate[string](pixels(second)))

	// node_failed events are i%3==2; with node_id node_1 (i%4==1): i = 5, 17, 29, 41, 53.
	if rows != "5" || !strings.Contains(firstName, "node_1 node_failed") {
		t.Errorf("events table: %s rows, first %q; want 5 node_1 failures", rows, firstName)
	}
	if traceItems != "10" { // 60 events over 6 traces
		t.Errorf("trace view: %s events, want 10", traceItems)
	}
	if !strings.Contains(meta, "from rollups") || !strings.Contains(meta, "in percent") || legend != "host=h0,host=h1" {
		t.Errorf("chart: meta %q, legend %q", meta, legend)
	}
	// h0 holds even i; in 10:00-10:05 that is i = 0, 2, ..., 298; values (i%7)*10/3, mean 9.9333...
	sum, n := 0.0, 0
	for i := 0; i < 300; i += 2 {
		sum += float64(i%7*10) / 3
		n++
	}
	exact := sum / float64(n)
	rounded := strconv.FormatFloat(exact, 'g', 4, 64) + "%" // 9.933%
	if shown, err := strconv.ParseFloat(firstExact, 64); err != nil || math.Abs(shown-exact) > 1e-12*exact || firstValue != rounded {
		t.Errorf("first h0 point %q (exact %q), want %s (exact %v)", firstValue, firstExact, rounded, exact)
	}
	checkTicks(t, "time", xTicks, regexp.MustCompile(`^\d\d:\d\d(:\d\d)?(\n2025-01-15)?$`))
	checkTicks(t, "value", yTicks, regexp.MustCompile(`^\d+(\.\d{1,3})?%$`))
	if grid != "true" {
		t.Errorf("chart grid shown: %s", grid)
	}
	if !strings.Contains(tip, "2025-01-15 10:00:00 UTC") || !strings.Contains(tip, "host=h0: "+rounded) || !strings.Contains(liveValues, "host=h0="+rounded) {
		t.Errorf("hover at 10:00: tooltip %q, legend %q; want host=h0 at %s", tip, liveValues, rounded)
	}
	if atoi(before[0]) < 20 || atoi(before[1]) < 20 || after[1] != "0" || atoi(after[0]) < 20 || hidden != "true" || atoi(back) < 20 {
		t.Errorf("legend toggle: pixels of the two series' colours %v before, %v after hiding the second (hidden: %s), %s after showing it again",
			before, after, hidden, back)
	}
	dir := filepath.Join(root(t), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "ui.png"), shot, 0o644)
		t.Logf("screenshot: %s", filepath.Join(dir, "ui.png"))
	}
}

// pixels is JavaScript counting the chart canvas' pixels within a small distance of the colour
// "r,g,b" (anti-aliased edges blend with the background).
func pixels(rgb string) string {
	return `(() => { const [r, g, b] = [` + rgb + `]; const c = document.querySelector("#chart canvas");
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0;
		for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 40 && d[i + 3] > 200) n++;
		return String(n); })()`
}

// checkTicks wants more than two labelled ticks on an axis, each label as want says.
func checkTicks(t *testing.T, axis, ticksJSON string, want *regexp.Regexp) {
	t.Helper()
	var ticks []string
	if err := json.Unmarshal([]byte(ticksJSON), &ticks); err != nil || len(ticks) <= 2 {
		t.Errorf("%s axis: ticks %s (%v), want more than 2", axis, ticksJSON, err)
		return
	}
	for _, l := range ticks {
		if !want.MatchString(l) {
			t.Errorf("%s axis: tick %q is not like %s", axis, l, want)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func root(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
