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
// burst is released within a few periods instead of staying resident.
func TestTrimWhenIdle(t *testing.T) {
	// free allocates nothing: an allocation of the test's own in every
	// period would keep the process from ever being idle.
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go TrimWhenIdle(ctx, 20*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for free() >= 512<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of free heap still held after 10 s idle", free())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
