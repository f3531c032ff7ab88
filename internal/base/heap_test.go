package base

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var heapSink []byte

// peakHeap allocates 64 MiB of 4 KiB garbage, at about 256 MiB/s (a
// stage at work decoding ~250,000 events a second), while holding live
// bytes, and returns the largest heap (objects, live and dead) seen: what
// the process keeps resident during a burst.
func peakHeap(live int) uint64 {
	keep := make([]byte, live)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	for i := range 64 << 8 {
		heapSink = make([]byte, 4<<10)
		if i%16 == 0 {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
		}
		if i%64 == 63 {
			time.Sleep(time.Millisecond) // the pace of the workload
		}
	}
	runtime.KeepAlive(keep)
	return peak
}

// memoryLimit is the soft memory limit in force.
func memoryLimit() int64 { return debug.SetMemoryLimit(-1) }

// waitLimit collects until the tuner (a finalizer, after a collection)
// has set a limit for which ok holds.
func waitLimit(t *testing.T, what string, ok func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(memoryLimit()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: memory limit still %d after 10 s", what, memoryLimit())
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // the finalizer goroutine runs
	}
}

func noEnvTuning(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT is set: TightHeap leaves the collector to it")
	}
}

// A stage holding 256 KiB keeps its heap near live + floor during a
// burst of garbage, where Go alone lets it reach its 4 MiB minimum.
func TestTightHeapSmallHeap(t *testing.T) {
	noEnvTuning(t)
	runtime.GC()
	untuned := peakHeap(256 << 10)
	stop := TightHeap(1 << 20)
	defer stop()
	waitLimit(t, "small heap", func(l int64) bool { return l < 64<<20 })
	tuned := peakHeap(256 << 10)
	t.Logf("peak heap: %d KiB untuned, %d KiB tuned", untuned>>10, tuned>>10)
	if untuned < 3<<20 {
		t.Skipf("the runtime kept the untuned heap at %d KiB: nothing to compare", untuned>>10)
	}
	if tuned > 2<<20 {
		t.Errorf("peak heap %d KiB with TightHeap(1 MiB) and 256 KiB live; want ≤ 2048", tuned>>10)
	}
}

// A heap whose goal is above Go's minimum is left to GOGC (no limit),
// and the limit comes back when it shrinks; stop removes it, and a
// collection after stop sets none.
func TestTightHeapLargeHeap(t *testing.T) {
	noEnvTuning(t)
	tu := tightHeap(1<<20, os.Getenv)
	tu.arm()
	waitLimit(t, "small heap", func(l int64) bool { return l < 64<<20 })
	big := make([]byte, 8<<20)
	waitLimit(t, "8 MiB live", func(l int64) bool { return l == math.MaxInt64 })
	runtime.KeepAlive(big)
	big = nil
	waitLimit(t, "live again small", func(l int64) bool { return l < 64<<20 })
	tu.stop()
	if l := memoryLimit(); l != math.MaxInt64 {
		t.Errorf("limit %d after stop; want none", l)
	}
	tu.collected() // what the next collection's finalizer does
	if l := memoryLimit(); l != math.MaxInt64 {
		t.Errorf("limit %d set again after stop", l)
	}
}

// The operator's GOGC or GOMEMLIMIT wins: no tuner.
func TestTightHeapOperatorSettings(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		getenv := func(k string) string {
			if k == env {
				return "100"
			}
			return ""
		}
		if tightHeap(1<<20, getenv) != nil {
			t.Errorf("%s set: TightHeap tunes anyway", env)
		}
	}
	if tightHeap(1<<20, func(string) string { return "" }) == nil {
		t.Error("neither set: no tuner")
	}
}
