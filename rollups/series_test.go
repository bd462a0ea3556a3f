package rollups

import (
	"testing"

	"github.com/cespare/xxhash/v2"
)

// A series id is stable across processes and versions: xxhash64 of the identity's parts, each
// followed by a zero byte; SeriesIDBytes gives the same.
func TestSeriesIDIsStable(t *testing.T) {
	parts := []string{"tenant-a", "http.duration", "ms", "gauge", `{"route":"/a"}`}
	var want []byte
	for _, p := range parts {
		want = append(append(want, p...), 0)
	}
	if got := SeriesID(parts[0], parts[1], parts[2], parts[3], parts[4]); got != xxhash.Sum64(want) {
		t.Fatalf("SeriesID %x, want %x", got, xxhash.Sum64(want))
	}
	if got := SeriesIDBytes(parts[0], parts[1], parts[2], parts[3], []byte(parts[4])); got != xxhash.Sum64(want) {
		t.Fatalf("SeriesIDBytes %x, want %x", got, xxhash.Sum64(want))
	}
	if got, want := RecordID("t", "id"), xxhash.Sum64String("t\x00id"); got != want {
		t.Fatalf("RecordID %x, want %x", got, want)
	}
}
