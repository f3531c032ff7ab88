// Package push delivers one batch to one target with rsync: source safety
// checks, path normalization, splitting over parallel jobs, retries with
// backoff and jitter, and the switch to filter mode for receivers that
// reject --delete-missing-args. rpush and failreplay share it.
package push

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// Pusher holds what every run needs. Its maps are guarded by mu; the rest
// is set once before use.
type Pusher struct {
	Binary    string
	Opts      rsync.Options
	Env       []string
	Runner    rsync.Runner
	Retries   int           // extra attempts for transient failures
	Backoff   time.Duration // first back-off; doubles, with jitter
	Jobs      int           // concurrent rsync processes per batch and target
	SplitMin  int           // batches smaller than this are not split
	MaxDelete int           // refuse a batch that would delete more than this (0: no limit)
	Sleep     func(ctx context.Context, d time.Duration) error
	Warnf     func(format string, a ...any) // operator messages (may be nil)

	mu         sync.Mutex
	filterMode map[string]bool   // targets that need filter mode
	devices    map[string]uint64 // st_dev of each root when first seen
}

// Report is the outcome of one (batch, target).
type Report struct {
	OK       bool
	Exit     int
	Class    rsync.Class
	Err      string
	Attempts int
	Paths    int
	Bytes    int64
	Deleted  int64 // from --stats, -1 unknown (read for dry runs)
	Elapsed  time.Duration
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrEmptySource is Check's refusal of an empty source root for a batch
// that deletes.
var ErrEmptySource = errors.New("is empty and the batch deletes")

// emptySource decides a batch that Check refused for an empty source: a
// dry run of it says how much it would delete on the target. Nothing: the
// batch may run (r.OK). Something: refused still (unmounted source?), with
// the count. The dry run failing: that failure, to be retried or spooled
// as any other (the source is not stopped for it).
func (p *Pusher) emptySource(ctx context.Context, t rsync.Target, src string, mode rsync.Mode, paths []string, refused Report) Report {
	o := p.Opts
	o.DryRun = true
	dry := p.attempt(ctx, t, o, src, mode, paths)
	switch {
	case !dry.OK:
		dry.Err = "dry run for an empty source: " + dry.Err
		return dry
	case dry.Deleted == 0:
		return Report{OK: true}
	case dry.Deleted > 0:
		refused.Err += fmt.Sprintf(" (%d entries on the target); refusing (unmounted?)", dry.Deleted)
	default:
		refused.Err += "; refusing (unmounted?; rsync printed no deletion count)"
	}
	return refused
}

// Check refuses to sync from a root that is not what it was: missing, not
// a directory, on another device than when first seen (an unmounted
// filesystem shows the empty mount point), or empty while the batch would
// delete. Every listed path would otherwise look deleted.
func (p *Pusher) Check(root string, deletes bool) error {
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil {
		return fmt.Errorf("source root %s: %v; refusing to sync (it would delete the replica)", root, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return fmt.Errorf("source root %s is not a directory; refusing to sync", root)
	}
	p.mu.Lock()
	if p.devices == nil {
		p.devices = map[string]uint64{}
	}
	dev, seen := p.devices[root]
	if !seen {
		p.devices[root] = uint64(st.Dev)
	}
	p.mu.Unlock()
	if seen && dev != uint64(st.Dev) {
		return fmt.Errorf("source root %s moved to another filesystem (device %d, was %d): unmounted? refusing to sync", root, st.Dev, dev)
	}
	if deletes {
		f, err := os.Open(root)
		if err != nil {
			return fmt.Errorf("source root %s: %v", root, err)
		}
		names, _ := f.Readdirnames(1)
		f.Close()
		if len(names) == 0 {
			return fmt.Errorf("source root %s %w", root, ErrEmptySource)
		}
	}
	return nil
}

// Push brings target t in line with the source for batch b.
func (p *Pusher) Push(ctx context.Context, t rsync.Target, b *event.Batch) Report {
	start := time.Now()
	src := b.Root
	if !strings.HasSuffix(src, "/") {
		return Report{Exit: rsync.ExitFileSelect, Class: rsync.Spool, Err: fmt.Sprintf("root %q is not a directory root (must end in /)", src)}
	}
	var (
		list rsync.List
		mode = rsync.ModeList
	)
	if b.Full {
		mode = rsync.ModeFull
	} else {
		list = rsync.Normalize(src, b)
		if len(list.Paths) == 0 && len(list.Dirs) == 0 {
			r := Report{OK: true, Class: rsync.Done, Elapsed: time.Since(start)}
			if len(list.Errors) > 0 {
				r.Err = joinErrs(list.Errors)
			}
			return r
		}
	}
	if err := p.Check(src, p.Opts.Delete && (b.Full || list.Missing > 0)); err != nil {
		r := Report{Exit: rsync.ExitFileSelect, Class: rsync.Dangerous, Err: err.Error()}
		if errors.Is(err, ErrEmptySource) {
			// An empty source is also a new, still empty data directory
			// (inowait --resync's first batch): harmless when rsync, asked
			// with --dry-run, would delete nothing on the target.
			r = p.emptySource(ctx, t, src, mode, list.Paths, r)
		}
		if !r.OK {
			r.Elapsed = time.Since(start)
			return r
		}
	}
	if p.MaxDelete > 0 && list.Missing > p.MaxDelete {
		return Report{Exit: rsync.ExitDelLimit, Class: rsync.Spool, Elapsed: time.Since(start),
			Err: fmt.Sprintf("batch deletes %d paths, more than --max-delete %d; spooled for review", list.Missing, p.MaxDelete)}
	}
	type job struct {
		mode  rsync.Mode
		paths []string
	}
	var jobs []job
	switch {
	case mode == rsync.ModeFull:
		jobs = []job{{mode, nil}}
	case p.Jobs > 1 && len(list.Paths) >= max(p.SplitMin, 2):
		for _, c := range split(list.Paths, p.Jobs) {
			jobs = append(jobs, job{mode, c})
		}
	case len(list.Paths) > 0:
		jobs = []job{{mode, list.Paths}}
	}
	if len(list.Dirs) > 0 {
		// Directories listed for their attributes only: one run without
		// recursion, beside the others.
		jobs = append(jobs, job{rsync.ModeDirs, list.Dirs})
	}
	reports := make([]Report, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i] = p.attempt(ctx, t, p.Opts, src, j.mode, j.paths)
		}()
	}
	wg.Wait()
	r := Report{OK: true, Class: rsync.Done, Paths: len(list.Paths) + len(list.Dirs)}
	if mode == rsync.ModeFull {
		r.Paths = 0
	}
	for _, c := range reports {
		r.Bytes += c.Bytes
		r.Attempts = max(r.Attempts, c.Attempts)
		if !c.OK && r.OK {
			r.OK, r.Exit, r.Class, r.Err = false, c.Exit, c.Class, c.Err
		}
	}
	if len(list.Errors) > 0 {
		msg := joinErrs(list.Errors)
		if r.Err != "" {
			msg = r.Err + "; " + msg
		}
		r.Err = msg
	}
	r.Elapsed = time.Since(start)
	return r
}

