// Package dispatch is rpush's engine: every batch goes to every target's
// queue; one worker per target pushes it (push.Pusher: the safety gate,
// retries, -j slices) and, when that fails, spools it; a stop runs or
// spools every batch that was handed in. cmd/rpush reads stdin and prints
// results around it; tests drive it in-process with a fake Pusher and
// Spooler.
//
// A worker that falls behind pushes the batches queued behind the one it
// takes, of the same root and rules, together (see queued and merged):
// fewer, larger runs instead of a growing queue.
//
// Targets are isolated: whatever fails on one target (an rsync error of any
// class, a queue that is full, a spool that cannot take its batches) is
// that target's alone. Only the gate's refusal of a source root (source
// side danger: unmounted, emptied, replaced) stops that root, for every
// target, because every target would be harmed by it.
//
// A batch that can be neither delivered nor spooled is never dropped in
// silence: its (target, root) owes a full sync, which the worker tries
// (and spools) before that target's next batch of that root; whatever is
// still owed when the engine closes makes Close report it, and rpush exits
// non-zero so that the supervisor restarts the pipeline with a resync.
package dispatch

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
	"github.com/inopipe/inopipe/internal/status"
)

// Pusher delivers one batch to one target (*push.Pusher).
type Pusher interface {
	Push(ctx context.Context, t rsync.Target, b *event.Batch) push.Report
}

// Spooler keeps what could not be delivered (*spool.Spool).
type Spooler interface {
	Put(e *spool.Entry) (string, error)
	RecordPairs(pairs []spool.Pair) error
	RecordRules(root string, r *event.Rules) error
}

var (
	_ Pusher  = (*push.Pusher)(nil)
	_ Spooler = (*spool.Spool)(nil)
)

// Config shapes an Engine.
type Config struct {
	Targets []rsync.Target
	Queue   int           // batches waiting per target; past it, further ones are spooled for it
	Init    bool          // a full sync of each root to each target before its first batch
	Grace   time.Duration // after Stop, rsyncs in flight get this long before they are stopped

	// SpoolTries is how many times a spool write is tried (default 3),
	// SpoolBackoff the first pause between tries (default 100ms, doubling).
	SpoolTries   int
	SpoolBackoff time.Duration

	Progress bool             // say when --init full syncs start and end (a terminal)
	Now      func() time.Time // default time.Now

	// CatchUp replays the spooled batches of target t (rpush: replay.Run
	// for that target) and says how many remain. The engine calls it from
	// t's worker after a batch for t succeeds while t has batches in the
	// spool, at most once per CatchUpEvery (default 30s): a target that
	// comes back gets what it missed within seconds, without waiting for
	// the failreplay timer. nil: never.
	CatchUp      func(ctx context.Context, t rsync.Target) (remain int, err error)
	CatchUpEvery time.Duration
	// Behind tells, at start, whether t has batches in the spool from
	// before (nil: none).
	Behind func(t rsync.Target) bool

	// OnRefusal, when set, is called once when a target refuses the
	// configuration (a wrong password, an unknown module, a refused
	// option: push.Report.Refusal), which no retry cures. rpush
	// --stop-on-refusal stops reading there, so that the supervisor stops
	// the pipeline and the operator learns at once, as lsyncd does. The
	// batch is spooled as any other.
	OnRefusal func(t rsync.Target, err string)
}

// Summary is what Close reports.
type Summary struct {
	Spooled int               // batches written to the spool
	Stopped map[string]string // source roots stopped by the gate -> why
	Owed    []Owed            // (target, root) pairs that lost a batch: neither delivered nor spooled
}

// Owed is a (target, root) that owes a full sync because a batch could be
// neither delivered nor spooled.
type Owed struct {
	Target, Root string
	Batches      int // how many batches it stands for
}

