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
	tr := newTrimmer()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tr.tick()
		}
	}
}

// trimmer is TrimWhenIdle's decision, one tick at a time.
type trimmer struct {
	s    []metrics.Sample
	last uint64 // bytes allocated at the last tick
}

func newTrimmer() *trimmer {
	return &trimmer{s: samples(idleSamples)}
}

// tick trims if nothing was allocated since the last tick and at least
// 512 KiB of heap are free; it reports whether it trimmed.
func (tr *trimmer) tick() bool {
	metrics.Read(tr.s)
	if allocs := tr.s[0].Value.Uint64(); allocs != tr.last {
		tr.last = allocs
		return false
	}
	if tr.s[1].Value.Uint64() < 512<<10 {
		return false
	}
	debug.FreeOSMemory()
	metrics.Read(tr.s)
	tr.last = tr.s[0].Value.Uint64() // the trim's own allocations are not work
	return true
}

// TrimAfterWork gives the heap's free memory back now, after a piece of
// work such as setting up watches, if that work made the heap grow past
// its first goal (the runtime has collected at least once); it reports
// whether it trimmed. Below that goal the garbage is small, and a
// collection costs a process that then rests more than it frees: it
// touches runtime code and type data that stay resident, and builds GC
// metadata (inowait at rest on a 50,000-file tree in 500 directories:
// 5.6 MiB RSS with the collection, 5.3 without).
func TrimAfterWork() bool {
	s := samples([]string{"/gc/cycles/total:gc-cycles"})
	metrics.Read(s)
	if s[0].Value.Uint64() == 0 {
		return false
	}
	debug.FreeOSMemory()
	return true
}
