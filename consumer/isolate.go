package consumer

import (
	"context"
	"errors"
)

// isolation is the progress of writing one kind of a batch's raw rows in parts after ClickHouse
// refused them as a whole. It is kept in the batch, so that a retryable failure on the way is
// followed by the rest of the work, not by all of it again: starting over needed every one of the
// ~2·log2(rows) writes to succeed in a row, which a flaky connection made unlikely enough to stop
// the partition.
type isolation struct {
	todo []span // row ranges not yet stored; the last is next
}

// span is rows [i, j) of a kind; refused says ClickHouse refused them together (for cause), so
// they are split, or dead-lettered if alone, without writing them again.
type span struct {
	i, j    int
	refused bool
	cause   error
}

// errResumeIsolation is what an attempt reports for a batch whose isolation is under way: flush
// takes it, as a permanent error, to isolateRaw, which resumes.
var errResumeIsolation = Permanent(errors.New("resume writing refused rows in parts"))

func (b *Batch) isolating() bool { return b.isolation[0] != nil || b.isolation[1] != nil }

// isolateRaw writes the raw rows of b not yet stored in halves, after ClickHouse refused them for
// their content (cause): a row refused on its own goes to the dead-letter topic with ClickHouse's
// reason (through the outbox, sent before the commit), and the rest is stored. Each kind is first
// written whole once more (cause may be the other kind's). A retryable error interrupts it and is
// returned; the next call resumes where it stopped.
func (w *Worker) isolateRaw(ctx context.Context, b *Batch, cause error) error {
	for k, events := range []bool{true, false} {
		if *b.rawWritten(events) || b.rawRows(events) == 0 {
			continue
		}
		iso := b.isolation[k]
		if iso == nil {
			w.log.Error("ClickHouse refused a batch's rows for their content; writing it in parts and dead-lettering the rows it refuses",
				"records", b.Len(), "err", cause)
			iso = &isolation{todo: []span{{i: 0, j: b.rawRows(events)}}}
			b.isolation[k] = iso
		}
		for len(iso.todo) > 0 {
			last := len(iso.todo) - 1
			s := iso.todo[last]
			switch {
			case s.refused && s.j-s.i == 1:
				b.outbox = append(b.outbox, w.deadLetter(b.rawSources(events)[s.i], "clickhouse refused the row: "+s.cause.Error()))
				b.outboxSent = false
				w.refused.Add(1)
				b.refusedRows++
				iso.todo = iso.todo[:last]
			case s.refused:
				mid := (s.i + s.j) / 2
				iso.todo = append(iso.todo[:last], span{i: mid, j: s.j}, span{i: s.i, j: mid})
			default:
				actx, cancel := context.WithTimeout(ctx, w.cfg.WriteTimeout)
				err := w.store.Write(actx, b.rawSlice(events, s.i, s.j))
				cancel()
				switch {
				case err == nil:
					iso.todo = iso.todo[:last]
				case IsPermanent(err):
					iso.todo[last].refused, iso.todo[last].cause = true, err
				default:
					return err
				}
			}
		}
		b.isolation[k] = nil
		*b.rawWritten(events) = true
	}
	return nil
}
