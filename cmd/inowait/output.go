package main

import (
	"io"
	"sync"
)

// outputLimit is how much output inowait holds for a reader that is not
// keeping up (about 250,000 JSON events). Past it the watcher waits for
// the reader, stops draining the kernel queue, and a storm that goes on
// ends in a Q_OVERFLOW: a full resync downstream, nothing lost.
const outputLimit = 32 << 20

// output writes to w from a goroutine of its own, so that a reader that
// stops for a while (a stage busy with a large batch) never stops the
// watcher from draining the kernel queue: the kernel's queue is short
// (fs.inotify.max_queued_events) and drops events when full, this one
// holds up to limit bytes and then makes Write wait.
type output struct {
	w     io.Writer
	limit int

	mu      sync.Mutex
	cond    sync.Cond // pending shrank, err was set, or work arrived
	pending [][]byte  // chunks written by Write, oldest first
	size    int       // bytes in pending
	free    [][]byte  // written chunks, for reuse
	err     error     // the first write error; every later Write returns it
	closing bool
	done    chan struct{}
}

func newOutput(w io.Writer, limit int) *output {
	o := &output{w: w, limit: limit, done: make(chan struct{})}
	o.cond.L = &o.mu
	go o.loop()
	return o
}

// Write queues a copy of p. It waits only while more than limit bytes are
// queued, and returns the error of an earlier write (EPIPE: the reader is
// gone) instead of queueing more.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.err == nil && o.size > 0 && o.size+len(p) > o.limit {
		o.cond.Wait()
	}
	if o.err != nil {
		return 0, o.err
	}
	var c []byte
	if n := len(o.free); n > 0 {
		c, o.free = o.free[n-1][:0], o.free[:n-1]
	}
	o.pending = append(o.pending, append(c, p...))
	o.size += len(p)
	o.cond.Broadcast()
	return len(p), nil
}

func (o *output) loop() {
	defer close(o.done)
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		for len(o.pending) == 0 && !o.closing {
			o.cond.Wait()
		}
		if len(o.pending) == 0 {
			return
		}
		c := o.pending[0]
		o.mu.Unlock()
		_, err := o.w.Write(c)
		o.mu.Lock()
		o.pending[0] = nil
		o.pending = o.pending[1:]
		o.size -= len(c)
		if len(o.free) < 4 && cap(c) <= 256<<10 {
			o.free = append(o.free, c)
		}
		if err != nil && o.err == nil {
			o.err = err
		}
		o.cond.Broadcast()
		if o.err != nil {
			o.pending, o.size = nil, 0
			return
		}
	}
}

// Close writes what is queued and returns the first write error.
func (o *output) Close() error {
	o.mu.Lock()
	o.closing = true
	o.cond.Broadcast()
	o.mu.Unlock()
	<-o.done
	return o.err
}
