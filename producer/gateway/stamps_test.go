package gateway

import (
	"testing"
	"time"
)

func TestStampsCacheHorizon(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStamps(10*time.Minute, 2)
	s.now = func() time.Time { return now }
	a := s.timestamp("acme", "event", "a")
	now = now.Add(time.Minute)
	if got := s.timestamp("acme", "event", "a"); !got.Equal(a) {
		t.Fatalf("re-send within the TTL: %v, want %v", got, a)
	}
	if got := s.timestamp("globex", "event", "a"); got.Equal(a) {
		t.Fatal("another tenant's id shared a timestamp")
	}
	s.timestamp("acme", "metric", "b") // the cache holds 2: "a" is evicted
	if got := s.timestamp("acme", "event", "a"); got.Equal(a) {
		t.Fatal("an evicted id kept its timestamp")
	}
	now = now.Add(10 * time.Minute)
	b := s.timestamp("acme", "metric", "b")
	if !b.Equal(now) {
		t.Fatalf("a re-send after the TTL: %v, want a new timestamp %v", b, now)
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
}
