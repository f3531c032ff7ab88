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
	"path"
	"slices"
	"strings"
	"sync"
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
	// OnFiles, when set, receives what each Push changed on the target,
	// file by file (set Opts.ListFiles too): the --log-files record.
	OnFiles func(t rsync.Target, b *event.Batch, files []rsync.FileChange)
	// OnProgress, when set, is told of every file a full sync sends, as
	// rsync names it (files and bytes so far): long work shows progress.
	OnProgress func(t rsync.Target, root string, files int, bytes int64)

	// Gate is the source check every run passes, every attempt.
	Gate Gate

	mu         sync.Mutex
	filterMode map[string]bool // targets that need filter mode
}

// Report is the outcome of one (batch, target).
type Report struct {
	OK       bool
	Exit     int
	Class    rsync.Class
	Refusal  bool // the target refused the configuration (rsync.Refusal)
	Err      string
	Attempts int
	Paths    int
	Bytes    int64
	Deleted  int64              // from --stats, -1 unknown (read for dry runs)
	Renamed  int                // the batch's renames applied on the target before its runs
	Files    []rsync.FileChange // what the runs changed (Opts.ListFiles)
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

// Push brings target t in line with the source for batch b.
func (p *Pusher) Push(ctx context.Context, t rsync.Target, b *event.Batch) Report {
	start := time.Now()
	src := b.Root
	if !strings.HasPrefix(src, "/") || !strings.HasSuffix(src, "/") {
		return Report{Exit: rsync.ExitFileSelect, Class: rsync.Spool, Err: fmt.Sprintf("root %q is not an absolute directory root (must start and end with /)", src)}
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
	// A run deletes on the target when it carries --delete and is full,
	// lists a missing path, or lists a directory (or the root) to copy
	// recursively: --delete empties what the source no longer has in it.
	deletes := p.Opts.Delete && !p.Opts.DryRun && (b.Full || list.Missing > 0 || list.Recursive())
	if p.MaxDelete > 0 && list.Missing > p.MaxDelete {
		return Report{Exit: rsync.ExitDelLimit, Class: rsync.Spool, Elapsed: time.Since(start),
			Err: fmt.Sprintf("batch deletes %d paths, more than --max-delete %d; spooled for review", list.Missing, p.MaxDelete)}
	}
	// Renames first: the syncs then find the data in place. written
	// gains each renamed file whose rename could not be applied.
	written, renamed, renameBytes := p.renames(ctx, t, src, b)
	var jobs []job
	switch {
	case mode == rsync.ModeFull:
		// One run: a full sync mostly finds little to send, and shared
		// over two jobs it cost twice the CPU in the same time (50,000
		// files in sync, 2 cores); what a batch copies anew is shared.
		jobs = []job{{mode: mode, deletes: deletes}}
	case p.Jobs > 1 && len(list.Paths) < max(p.SplitMin, 2) && list.Recursive():
		jobs = p.treeJobs(src, job{mode: mode, paths: list.Paths, deletes: deletes}, list.Paths, written)
	case p.Jobs > 1 && len(list.Paths) >= max(p.SplitMin, 2):
		jobs = split(job{mode: mode, paths: list.Paths, deletes: deletes}, p.Jobs, written)
	case len(list.Paths) > 0:
		jobs = splitWritten(job{mode: mode, paths: list.Paths, deletes: deletes}, written)
	}
	if len(list.Dirs) > 0 {
		// Directories listed for their attributes only (the root's own
		// chmod among them): one run without recursion and without
		// --delete, beside the others.
		jobs = append(jobs, job{mode: rsync.ModeDirs, paths: list.Dirs})
	}
	for i := range jobs {
		jobs[i].rules = b.Rules
		if len(jobs[i].exclude) > 0 {
			var r event.Rules
			if b.Rules != nil {
				r = *b.Rules
			}
			r.Exclude = append(slices.Clip(r.Exclude), jobs[i].exclude...)
			jobs[i].rules = &r
		}
	}
	var budget *deleteBudget
	if p.MaxDelete > 0 && deletes {
		// What a full or recursive run deletes is known only to rsync:
		// a dry run of each job counts it before any job starts.
		budget = &deleteBudget{limit: int64(p.MaxDelete), counts: make([]int64, len(jobs))}
		for i := range jobs {
			if !jobs[i].deletes {
				continue
			}
			jobs[i].budget, jobs[i].idx = budget, i
			if r := p.count(ctx, t, src, &jobs[i], 0); r != nil {
				r.Elapsed = time.Since(start)
				return *r
			}
		}
	}
	reports := make([]Report, len(jobs))
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := p.Opts
			o.IgnoreTimes = jobs[i].ignoreTimes
			o.Rules = jobs[i].rules
			reports[i] = p.attempt(ctx, t, o, src, &jobs[i])
		}()
	}
	wg.Wait()
	r := Report{OK: true, Class: rsync.Done, Paths: len(list.Paths) + len(list.Dirs), Renamed: renamed, Bytes: renameBytes}
	if mode == rsync.ModeFull {
		r.Paths = 0
	}
	for _, c := range reports {
		r.Bytes += c.Bytes
		r.Files = append(r.Files, c.Files...)
		r.Attempts = max(r.Attempts, c.Attempts)
		if !c.OK && r.OK {
			r.OK, r.Exit, r.Class, r.Err, r.Refusal = false, c.Exit, c.Class, c.Err, c.Refusal
		}
	}
	if len(list.Errors) > 0 {
		msg := joinErrs(list.Errors)
		if r.Err != "" {
			msg = r.Err + "; " + msg
		}
		r.Err = msg
	}
	if p.OnFiles != nil && len(r.Files) > 0 {
		p.OnFiles(t, b, r.Files)
	}
	r.Elapsed = time.Since(start)
	return r
}