// Engine is the dispatcher. Create it with New; Dispatch from one
// goroutine (the reader); Stop from any; Close once, at the end.
type Engine struct {
	cfg   Config
	p     Pusher
	sp    Spooler
	log   *base.Log
	track *status.Tracker
	emit  func(*event.Result)

	// runCtx outlives Stop by cfg.Grace so that rsyncs in flight may
	// finish; then they are stopped (SIGTERM to their process group).
	runCtx     context.Context
	cancelRuns context.CancelFunc
	stopping   chan struct{} // closed by Stop
	stopOnce   sync.Once

	refusalOnce sync.Once

	workers []*worker
	wg      sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	closed   bool
	spooled  int
	stopped  map[string]string
	pairs    map[spool.Pair]bool
	rules    map[string]*event.Rules // per root, as last recorded in the spool
	disabled map[string]string       // target -> why it spools everything (Config class)
}

type worker struct {
	target rsync.Target
	ch     chan *event.Batch
	// Touched only by this worker's goroutine: no lock.
	inited map[string]bool // roots already fully synced (--init)

	lastCatchUp time.Time // this worker's goroutine only

	// behind: batches for this target are in the spool; set by the
	// worker and by Dispatch (a full queue), hence atomic.
	behind atomic.Bool

	// owed is also written by Dispatch's goroutine (a full queue whose
	// spool write fails), hence mu.
	mu   sync.Mutex
	owed map[string]int // root -> batches lost since its last full sync
}

// New starts one worker per target. emit receives one result per (batch,
// target), from several goroutines, never concurrently with itself
// being required (the caller serialises if it must).
func New(cfg Config, p Pusher, sp Spooler, log *base.Log, track *status.Tracker, emit func(*event.Result)) *Engine {
	if cfg.Queue < 1 {
		cfg.Queue = 1
	}
	if cfg.SpoolTries < 1 {
		cfg.SpoolTries = 3
	}
	if cfg.SpoolBackoff <= 0 {
		cfg.SpoolBackoff = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CatchUpEvery <= 0 {
		cfg.CatchUpEvery = 30 * time.Second
	}
	e := &Engine{cfg: cfg, p: p, sp: sp, log: log, track: track, emit: emit,
		stopping: make(chan struct{}), stopped: map[string]string{}, pairs: map[spool.Pair]bool{}, rules: map[string]*event.Rules{}, disabled: map[string]string{}}
	e.runCtx, e.cancelRuns = context.WithCancel(context.Background())
	for _, t := range cfg.Targets {
		w := &worker{target: t, ch: make(chan *event.Batch, cfg.Queue), inited: map[string]bool{}, owed: map[string]int{}}
		if cfg.Behind != nil && cfg.Behind(t) {
			w.behind.Store(true)
		}
		e.workers = append(e.workers, w)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			var next *event.Batch
			for {
				b := next
				if b == nil {
					var ok bool
					if b, ok = <-w.ch; !ok {
						return
					}
				}
				var more []*event.Batch
				more, next = w.queued(b)
				e.handle(w, b, more)
			}
		}()
	}
	return e
}

func (e *Engine) isStopping() bool {
	select {
	case <-e.stopping:
		return true
	default:
		return false
	}
}

// Stop begins shutdown (SIGTERM): batches not yet started are spooled;
// rsyncs in flight get cfg.Grace to finish, then are stopped and their
// batches spooled. Dispatch still accepts (and spools) batches after Stop,
// so that the reader can hand in everything it has read.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		close(e.stopping)
		time.AfterFunc(e.cfg.Grace, e.cancelRuns)
	})
}

// Dispatch hands b to every target's queue. A full queue (a slow or dead
// target) never blocks the others: the batch is spooled for that target.
func (e *Engine) Dispatch(b *event.Batch) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		panic("dispatch: Dispatch after Close")
	}
	for _, w := range e.workers {
		e.track.Queued(w.target.Spec, b.Seq, b.First)
		if !e.isStopping() {
			select {
			case w.ch <- b:
				continue
			default:
			}
		}
		why := "not run: target queue full (target too slow)"
		if e.isStopping() {
			why = "not run: rpush is stopping"
		}
		e.notRun(w, b, why)
	}
}

