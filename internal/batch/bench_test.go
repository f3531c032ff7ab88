package batch

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// BenchmarkCoalescer adds write-storm events over 1,000 files in 100
// directories (each file: CREATE, MODIFY, CLOSE_WRITE).
func BenchmarkCoalescer(b *testing.B) {
	evs := make([]event.Event, 0, 3000)
	for d := 0; d < 100; d++ {
		for f := 0; f < 10; f++ {
			rel := fmt.Sprintf("dir%03d/file%02d.dat", d, f)
			evs = append(evs, e("create", rel), e("modify", rel), e("close_write", rel))
		}
	}
	c := New(Config{Window: time.Second, Rollup: 128})
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Add(&evs[i%len(evs)], now)
		if i%len(evs) == len(evs)-1 {
			c.Flush()
		}
	}
}

// BenchmarkPendingMemory reports heap bytes per distinct pending path.
func BenchmarkPendingMemory(b *testing.B) {
	const n = 100000
	for i := 0; i < b.N; i++ {
		evs := make([]event.Event, n)
		for j := range evs {
			evs[j] = e("close_write", fmt.Sprintf("d%04d/f%06d.html", j/50, j))
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := New(Config{Window: time.Second})
		now := time.Now()
		for j := range evs {
			c.Add(&evs[j], now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "B/path")
		runtime.KeepAlive(c)
		runtime.KeepAlive(evs)
	}
}
