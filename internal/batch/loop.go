package batch

import (
	"context"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// Loop drives c: it adds the events received on in, emits batches when
// they are due, and when in is closed (end of input) or ctx is done
// (SIGTERM) it emits everything still pending before it returns, so a
// batch held in memory is never silently lost. emit errors end the loop.
// The clock is time.Now; tests run Loop under testing/synctest.
func Loop(ctx context.Context, c *Coalescer, in <-chan []event.Event, emit func(*event.Batch) error) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func(bs []event.Batch) error {
		for i := range bs {
			if err := emit(&bs[i]); err != nil {
				return err
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
		case <-ctx.Done():
			return flush(c.Flush())
		}
	}
}
