package base

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
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

// TestTrimAfterWork runs in a child with collections off: a process that
// never collected is left alone; one that did is trimmed. GOMEMLIMIT is
// off too: an operator's limit in the environment could collect.
func TestTrimAfterWork(t *testing.T) {
	if os.Getenv("INOPIPE_TRIM_CHILD") == "1" {
		if TrimAfterWork() {
			t.Fatal("trimmed a process that never collected")
		}
		runtime.GC()
		if !TrimAfterWork() {
			t.Fatal("did not trim after a collection")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrimAfterWork$", "-test.count=1")
	cmd.Env = append(os.Environ(), "INOPIPE_TRIM_CHILD=1", "GOGC=off", "GOMEMLIMIT=off")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