// splitWritten takes the files the kernel reported written out of j into a
// job of their own that runs with --ignore-times: rsync's quick check would
// skip a rewrite that kept size and mtime (reproducible builds, tar x,
// cp -p). Recursive entries and attribute-only paths keep the quick check.
// A written path that is gone (to be deleted) stays in j.
func splitWritten(j job, written []string) []job {
	if len(written) == 0 {
		return []job{j}
	}
	set := make(map[string]bool, len(written))
	for _, w := range written {
		set[path.Clean(w)] = true
	}
	data := job{mode: j.mode, deletes: j.deletes, ignoreTimes: true}
	rest := j
	rest.paths = nil
	for _, p := range j.paths {
		if !strings.HasSuffix(p, "/") && set[p] {
			data.paths = append(data.paths, p)
		} else {
			rest.paths = append(rest.paths, p)
		}
	}
	var out []job
	if len(rest.paths) > 0 {
		out = append(out, rest)
	}
	if len(data.paths) > 0 {
		out = append(out, data)
	}
	return out
}

// treeJobs shares j, a batch of a few recursive entries (new trees, each
// maybe large), over the jobs:
// with fewer trees than jobs their subdirectories (see spread), else the
// trees themselves, round-robin. Never with -H in the operator's options:
// only one run keeps the links between the files it sends.
func (p *Pusher) treeJobs(src string, j job, recursive, written []string) []job {
	n := p.Jobs
	if rsync.HardLinks(p.Opts.Extra) {
		n = 1
	}
	trees := rsync.List{Paths: recursive}.RecursiveCount()
	if trees < n {
		if others, exclude := spread(src, recursive, n, max(p.SplitMin, 2)); others != nil {
			j.exclude = exclude
			out := splitWritten(j, written)
			for _, paths := range others {
				if len(paths) > 0 {
					out = append(out, job{mode: rsync.ModeList, paths: paths, deletes: j.deletes})
				}
			}
			return out
		}
	}
	if trees < 2 || n < 2 {
		return splitWritten(j, written)
	}
	return split(j, min(n, trees), written)
}

// job is one rsync run of a batch (a -j slice, the attribute-only dirs, or
// the whole root).
type job struct {
	mode    rsync.Mode
	paths   []string
	deletes bool          // the run deletes on the target: the gate checks for emptiness
	budget  *deleteBudget // --max-delete: counted by a dry run (nil: no limit)
	idx     int           // this job's slot in budget
	// ignoreTimes: the paths' data was written; rsync must not skip them
	// on size and mtime.
	ignoreTimes bool
	rules       *event.Rules // the batch's: every run of the job, dry runs included
	// exclude: subdirectories other jobs of the batch copy (spread),
	// anchored rsync patterns added to rules' excludes.
	exclude []string
}

// deleteBudget is --max-delete over all jobs of one batch: each job's
// count, from a dry run, recounted before each retry.
type deleteBudget struct {
	mu     sync.Mutex
	limit  int64
	counts []int64
}