// Close ends input: the workers finish their queues (running or spooling
// each batch) and Close waits for them.
func (e *Engine) Close() Summary {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		for _, w := range e.workers {
			close(w.ch)
		}
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.cancelRuns()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Summary{Spooled: e.spooled, Stopped: map[string]string{}}
	for r, why := range e.stopped {
		s.Stopped[r] = why
	}
	for _, w := range e.workers {
		w.mu.Lock()
		for root, n := range w.owed {
			s.Owed = append(s.Owed, Owed{Target: w.target.Spec, Root: root, Batches: n})
		}
		w.mu.Unlock()
	}
	return s
}

// notRun reports b as not run for w's target and spools it.
func (e *Engine) notRun(w *worker, b *event.Batch, why string) {
	r := &event.Result{Seq: b.Seq, Root: b.Root, Target: w.target.Spec, Exit: rsync.ExitNotRun, Error: why}
	e.spool(w, b, r, why, rsync.ExitNotRun)
	e.track.Done(r, e.cfg.Now())
	e.emit(r)
}

// spool writes b for w's target, trying cfg.SpoolTries times. When it
// cannot, the (target, root) owes a full sync (see the package doc).
func (e *Engine) spool(w *worker, b *event.Batch, r *event.Result, why string, exit int) {
	now := e.cfg.Now()
	ent := &spool.Entry{Target: w.target.Spec, Attempts: r.Attempts, FirstFailure: now, LastFailure: now, LastError: why, Exit: exit, Batch: *b}
	var path string
	var err error
	pause := e.cfg.SpoolBackoff
	for try := 1; ; try++ {
		if path, err = e.sp.Put(ent); err == nil || try >= e.cfg.SpoolTries {
			break
		}
		time.Sleep(pause)
		pause *= 2
	}
	if err != nil {
		w.owe(b.Root)
		e.log.Errorf("batch %d for %s could be neither delivered nor spooled: %v; a full sync of %s is owed to it", b.Seq, w.target.Spec, err, b.Root)
		r.Error = why + "; and spooling failed: " + err.Error()
		return
	}
	e.mu.Lock()
	e.spooled++
	e.mu.Unlock()
	w.behind.Store(true)
	r.Spooled = path
}

// catchUp replays w's target's spool after a success, when it is behind
// (see Config.CatchUp). From w's goroutine.
func (e *Engine) catchUp(w *worker) {
	if e.cfg.CatchUp == nil || !w.behind.Load() || e.isStopping() {
		return
	}
	now := e.cfg.Now()
	if !w.lastCatchUp.IsZero() && now.Sub(w.lastCatchUp) < e.cfg.CatchUpEvery {
		return
	}
	w.lastCatchUp = now
	remain, err := e.cfg.CatchUp(e.runCtx, w.target)
	switch {
	case err != nil:
		e.log.Infof("catch-up of %s deferred: %v", w.target.Spec, err)
	case remain == 0:
		w.behind.Store(false)
		e.log.Infof("%s is back: its spooled batches are delivered", w.target.Spec)
	}
}

// owe records a batch of root lost for w's target.
func (w *worker) owe(root string) {
	w.mu.Lock()
	w.owed[root]++
	w.mu.Unlock()
}

// owes is how many batches of root w's target has lost.
func (w *worker) owes(root string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.owed[root]
}

// Merging: a target slower than the stream has batches queued behind the
// one it takes. Those of the same root and rules go in the same push, as
// one batch: the union of their paths is right whatever happened between
// them, because rpush decides each path by the source as it is when it
// runs (rsync.Normalize: present, it is synced; gone, deleted). Rename
// hints are dropped (the paths still say the whole change). Each batch
// still gets its own result: the first the push's, the others the same
// outcome with their own path count and no bytes. So a slow target runs
// fewer, larger rsyncs instead of falling further behind.
const (
	mergeBatches = 64
	mergePaths   = 20000
)

