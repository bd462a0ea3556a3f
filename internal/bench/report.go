// Package bench is Tributary's benchmark harness (make bench, cmd/tributary-bench): it runs each
// scenario against the real local Kafka broker and ClickHouse server, measures every figure
// against a baseline in the same run, and writes BENCHMARKS.md and BENCHMARKS.json.
package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Figure is one measured value, with the baseline it is compared to in the same run.
type Figure struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"` // median over Runs
	Unit     string  `json:"unit"`
	Runs     int     `json:"runs"`
	// Spread is the smallest and largest value over the runs.
	Spread [2]float64 `json:"spread"`
	// Baseline names what Value is compared to; BaselineValue is its median in the same run;
	// Ratio is the median of the per-run ratios Value/BaselineValue, RatioSpread their range.
	Baseline      string     `json:"baseline,omitempty"`
	BaselineValue float64    `json:"baseline_value,omitempty"`
	Ratio         float64    `json:"ratio,omitempty"`
	RatioSpread   [2]float64 `json:"ratio_spread,omitempty"`
	// Target states the goal, if any, and Met whether the median meets it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

// Section is one scenario's part of the report.
type Section struct {
	Scenario string   `json:"scenario"`
	Title    string   `json:"title"`
	Notes    []string `json:"notes,omitempty"` // Markdown paragraphs
	Figures  []Figure `json:"figures"`
	Error    string   `json:"error,omitempty"`
	Seconds  float64  `json:"seconds"`
}

// Report is a whole run.
type Report struct {
	Date     string    `json:"date"`
	Mode     string    `json:"mode"` // full or short
	Command  string    `json:"command"`
	Machine  []string  `json:"machine"`
	Seconds  float64   `json:"seconds"`
	Sections []Section `json:"sections"`
}

// Check lists what makes the report unusable: a section that failed or has no figures, a figure
// without a name, unit or run, or with a value or baseline that is not a finite measurement.
func (r *Report) Check() error {
	var errs []error
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || v < 0 }
	for _, s := range r.Sections {
		if s.Error != "" || len(s.Figures) == 0 {
			errs = append(errs, fmt.Errorf("scenario %s: error %q, %d figures", s.Scenario, s.Error, len(s.Figures)))
		}
		for _, f := range s.Figures {
			if f.Name == "" || f.Unit == "" || f.Runs < 1 || bad(f.Value) ||
				(f.Baseline != "" && (bad(f.BaselineValue) || bad(f.Ratio) || f.BaselineValue == 0)) {
				errs = append(errs, fmt.Errorf("scenario %s: bad figure %+v", s.Scenario, f))
			}
		}
	}
	return errors.Join(errs...)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// percentile is the nearest-rank q-quantile of v.
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// measure makes a figure from per-run values.
func measure(name, unit string, values []float64) Figure {
	return Figure{Name: name, Unit: unit, Value: median(values), Runs: len(values),
		Spread: [2]float64{slices.Min(values), slices.Max(values)}}
}

// compare makes a figure from per-run values and the baseline's values of the same runs.
func compare(name, unit string, values []float64, baseline string, base []float64) Figure {
	f := measure(name, unit, values)
	f.Baseline, f.BaselineValue = baseline, median(base)
	if len(values) > 0 && len(values) == len(base) {
		// Runs measured side by side: the median of the per-run ratios.
		ratios := make([]float64, len(values))
		for i := range values {
			ratios[i] = values[i] / base[i]
		}
		f.Ratio, f.RatioSpread = median(ratios), [2]float64{slices.Min(ratios), slices.Max(ratios)}
		return f
	}
	// Different numbers of runs (one run at 2x attributes against five at 1x): the run indexes do
	// not pair, so the ratio is of the medians, its spread the value's over the baseline's median.
	f.Ratio = f.Value / f.BaselineValue
	if len(values) > 0 {
		f.RatioSpread = [2]float64{slices.Min(values) / f.BaselineValue, slices.Max(values) / f.BaselineValue}
	}
	return f
}

// target sets a figure's goal: met reports whether it is reached.
func (f Figure) target(goal string, met bool) Figure {
	f.Target, f.Met = goal, &met
	return f
}