// set records job i's count and reports the total when it is over the
// limit (0 otherwise).
func (b *deleteBudget) set(i int, n int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counts[i] = n
	var sum int64
	for _, c := range b.counts {
		sum += c
	}
	if sum > b.limit {
		return sum
	}
	return 0
}

// count dry-runs j to learn what it would delete and checks the budget;
// known is a count already made (-1: none). nil means within the limit.
func (p *Pusher) count(ctx context.Context, t rsync.Target, src string, j *job, attempt int) *Report {
	dry := p.dryRun(ctx, t, src, j)
	if !dry.OK {
		dry.Err = "dry run counting deletions for --max-delete: " + dry.Err
		return &dry
	}
	if dry.Deleted < 0 {
		return &Report{Exit: rsync.ExitDelLimit, Class: rsync.Spool, Attempts: attempt,
			Err: "rsync printed no deletion count, so --max-delete cannot be checked; spooled for review"}
	}
	if sum := j.budget.set(j.idx, dry.Deleted); sum > 0 {
		return &Report{Exit: rsync.ExitDelLimit, Class: rsync.Spool, Attempts: attempt,
			Err: fmt.Sprintf("batch would delete %d entries on the target, more than --max-delete %d; spooled for review", sum, p.MaxDelete)}
	}
	return nil
}

// dryRun runs j once with --dry-run (no retries) and reads its --stats.
func (p *Pusher) dryRun(ctx context.Context, t rsync.Target, src string, j *job) Report {
	o := p.Opts
	o.Rules = j.rules
	o.DryRun = true
	m := j.mode
	if m == rsync.ModeList && p.needsFilter(t.Spec) {
		m = rsync.ModeFilter
	}
	r := p.once(ctx, t, o, src, m, j.paths, 1)
	if r.Class == rsync.FilterMode && m == rsync.ModeList {
		p.setFilter(t.Spec)
		r = p.once(ctx, t, o, src, rsync.ModeFilter, j.paths, 1)
	}
	return r
}

// preflight is what runs before every attempt of a job that is not a dry
// run: the gate, then, for an empty root, a dry run that must find nothing
// to delete (a new, still empty data directory passes; an unmounted one
// over a full target does not), and on a retry a new count for
// --max-delete. nil means go.
func (p *Pusher) preflight(ctx context.Context, t rsync.Target, src string, j *job, attempt int) *Report {
	err := p.Gate.Check(src, j.deletes)
	if errors.Is(err, ErrEmptySource) {
		dry := p.dryRun(ctx, t, src, j)
		switch {
		case !dry.OK:
			dry.Err = "dry run for an empty source: " + dry.Err
			dry.Attempts = attempt
			return &dry
		case dry.Deleted == 0:
			return nil // nothing on the target either
		case dry.Deleted > 0:
			err = &SourceError{Root: src, Err: ErrEmptySource, Detail: fmt.Sprintf("%d entries on the target would be deleted; unmounted?", dry.Deleted)}
		default:
			err = &SourceError{Root: src, Err: ErrEmptySource, Detail: "rsync printed no deletion count; unmounted?"}
		}
	}
	if err != nil {
		return &Report{Exit: rsync.ExitFileSelect, Class: rsync.Dangerous, Attempts: attempt, Err: err.Error()}
	}
	if j.budget != nil && attempt > 1 {
		return p.count(ctx, t, src, j, attempt)
	}
	return nil
}

func joinErrs(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, "rejected "+e.Error())
	}
	return strings.Join(s, "; ")
}

// split deals j's paths round-robin into n jobs (paths are sorted, so
// each spreads over the tree and all are of equal count), each then split
// by splitWritten.
func split(j job, n int, written []string) []job {
	n = min(n, len(j.paths))
	chunks := make([][]string, n)
	for i, p := range j.paths {
		chunks[i%n] = append(chunks[i%n], p)
	}
	var out []job
	for _, c := range chunks {
		out = append(out, splitWritten(job{mode: j.mode, paths: c, deletes: j.deletes}, written)...)
	}
	return out
}

