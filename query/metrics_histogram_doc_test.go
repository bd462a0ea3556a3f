package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// The analysts' guide's example points are answers of /v1/metrics: every field is one the answer
// has, and each histogram is a valid one.
func TestAnalystsGuideMetricPointsAreAnswers(t *testing.T) {
	raw, err := os.ReadFile("../docs/analysts.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "### The query service's metric points"
	_, section, ok := strings.Cut(string(raw), heading)
	_, block, ok2 := strings.Cut(section, "```json\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatalf("docs/analysts.md has no JSON block under %q", heading)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(block)))
	dec.DisallowUnknownFields()
	n := 0
	for ; ; n++ {
		var m MetricJSON
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("example %d: %v", n+1, err)
		}
		rec, err := m.toMetric()
		if err == nil {
			err = rec.Validate()
		}
		if err != nil || rec.Histogram == nil {
			t.Errorf("example %d (%s): %v, histogram %+v", n+1, m.MetricID, err, rec.Histogram)
		}
	}
	if n != 2 {
		t.Errorf("%d examples, want the explicit and the exponential one", n)
	}
}