// queued takes from w's queue, without waiting, the batches that can go
// in b's push; next is the first that cannot (nil: none waiting).
func (w *worker) queued(b *event.Batch) (more []*event.Batch, next *event.Batch) {
	if b.Full {
		return nil, nil
	}
	paths := len(b.Sync) + len(b.Delete)
	for len(more) < mergeBatches-1 {
		select {
		case nb, ok := <-w.ch:
			if !ok {
				return more, nil
			}
			if nb.Full || nb.Root != b.Root || !nb.Rules.Equal(b.Rules) || paths+len(nb.Sync)+len(nb.Delete) > mergePaths {
				return more, nb
			}
			paths += len(nb.Sync) + len(nb.Delete)
			more = append(more, nb)
		default:
			return more, nil
		}
	}
	return more, nil
}

// merged is b with the paths of more (see queued).
func merged(b *event.Batch, more []*event.Batch) *event.Batch {
	m := *b
	union := func(get func(*event.Batch) []string) []string {
		seen := map[string]bool{}
		var out []string
		for _, x := range append([]*event.Batch{b}, more...) {
			for _, p := range get(x) {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	m.Sync = union(func(x *event.Batch) []string { return x.Sync })
	m.Delete = union(func(x *event.Batch) []string { return x.Delete })
	m.Written = union(func(x *event.Batch) []string { return x.Written })
	if m.Sync == nil {
		m.Sync = []string{}
	}
	if m.Delete == nil {
		m.Delete = []string{}
	}
	m.Renames = nil
	for _, x := range more {
		m.Events += x.Events
		if x.Last.After(m.Last) {
			m.Last = x.Last
		}
	}
	return &m
}

func (e *Engine) handle(w *worker, b *event.Batch, more []*event.Batch) {
	r := &event.Result{Seq: b.Seq, Root: b.Root, Target: w.target.Spec}
	pair := spool.Pair{Root: b.Root, Target: w.target.Spec}
	e.mu.Lock()
	newPair := !e.pairs[pair]
	e.pairs[pair] = true
	last, seen := e.rules[b.Root]
	newRules := !seen || !last.Equal(b.Rules)
	e.rules[b.Root] = b.Rules
	e.mu.Unlock()
	if newPair {
		if err := e.sp.RecordPairs([]spool.Pair{pair}); err != nil {
			e.log.Warnf("record %s → %s for failreplay --full: %v", b.Root, w.target.Spec, err)
		}
	}
	if newRules {
		// failreplay --full applies the rules the live stream applied.
		if err := e.sp.RecordRules(b.Root, b.Rules); err != nil {
			e.log.Warnf("record the rules of %s for failreplay --full: %v", b.Root, err)
		}
	}
	if e.cfg.Init && !w.inited[b.Root] && !b.Full && !e.isStopping() {
		w.inited[b.Root] = true
		e.initial(w, b) // may stop the root (the gate) before b runs
	}
	e.mu.Lock()
	disabled, stopped := e.disabled[w.target.Spec], e.stopped[b.Root]
	e.mu.Unlock()
	switch {
	case stopped != "":
		r.Error = "not run: source stopped: " + stopped
	case disabled != "":
		r.Error = "not run: " + disabled
	case e.isStopping():
		r.Error = "not run: rpush is stopping"
	}
	if r.Error != "" {
		e.notRun(w, b, r.Error)
		for _, x := range more {
			e.notRun(w, x, r.Error)
		}
		return
	}
	first := b // the batch r is for
	if len(more) > 0 {
		b = merged(b, more)
	}
	owed := w.owes(b.Root)
	if owed > 0 && !b.Full {
		// A lost batch of this root: the full sync it owes covers this
		// batch as well.
		b = &event.Batch{Seq: b.Seq, Root: b.Root, Full: true, Sync: []string{}, Delete: []string{}, Events: b.Events, First: b.First, Last: b.Last, Rules: b.Rules}
	}
	rep := e.p.Push(e.runCtx, w.target, b)
	r.OK, r.Exit, r.Paths, r.Bytes, r.Attempts, r.Error = rep.OK, rep.Exit, rep.Paths, rep.Bytes, rep.Attempts, rep.Err
	r.Seconds = rep.Elapsed.Seconds()
	// The batches merged into this push: its outcome, their own paths,
	// no bytes (counted once, in r).
	rs := []*event.Result{r}
	for _, x := range more {
		rx := *r
		rx.Seq, rx.Paths, rx.Bytes = x.Seq, len(x.Sync)+len(x.Delete), 0
		rs = append(rs, &rx)
	}
	switch {
	case rep.OK:
	case b.Full || len(more) == 0:
		e.failed(w, b, r, rep)
		for _, rx := range rs[1:] {
			rx.Spooled = r.Spooled // the full sync covers them
		}
	default:
		// Spooled as they came: one entry per batch, as without merging.
		e.failed(w, first, r, rep)
		for i, x := range more {
			e.spool(w, x, rs[i+1], rep.Err, rep.Exit)
		}
	}
	if owed > 0 && (r.OK || r.Spooled != "") {
		// The owed full sync was delivered, or is now in the spool.
		w.mu.Lock()
		delete(w.owed, b.Root)
		w.mu.Unlock()
		e.log.Infof("the full sync of %s owed to %s is %s", b.Root, w.target.Spec, map[bool]string{true: "done", false: "spooled"}[r.OK])
	}
	for _, rx := range rs {
		e.track.Done(rx, e.cfg.Now())
		e.emit(rx)
	}
	if r.OK {
		e.catchUp(w)
	}
}

// initial is --init: a full sync of b's root to w's target before its
// first batch; spooled when it fails.
func (e *Engine) initial(w *worker, b *event.Batch) {
	full := &event.Batch{Seq: b.Seq, Root: b.Root, Full: true, Sync: []string{}, Delete: []string{}, Rules: b.Rules}
	if e.cfg.Progress {
		e.log.Infof("initial full sync of %s to %s…", b.Root, w.target.Spec)
	}
	rep := e.p.Push(e.runCtx, w.target, full)
	if rep.OK {
		if e.cfg.Progress {
			e.log.Infof("initial full sync of %s to %s done in %.1fs", b.Root, w.target.Spec, rep.Elapsed.Seconds())
		}
		return
	}
	e.log.Warnf("initial full sync of %s to %s: %s (spooled)", b.Root, w.target.Spec, rep.Err)
	fr := &event.Result{Seq: b.Seq, Root: b.Root, Target: w.target.Spec, Exit: rep.Exit, Attempts: rep.Attempts}
	e.failed(w, full, fr, rep)
}

// failed is what every failed push of b to w's target does, the initial
// full sync's included: the gate's refusal stops the root for every
// target, a broken rsync disables the target, a refusal of the
// configuration is reported (OnRefusal), and b is spooled.
func (e *Engine) failed(w *worker, b *event.Batch, r *event.Result, rep push.Report) {
	if rep.Refusal && e.cfg.OnRefusal != nil {
		e.refusalOnce.Do(func() { e.cfg.OnRefusal(w.target, rep.Err) })
	}
	switch rep.Class {
	case rsync.Dangerous:
		e.mu.Lock()
		e.stopped[b.Root] = rep.Err
		e.mu.Unlock()
		e.log.Errorf("%s; no more batches of this root are run, for any target (they are spooled)", rep.Err)
		e.log.Hintf("check the source (mounted? emptied by mistake?), then restart the pipeline: it resyncs on start")
	case rsync.Config:
		e.mu.Lock()
		e.disabled[w.target.Spec] = rep.Err
		e.mu.Unlock()
		e.log.Errorf("%s; every further batch for %s is spooled", rep.Err, w.target.Spec)
	}
	e.spool(w, b, r, rep.Err, rep.Exit)
}

// String renders an Owed for an error message.
func (o Owed) String() string {
	return fmt.Sprintf("%d batch(es) of %s for %s", o.Batches, o.Root, o.Target)
}
