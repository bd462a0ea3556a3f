package consumer_test

import (
	"reflect"
	"testing"

	"github.com/tributary/tributary/consumer"
	"github.com/tributary/tributary/rollups"
)

// rollups.DefaultConfig is the engine's own default: the consumer's windows, with no dedupe and
// no guard (an engine made in a test counts every point). The windows must not drift apart.
func TestRollupDefaultsAreTheEngines(t *testing.T) {
	got := consumer.DefaultConfig().RollupConfig()
	if got.DedupeIDs == 0 || got.MaxNewSeries == 0 {
		t.Fatalf("the consumer's defaults turn dedupe and the guard on: %+v", got)
	}
	got.DedupeIDs, got.MaxNewSeries, got.KnownSeries, got.NewSeriesGrace = 0, 0, 0, 0
	if want := rollups.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("consumer rollup defaults %+v; rollups.DefaultConfig %+v", got, want)
	}
}
