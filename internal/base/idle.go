package base

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// idleSamples are what trimWhenIdle reads: bytes allocated so far, and
// heap memory free but still held from the kernel.
var idleSamples = []string{"/gc/heap/allocs:bytes", "/memory/classes/heap/free:bytes"}

// TrimWhenIdle gives the heap's free memory back to the kernel once the
// process has allocated nothing for a whole period. The stages spend
// their life waiting for events; after a burst Go's scavenger would keep
// a few MiB per process for minutes (the heap goal never falls below
// 4 MiB). Checking costs one runtime/metrics read per period.
func TrimWhenIdle(ctx context.Context, period time.Duration) {
	s := make([]metrics.Sample, len(idleSamples))
	for i, n := range idleSamples {
		s[i].Name = n
	}
	var last uint64
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(s)
		if allocs := s[0].Value.Uint64(); allocs != last {
			last = allocs
			continue
		}
		if s[1].Value.Uint64() >= 512<<10 {
			debug.FreeOSMemory()
			metrics.Read(s)
			last = s[0].Value.Uint64() // the trim's own allocations are not work
		}
	}
}
