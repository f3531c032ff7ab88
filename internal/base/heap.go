package base

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Go collects when the heap reaches twice what survived the last
// collection (GOGC=100), but never below defaultHeapMinimum. A stage
// holds a few hundred KiB between events, so during a burst each of the
// four lets ~4 MiB of garbage pile up and stay resident: most of the
// pipeline's peak RSS. TightHeap lowers that floor for small heaps only.
const defaultHeapMinimum = 4 << 20

// heapSamples are what the tuner reads after each collection.
var heapSamples = []string{
	"/gc/heap/live:bytes",                 // survived the last collection
	"/memory/classes/total:bytes",         // all the runtime maps
	"/memory/classes/heap/released:bytes", // of which given back
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
}

// limitHeadroom is what the runtime keeps below a memory limit for its
// heap goal (runtime/mgcpacer.go, memoryLimitMinHeapGoalHeadroom: the
// larger of 1 MiB and 3 % of the limit; limits here are small).
const limitHeadroom = 1 << 20

// TightHeap keeps a small heap's goal at live + max(live, floor) instead
// of Go's 4 MiB minimum, through the soft memory limit: after every
// collection it sets debug.SetMemoryLimit to what the runtime holds
// besides the heap plus that goal, so the collector runs (and the
// scavenger gives free pages back) sooner. A heap whose goal by GOGC is
// above the minimum gets no limit: it is collected at twice its live
// size, as without TightHeap. A heap that grows fast between two
// collections meets the old limit sooner and raises it at each one
// (doubling, as GOGC does). The operator's GOGC or GOMEMLIMIT wins: with
// either set, TightHeap does nothing. stop ends the tuning and removes
// the limit.
//
// The tuning starts at the first collection, not at once: a tool's start
// (flags, regexps, the first scan) then runs under Go's own goal. Tuned
// from the start, each tool collected during its start-up and kept
// 0.5-0.8 MiB more of the runtime's own metadata for the rest of its
// life (four stages at rest on a 50,000-file tree: 22.8-23.1 MiB
// against 21.9); started at the first collection, 21.2-22.0 against
// 21.7-22.1, and the burst's peak still falls (37.0 → 32.9 MiB).
func TightHeap(floor uint64) (stop func()) {
	t := tightHeap(floor, os.Getenv)
	if t == nil {
		return func() {}
	}
	t.arm()
	return t.stop
}

// tightHeap is the tuner TightHeap arms, nil when the environment leaves
// the collector to the operator.
func tightHeap(floor uint64, getenv func(string) string) *heapTuner {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return nil
	}
	return &heapTuner{floor: floor, s: samples(heapSamples)}
}

type heapTuner struct {
	floor   uint64
	s       []metrics.Sample
	mu      sync.Mutex // stop against a collection's tuning
	stopped bool
}

// sentinel is garbage whose finalizer runs after each collection (not a
// tiny allocation: those may share a block and never be finalized).
type sentinel struct{ t *heapTuner }

func (t *heapTuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) { s.t.collected() })
}

// collected runs in the finalizer goroutine after each collection: it
// sets the limit for the heap as the collection left it and waits for
// the next one, unless stopped.
func (t *heapTuner) collected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	debug.SetMemoryLimit(t.limit())
	t.arm()
}

// stop ends the tuning and removes the limit; no collection sets one
// after it.
func (t *heapTuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetMemoryLimit(math.MaxInt64)
}

// limit is the memory limit for the heap as the last collection left it.
func (t *heapTuner) limit() int64 {
	metrics.Read(t.s)
	v := func(i int) uint64 { return t.s[i].Value.Uint64() }
	live := v(0)
	goal := live + max(live, t.floor)
	if goal >= defaultHeapMinimum {
		return math.MaxInt64 // GOGC's own goal is above its minimum
	}
	// As the runtime counts it: all it holds but free pages and objects
	// (stacks, metadata, partly used spans), plus its headroom.
	besidesHeap := v(1) - v(2) - v(3) - v(4)
	return int64(besidesHeap + limitHeadroom + goal)
}

// samples are runtime/metrics samples of these names.
func samples(names []string) []metrics.Sample {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	return s
}
