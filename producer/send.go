package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Sending: buffer room (records and bytes), the promise of every record, and Flush.

// produce takes buffer room for every record, then hands them to the Kafka client. Room is released
// when Kafka answers, so the buffer never holds more than MaxBufferedRecords or MaxBufferedBytes.
// d, if not nil, learns Kafka's answer for each record instead of Flush.
func (c *Client) produce(ctx context.Context, d *Delivery, recs ...*kgo.Record) error {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	var size int64
	for _, r := range recs {
		size += bufferSize(r)
	}
	if err := c.reserve(ctx, len(recs), size); err != nil {
		return err
	}
	promise := c.untracked
	if d != nil {
		promise = func(r *kgo.Record, err error) {
			c.answered(r, err)
			d.answered(err)
		}
	}
	for _, r := range recs {
		c.accepted.Add(1)
		c.kc.Produce(context.Background(), r, promise)
	}
	return nil
}

// bufferSize is what a record counts against MaxBufferedBytes.
func bufferSize(r *kgo.Record) int64 { return int64(len(r.Key) + len(r.Value)) }

// reserve takes n slots and size bytes, all or none, following the BufferFullPolicy.
func (c *Client) reserve(ctx context.Context, n int, size int64) error {
	switch {
	case n > c.cfg.MaxBufferedRecords:
		return fmt.Errorf("record: %w: %d records in one call, the buffer holds %d (MaxBufferedRecords)", ErrBufferFull, n, c.cfg.MaxBufferedRecords)
	case size > c.cfg.MaxBufferedBytes:
		return fmt.Errorf("record: %w: %d bytes in one call, the buffer holds %d (MaxBufferedBytes)", ErrBufferFull, size, c.cfg.MaxBufferedBytes)
	}
	if c.slots.tryTake(int64(n), size) {
		return nil
	}
	if c.cfg.BufferFullPolicy == "drop" {
		c.dropped.Add(uint64(n))
		return fmt.Errorf("record: %w (%s); dropped", ErrBufferFull, c.fullness())
	}
	var timeout <-chan time.Time
	if c.cfg.BufferFullTimeout > 0 {
		t := time.NewTimer(c.cfg.BufferFullTimeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		freed, done := c.slots.wait()
		if c.slots.tryTake(int64(n), size) { // room returned between the first try and wait
			done()
			return nil
		}
		select {
		case <-freed:
			done()
			if c.slots.tryTake(int64(n), size) {
				return nil
			}
			continue
		case <-c.done:
			done()
			return ErrClosed
		case <-ctx.Done():
			done()
			return fmt.Errorf("record: %w (%s): %w", ErrBufferFull, c.fullness(), ctx.Err())
		case <-timeout:
			done()
			return fmt.Errorf("record: %w (%s) for %v", ErrBufferFull, c.fullness(), c.cfg.BufferFullTimeout)
		}
	}
}

func (c *Client) fullness() string {
	return fmt.Sprintf("%d of %d records, %d of %d bytes waiting for Kafka", c.slots.len(), c.cfg.MaxBufferedRecords,
		c.slots.byteLen(), c.cfg.MaxBufferedBytes)
}

// answered releases a record's room and counts Kafka's final answer.
func (c *Client) answered(r *kgo.Record, err error) {
	c.slots.give(1, bufferSize(r))
	if err == nil {
		c.sent.Add(1)
	} else {
		c.failed.Add(1)
	}
}

// delivered is the promise of every untracked record: its failure is kept for Flush.
func (c *Client) delivered(r *kgo.Record, err error) {
	c.answered(r, err)
	if err == nil {
		return
	}
	c.mu.Lock()
	c.failures++
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.mu.Unlock()
}

// Flush blocks until Kafka has answered every record accepted before the call, or ctx ends (then
// it returns ctx's error). It then reports and clears the process-wide failure count: an error
// naming how many records were finally refused by Kafka, and the first reason, for records
// accepted by RecordEvent, RecordMetric and RecordBatch (from any goroutine) whose failure no
// earlier Flush reported. Concurrent Flush callers share that count; the first to return after a
// failure reports it. Records accepted by RecordBatchDelivery are waited for but their failures
// are reported only to their Delivery. Failures stay counted in Stats.Failed.
func (c *Client) Flush(ctx context.Context) error {
	if err := c.kc.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	c.mu.Lock()
	n, err := c.failures, c.firstErr
	c.failures, c.firstErr = 0, nil
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("flush: %d records were not delivered, first: %w", n, err)
	}
	return nil
}
