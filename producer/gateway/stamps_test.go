package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered returns every sample of the stamps' metrics by name{label=value}.
func gathered(t *testing.T, s *stamps) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			out[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

func TestStampsCacheHorizon(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStamps(10*time.Minute, 2)
	s.now = func() time.Time { return now }
	metrics := func(want map[string]float64) {
		t.Helper()
		got := gathered(t, s)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	}
	const filled, horizon = "tributary_gateway_timestamps_filled_total", "tributary_gateway_timestamp_cache_horizon_seconds"
	metrics(map[string]float64{filled + "{source=cache_miss}": 0, horizon: 600, "tributary_gateway_timestamp_cache_entries": 0})

	a := s.timestamp("acme", "event", "a")
	now = now.Add(time.Minute)
	if got := s.timestamp("acme", "event", "a"); !got.Equal(a) {
		t.Fatalf("re-send within the TTL: %v, want %v", got, a)
	}
	if got := s.timestamp("globex", "event", "a"); got.Equal(a) {
		t.Fatal("another tenant's id shared a timestamp")
	}
	// Full (2 ids): the horizon is the age of the oldest, acme's "a", first seen a minute ago.
	metrics(map[string]float64{filled + "{source=cache_miss}": 2, filled + "{source=cache_hit}": 1, horizon: 60,
		"tributary_gateway_timestamp_cache_entries": 2, "tributary_gateway_timestamp_cache_evictions_total": 0})
	s.timestamp("acme", "metric", "b") // the cache holds 2: "a" is evicted
	if got := s.timestamp("acme", "event", "a"); got.Equal(a) {
		t.Fatal("an evicted id kept its timestamp")
	}
	metrics(map[string]float64{filled + "{source=cache_miss}": 4, filled + "{source=cache_hit}": 1,
		"tributary_gateway_timestamp_cache_evictions_total": 2, horizon: 0})
	now = now.Add(10 * time.Minute)
	b := s.timestamp("acme", "metric", "b")
	if !b.Equal(now) {
		t.Fatalf("a re-send after the TTL: %v, want a new timestamp %v", b, now)
	}
	// Both older ids expired (not evicted): one id held, the horizon is the TTL again.
	metrics(map[string]float64{filled + "{source=cache_miss}": 5, "tributary_gateway_timestamp_cache_evictions_total": 2,
		"tributary_gateway_timestamp_cache_entries": 1, horizon: 600})

	if got := s.timestamp("acme", "event", ""); !got.IsZero() {
		t.Fatalf("no id: %v, want the zero time (the producer fills now)", got)
	}
	v7 := "0190f3a2-5b1c-7def-8000-000000000001"
	want := time.UnixMilli(0x0190f3a25b1c).UTC()
	s.now = func() time.Time { return want.Add(time.Hour) }
	if got := s.timestamp("acme", "event", v7); !got.Equal(want) {
		t.Fatalf("UUIDv7 id: %v, want its own time %v", got, want)
	}
	s.now = func() time.Time { return want.Add(48 * time.Hour) }
	if got := s.timestamp("acme", "event", v7); got.Equal(want) {
		t.Fatal("a UUIDv7 time two days off was used")
	}
	metrics(map[string]float64{filled + "{source=no_id}": 1, filled + "{source=uuidv7}": 1, filled + "{source=cache_miss}": 6})
}
