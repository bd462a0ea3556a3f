package bench

import "testing"

// Runs measured side by side give the median of their per-run ratios; a figure with fewer runs
// than its baseline (one run at 2x attributes against five at 1x) is compared with the baseline's
// median, not with whichever baseline run shares its index.
func TestCompareRatios(t *testing.T) {
	paired := compare("x", "records/s", []float64{10, 20, 30}, "base", []float64{20, 20, 60})
	if paired.Ratio != 0.5 || paired.RatioSpread != [2]float64{0.5, 1} {
		t.Errorf("paired runs: ratio %v spread %v, want 0.5 and [0.5 1]", paired.Ratio, paired.RatioSpread)
	}
	// The first baseline run is an outlier: pairing the one run with it would say 2.5.
	one := compare("x at 2x", "records/s", []float64{100}, "x at 1x", []float64{40, 140, 150, 160, 145})
	if one.Ratio != 100.0/145 || one.RatioSpread != [2]float64{100.0 / 145, 100.0 / 145} {
		t.Errorf("one run against five: ratio %v spread %v, want %v", one.Ratio, one.RatioSpread, 100.0/145)
	}
}
