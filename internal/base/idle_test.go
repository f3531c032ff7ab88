package base

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

var sink [][]byte

// After work, an idle process gives its free heap back: the garbage of a
// burst is released at the first tick with no allocation since the one
// before; a tick after an allocation waits.
func TestTrimWhenIdle(t *testing.T) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	free := func() uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	for range 200 { // a burst: 20 MiB allocated, then garbage
		sink = append(sink, make([]byte, 100<<10))
	}
	sink = nil
	runtime.GC()
	if free() < 1<<20 {
		t.Skipf("the runtime already released the burst's memory (%d bytes free)", free())
	}
	tr := newTrimmer()
	tr.tick() // the burst's allocations: work, not idle
	sink = append(sink, make([]byte, 100<<10))
	if tr.tick() {
		t.Fatal("trimmed at a tick that followed an allocation")
	}
	sink = nil
	// Idle from here on; the runtime itself may allocate now and then
	// (the test framework's goroutines): a tick that sees it waits.
	trimmed := false
	for range 100 {
		if trimmed = tr.tick(); trimmed {
			break
		}
	}
	if !trimmed {
		t.Fatal("100 ticks without allocating and no trim")
	}
	if f := free(); f >= 512<<10 {
		t.Fatalf("%d bytes of free heap still held after the trim", f)
	}
}

// TrimWhenIdle ticks until its context ends.
func TestTrimWhenIdleStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { TrimWhenIdle(ctx, time.Millisecond); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("TrimWhenIdle still running 10 s after its context ended")
	}
}