func joinErrs(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, "rejected "+e.Error())
	}
	return strings.Join(s, "; ")
}

// split deals paths round-robin into n chunks (paths are sorted, so each
// chunk spreads over the tree and chunks are of equal count).
func split(paths []string, n int) [][]string {
	n = min(n, len(paths))
	out := make([][]string, n)
	for i, p := range paths {
		out[i%n] = append(out[i%n], p)
	}
	return out
}

// attempt runs one chunk with retries, with options opts (p.Opts, or a
// dry run of them).
func (p *Pusher) attempt(ctx context.Context, t rsync.Target, opts rsync.Options, src string, mode rsync.Mode, paths []string) Report {
	backoff := p.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	sleep := p.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var r Report
	switchedMode := false
	for attempt := 1; ; attempt++ {
		m := mode
		if m == rsync.ModeList && p.needsFilter(t.Spec) {
			m = rsync.ModeFilter
		}
		run := rsync.Run{Binary: p.Binary, Args: rsync.Args(opts, t, src, m), Env: p.Env}
		switch m {
		case rsync.ModeList, rsync.ModeDirs:
			run.Stdin = rsync.Stdin(paths)
		case rsync.ModeFilter:
			run.Stdin = rsync.FilterRules(paths)
		}
		o := p.Runner.Run(ctx, run)
		r = Report{Exit: o.Exit, Attempts: attempt, Bytes: o.Bytes, Deleted: o.Deleted, Class: rsync.Classify(o.Exit, o.Stderr)}
		if o.Err != nil {
			r.Err = fmt.Sprintf("run %s: %v", p.Binary, o.Err)
		} else if o.Exit != 0 {
			r.Err = fmt.Sprintf("rsync exit %d: %s", o.Exit, lastLines(o.Stderr, 3))
			if h := rsync.Hint(o.Exit, o.Stderr); h != "" {
				r.Err += " (" + h + ")"
			}
		}
		switch r.Class {
		case rsync.Done:
			r.OK = true
			return r
		case rsync.FilterMode:
			if switchedMode {
				r.Class = rsync.Spool
				return r
			}
			switchedMode = true
			if !p.needsFilter(t.Spec) && p.Warnf != nil {
				p.Warnf("%s rejects --delete-missing-args deletions (rsync bug #910 in 3.4.3 and Debian 12's 3.2.7 security update: %q); switching this target to filter mode",
					t.Spec, lastLines(o.Stderr, 1))
			}
			p.setFilter(t.Spec)
			continue // at once, in filter mode
		case rsync.Retry:
			if attempt > p.Retries || ctx.Err() != nil {
				return r
			}
			d := backoff << (attempt - 1)
			d += time.Duration(rand.Int64N(int64(d)/2 + 1)) // jitter
			if sleep(ctx, d) != nil {
				return r
			}
		default:
			return r
		}
	}
}

func (p *Pusher) needsFilter(target string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.filterMode[target]
}

func (p *Pusher) setFilter(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.filterMode == nil {
		p.filterMode = map[string]bool{}
	}
	p.filterMode[target] = true
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// FromEvent turns a bare event line into a batch of one (rpush accepts
// events directly, without evbatch). ok is false for events that need
// nothing (reads, self events).
func FromEvent(ev *event.Event, seq uint64) (event.Batch, bool) {
	b := event.Batch{Seq: seq, Root: ev.Root, Events: 1, First: ev.Time, Last: ev.Time, Sync: []string{}, Delete: []string{}}
	if ev.Op.Has(event.QOverflow | event.Resync) {
		b.Full = true
		return b, ev.Root != ""
	}
	rel, ok := ev.Rel()
	if !ok || rel == "" || ev.Name == "" {
		return b, false
	}
	switch {
	case ev.Op.Has(event.Delete | event.MovedFrom):
		b.Delete = []string{rel}
	case ev.Op.Has(event.Create|event.MovedTo) && ev.Op.Has(event.IsDir):
		b.Sync = []string{rel + "/"}
	case ev.Op.Has(event.Create | event.MovedTo | event.Modify | event.CloseWrite | event.Attrib):
		b.Sync = []string{rel}
	default:
		return b, false
	}
	return b, true
}