// attempt runs job j with retries, with options opts. Every attempt
// passes preflight first (a dry run is only counting and passes nothing).
func (p *Pusher) attempt(ctx context.Context, t rsync.Target, opts rsync.Options, src string, j *job) Report {
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
		m := j.mode
		if m == rsync.ModeList && p.needsFilter(t.Spec) {
			m = rsync.ModeFilter
		}
		if pr := p.preflight(ctx, t, src, j, attempt); pr != nil {
			r = *pr
		} else {
			r = p.once(ctx, t, opts, src, m, j.paths, attempt)
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
					t.Spec, r.Err)
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

// once is one rsync run, classified.
func (p *Pusher) once(ctx context.Context, t rsync.Target, opts rsync.Options, src string, m rsync.Mode, paths []string, attempt int) Report {
	// Files as rsync names them: counted for progress on a full sync,
	// kept for --log-files (OnFiles), never buffered otherwise.
	var progress func(rsync.FileChange)
	var kept []rsync.FileChange
	keep := p.OnFiles != nil && opts.ListFiles && !opts.DryRun
	if m == rsync.ModeFull && p.OnProgress != nil && !opts.DryRun {
		opts.ListFiles = true
		var files int
		var bytes int64
		progress = func(fc rsync.FileChange) {
			if keep {
				kept = append(kept, fc)
			}
			files++
			bytes += fc.Size
			p.OnProgress(t, src, files, bytes)
		}
	}
	run := rsync.Run{Binary: p.Binary, Args: rsync.Args(opts, t, src, m), Env: p.Env, Progress: progress}
	switch m {
	case rsync.ModeList, rsync.ModeDirs:
		run.Stdin = rsync.Stdin(paths)
	case rsync.ModeFilter:
		run.Stdin = rsync.FilterRules(paths)
	}
	o := p.Runner.Run(ctx, run)
	if progress != nil {
		o.Files = kept
	}
	r := Report{Exit: o.Exit, Attempts: attempt, Bytes: o.Bytes, Deleted: o.Deleted, Files: o.Files, Class: rsync.Classify(o.Exit, o.Stderr),
		Refusal: o.Err == nil && rsync.Refusal(o.Exit, o.Stderr)}
	if o.Err != nil {
		r.Err = fmt.Sprintf("run %s: %v", p.Binary, o.Err)
	} else if o.Exit != 0 {
		r.Err = fmt.Sprintf("rsync exit %d: %s", o.Exit, lastLines(o.Stderr, 3))
		if h := rsync.Hint(o.Exit, o.Stderr); h != "" {
			r.Err += " (" + h + ")"
		}
	}
	if r.Class == rsync.Done {
		r.OK = true
	}
	return r
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

// Probe checks once that target t accepts rpush (rsync.ProbeArgs): OK, a
// transient failure (Class Retry: down, timed out; batches will be retried
// and spooled) or a lasting one (wrong password, unknown module, refused
// option, missing rsync), which no retry cures. A local target's directory
// (or its parent, which rsync completes) must exist.
func (p *Pusher) Probe(ctx context.Context, t rsync.Target) Report {
	if t.Kind == rsync.Local {
		dir := strings.TrimSuffix(t.Dest, "/")
		if _, err := os.Stat(dir); err != nil {
			if _, perr := os.Stat(path.Dir(dir)); perr != nil {
				return Report{Exit: rsync.ExitFileSelect, Class: rsync.Spool, Err: fmt.Sprintf("local target %s: neither it nor its parent exists", dir)}
			}
		}
		return Report{OK: true, Class: rsync.Done}
	}
	o := p.Runner.Run(ctx, rsync.Run{Binary: p.Binary, Args: rsync.ProbeArgs(p.Opts, t), Env: p.Env})
	r := Report{Exit: o.Exit, Attempts: 1, Class: rsync.Classify(o.Exit, o.Stderr)}
	switch {
	case o.Err != nil:
		r.Err = fmt.Sprintf("run %s: %v", p.Binary, o.Err)
	case o.Exit != 0:
		r.Err = fmt.Sprintf("rsync exit %d: %s", o.Exit, lastLines(o.Stderr, 2))
		if h := rsync.Hint(o.Exit, o.Stderr); h != "" {
			r.Err += " (" + h + ")"
		}
	}
	r.OK = r.Class == rsync.Done || r.Class == rsync.FilterMode
	return r
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
	case ev.Op.Has(event.Create | event.MovedTo | event.Modify | event.CloseWrite):
		b.Sync, b.Written = []string{rel}, []string{rel}
	case ev.Op.Has(event.Attrib):
		b.Sync = []string{rel}
	default:
		return b, false
	}
	return b, true
}
