package producer

import (
	"sync"
	"sync/atomic"
)

// slots counts records accepted and not yet answered by Kafka, at most max. Taking and returning
// room is an atomic add on the fast path; callers that find it full wait for a "freed" signal.
type slots struct {
	used    atomic.Int64
	max     int64
	waiters atomic.Int32

	mu    sync.Mutex
	freed chan struct{} // closed (and replaced) whenever room is returned while someone waits
}

func newSlots(max int) *slots { return &slots{max: int64(max), freed: make(chan struct{})} }

// tryTake takes n slots if they are free.
func (s *slots) tryTake(n int64) bool {
	for {
		cur := s.used.Load()
		if cur+n > s.max {
			return false
		}
		if s.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// wait returns a channel closed when room is next returned. Call done() when no longer waiting.
func (s *slots) wait() (ch <-chan struct{}, done func()) {
	s.waiters.Add(1)
	s.mu.Lock()
	ch = s.freed
	s.mu.Unlock()
	return ch, func() { s.waiters.Add(-1) }
}

// give returns n slots and wakes waiters.
func (s *slots) give(n int64) {
	s.used.Add(-n)
	if s.waiters.Load() > 0 {
		s.mu.Lock()
		close(s.freed)
		s.freed = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *slots) len() int64 { return s.used.Load() }
