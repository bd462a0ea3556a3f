package producer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Delivery is the fate of the records one RecordBatchDelivery call accepted. Its methods are safe
// for concurrent use.
type Delivery struct {
	accepted int
	pending  atomic.Int64
	done     chan struct{} // closed when Kafka answered every record

	mu     sync.Mutex
	failed int
	first  error
}

func newDelivery(n int) *Delivery {
	d := &Delivery{accepted: n, done: make(chan struct{})}
	d.pending.Store(int64(n))
	if n == 0 {
		close(d.done)
	}
	return d
}

func (d *Delivery) answered(err error) {
	if err != nil {
		d.mu.Lock()
		d.failed++
		if d.first == nil {
			d.first = err
		}
		d.mu.Unlock()
	}
	if d.pending.Add(-1) == 0 {
		close(d.done)
	}
}

// Accepted is the number of records the call handed to Kafka (records of sampled-out traces and
// switched-off kinds are not among them).
func (d *Delivery) Accepted() int { return d.accepted }

// Done is closed when Kafka has answered every record of the call.
func (d *Delivery) Done() <-chan struct{} { return d.done }

// Wait blocks until Kafka has answered every record of the call, or ctx ends. It returns nil when
// every record was acknowledged, a *DeliveryError when some were finally refused, and ctx's error
// (wrapped) when ctx ended first; the records then stay in the buffer and may still be delivered.
// It does not hurry the records (Linger still applies) and reports nothing about other calls.
func (d *Delivery) Wait(ctx context.Context) error {
	select {
	case <-d.done:
	case <-ctx.Done():
		return fmt.Errorf("wait for delivery of %d records (%d unanswered): %w", d.accepted, d.pending.Load(), ctx.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed > 0 {
		return &DeliveryError{Failed: d.failed, Accepted: d.accepted, Err: d.first}
	}
	return nil
}

// DeliveryError reports records of one call that Kafka finally refused: how many, and the first
// reason (for example kerr.MessageTooLarge), which it unwraps to.
type DeliveryError struct {
	Failed, Accepted int
	Err              error
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("%d of %d records were not delivered, first: %v", e.Failed, e.Accepted, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }
