package batch

import (
	"fmt"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// Loop drives c: it adds the events received on in, emits batches when
// they are due, and when in is closed it emits everything still pending
// before it returns, so a batch held in memory is never silently lost.
// in is closed at the end of input and also on SIGTERM, by the reader,
// once it has handed over every event it read: a stop is never a reason
// to drop what is queued on in. emit errors end the loop.
// Loop keeps neither a received slice nor pointers into it once it
// receives the next one: a sender may fill a slice again after the send
// that follows it (evbatch alternates two).
// The clock is time.Now; tests run Loop under testing/synctest.
func Loop(c *Coalescer, in <-chan []event.Event, emit func(*event.Batch) error) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func(bs []event.Batch) error {
		for i := range bs {
			if err := emit(&bs[i]); err != nil {
				return lost(err, bs[i:], c)
			}
		}
		return nil
	}
	for {
		if next, ok := c.Next(); ok {
			timer.Reset(time.Until(next))
			armed = true
		} else if armed {
			timer.Stop()
			armed = false
		}
		select {
		case evs, ok := <-in:
			if !ok {
				return flush(c.Flush())
			}
			now := time.Now()
			for i := range evs {
				c.Add(&evs[i], now)
			}
			if err := flush(c.Due(now)); err != nil {
				return err
			}
		case <-timer.C:
			armed = false
			if err := flush(c.Due(time.Now())); err != nil {
				return err
			}
		}
	}
}

// EmitError is Loop's error when emit fails: what was not written, so the
// operator is told the truth (a resync covers it).
type EmitError struct {
	Err   error
	Paths int // paths in batches not written, and still pending
	Full  int // full-resync batches not written
}

func (e *EmitError) Error() string {
	s := fmt.Sprintf("%v (%d paths not written", e.Err, e.Paths)
	if e.Full > 0 {
		s += fmt.Sprintf(", and %d full resync(s)", e.Full)
	}
	return s + ")"
}

func (e *EmitError) Unwrap() error { return e.Err }

// lost counts what an emit failure leaves unwritten: the batches from the
// one that failed on, and everything still pending in c.
func lost(err error, unwritten []event.Batch, c *Coalescer) *EmitError {
	e := &EmitError{Err: err, Paths: c.Pending()}
	for _, b := range unwritten {
		if b.Full {
			e.Full++
		}
		e.Paths += len(b.Sync) + len(b.Delete)
	}
	return e
}
