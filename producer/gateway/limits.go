package gateway

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// limits bounds what ingest requests hold at once: how many are served, and the body bytes they
// have read. Both are taken without waiting: an overloaded gateway answers 503 at once.
type limits struct {
	slots    chan struct{}
	bytes    atomic.Int64
	maxBytes int64
}

func newLimits(cfg Config) *limits {
	return &limits{slots: make(chan struct{}, cfg.MaxConcurrentRequests), maxBytes: cfg.MaxInflightBytes}
}

// errOverloaded is a request refused by a limit; the message names it and the setting to raise.
var errOverloaded = errors.New("gateway overloaded")

type overload struct {
	limit   string // the metric label
	setting string
	msg     string
}

func (o *overload) Error() string { return o.msg }
func (o *overload) Unwrap() error { return errOverloaded }

func (l *limits) enter() (leave func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	default:
		return nil, &overload{limit: "concurrent_requests", setting: "TRIBUTARY_GATEWAY_MAX_CONCURRENT_REQUESTS",
			msg: fmt.Sprintf("%d ingest requests in flight, the most TRIBUTARY_GATEWAY_MAX_CONCURRENT_REQUESTS allows; nothing was accepted, retry later (or raise it)", cap(l.slots))}
	}
}

// countedBody takes every byte read from r from the shared budget; release returns them.
type countedBody struct {
	r     io.Reader
	l     *limits
	taken int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		if b.l.bytes.Add(int64(n)) > b.l.maxBytes {
			b.l.bytes.Add(-int64(n))
			return 0, &overload{limit: "inflight_bytes", setting: "TRIBUTARY_GATEWAY_MAX_INFLIGHT_BYTES",
				msg: fmt.Sprintf("request bodies in flight would exceed %d bytes (TRIBUTARY_GATEWAY_MAX_INFLIGHT_BYTES); nothing was accepted, retry later (or raise it)", b.l.maxBytes)}
		}
		b.taken += int64(n)
	}
	return n, err
}

func (b *countedBody) release() { b.l.bytes.Add(-b.taken) }