// WriteFiles writes BENCHMARKS.md and BENCHMARKS.json into dir, creating it if needed.
func (r *Report) WriteFiles(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dir+"/BENCHMARKS.json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(dir+"/BENCHMARKS.md", []byte(r.Markdown()), 0o644)
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Tributary benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `%s` on %s (%s mode, %s). Every figure is the median over its runs, with the\n", r.Command, r.Date, r.Mode,
		(time.Duration(r.Seconds) * time.Second).String())
	fmt.Fprintf(&b, "spread (min-max) across runs, and where there is a baseline, it was measured in the same run and the\n")
	fmt.Fprintf(&b, "ratio is the median of the per-run ratios value/baseline. The same figures are in BENCHMARKS.json.\n\n")
	fmt.Fprintf(&b, "Reproduce: `make bench` (about 30 minutes; `make bench BENCH_FLAGS=-short` for a smoke run,\n")
	fmt.Fprintf(&b, "`BENCH_FLAGS='-only query'` for one scenario). It installs and starts the local servers as `make test` does.\n\n")
	if r.Mode == "short" {
		b.WriteString("**Short mode**: a few seconds per scenario, to keep the harness working. These figures measure little " +
			"(group joins and timers dominate); judge targets on a full run only.\n\n")
	}
	b.WriteString("Machine:\n\n")
	for _, m := range r.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\n## Summary\n\n| scenario | figure | value | baseline | ratio | target |\n|---|---|---|---|---|---|\n")
	for _, s := range r.Sections {
		for _, f := range s.Figures {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Scenario, f.Name, num(f.Value, f.Unit), baseCell(f), ratioCell(f), targetCell(f))
		}
		if s.Error != "" {
			fmt.Fprintf(&b, "| %s | **failed** | %s | | | |\n", s.Scenario, strings.ReplaceAll(s.Error, "|", "/"))
		}
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Title)
		if s.Error != "" {
			fmt.Fprintf(&b, "**This scenario failed:** `%s`\n\n", s.Error)
		}
		for _, n := range s.Notes {
			b.WriteString(n + "\n\n")
		}
		if len(s.Figures) > 0 {
			b.WriteString("| figure | median | spread | runs | baseline (same run) | ratio (spread) | target |\n|---|---|---|---|---|---|---|\n")
			for _, f := range s.Figures {
				rs := ratioCell(f)
				if f.RatioSpread != [2]float64{} {
					rs += fmt.Sprintf(" (%.2f-%.2f)", f.RatioSpread[0], f.RatioSpread[1])
				}
				fmt.Fprintf(&b, "| %s | %s | %s-%s | %d | %s | %s | %s |\n", f.Name, num(f.Value, f.Unit), num(f.Spread[0], ""), num(f.Spread[1], ""),
					f.Runs, baseCell(f), rs, targetCell(f))
			}
		}
		fmt.Fprintf(&b, "\n(%s took %.0f s.)\n", s.Scenario, s.Seconds)
	}
	b.WriteString("\n## Component micro-benchmarks (not part of this run)\n\n" +
		"`go test` benchmarks of single components, each against its own baseline where it has one:\n\n" +
		"- HTTP gateway, 4 clients posting 100-record JSON batches to the real broker: " +
		"`go test ./producer/gateway -run XXX -bench BenchmarkGateway -benchtime 5x` (with the servers' environment set)\n" +
		"- rollup engine, points per second per core by aggregation type, and the quantile sketch: " +
		"`go test ./rollups -run XXX -bench . -benchtime 2s -count 3`\n")
	return b.String()
}

func num(v float64, unit string) string {
	var s string
	switch {
	case math.IsNaN(v):
		s = "n/a"
	case math.Abs(v) >= 1000:
		s = thousands(int64(math.Round(v)))
	case math.Abs(v) >= 100:
		s = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func baseCell(f Figure) string {
	if f.Baseline == "" {
		return ""
	}
	return f.Baseline + ": " + num(f.BaselineValue, f.Unit)
}

func ratioCell(f Figure) string {
	if f.Baseline == "" {
		return ""
	}
	return fmt.Sprintf("%.2f", f.Ratio)
}

func targetCell(f Figure) string {
	if f.Target == "" {
		return ""
	}
	if *f.Met {
		return f.Target + ": met"
	}
	return f.Target + ": **missed**"
}
