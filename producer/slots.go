package producer

import (
	"sync"
	"sync/atomic"
)

// slots counts records accepted and not yet answered by Kafka, and their bytes: at most maxRecords
// and maxBytes. Taking and returning room is an atomic add on the fast path; callers that find it
// full wait for a "freed" signal.
type slots struct {
	records, bytes       atomic.Int64
	maxRecords, maxBytes int64
	waiters              atomic.Int32

	mu    sync.Mutex
	freed chan struct{} // closed (and replaced) whenever room is returned while someone waits
}

func newSlots(maxRecords int, maxBytes int64) *slots {
	return &slots{maxRecords: int64(maxRecords), maxBytes: maxBytes, freed: make(chan struct{})}
}

func take(used *atomic.Int64, max, n int64) bool {
	for {
		cur := used.Load()
		if cur+n > max {
			return false
		}
		if used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// tryTake takes n records and b bytes if both are free, else nothing.
func (s *slots) tryTake(n, b int64) bool {
	if !take(&s.records, s.maxRecords, n) {
		return false
	}
	if !take(&s.bytes, s.maxBytes, b) {
		s.give(n, 0) // wakes anyone who found the records taken meanwhile
		return false
	}
	return true
}

// wait returns a channel closed when room is next returned. Call done() when no longer waiting.
func (s *slots) wait() (ch <-chan struct{}, done func()) {
	s.waiters.Add(1)
	s.mu.Lock()
	ch = s.freed
	s.mu.Unlock()
	return ch, func() { s.waiters.Add(-1) }
}

// give returns n records and b bytes and wakes waiters.
func (s *slots) give(n, b int64) {
	s.records.Add(-n)
	s.bytes.Add(-b)
	if s.waiters.Load() > 0 {
		s.mu.Lock()
		close(s.freed)
		s.freed = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *slots) len() int64     { return s.records.Load() }
func (s *slots) byteLen() int64 { return s.bytes.Load() }
