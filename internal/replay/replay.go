// Package replay delivers what rpush spooled: the entries of each (target,
// root) merged into one rsync run, an entry removed only after its run
// succeeded, a poison entry isolated and quarantined, and the periodic full
// sync. failreplay runs it from a timer; rpush runs it for a target that
// accepts batches again after failures (catch-up without a timer).
package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
)

// Config selects what a Run replays.
type Config struct {
	Target      string        // only entries for this target ("": all)
	MaxAge      time.Duration // entries older than this replay as a full sync of their root (0: never)
	Full        bool          // then a full sync of every pair (Only, or what targets.json remembers)
	MaxFailures int           // replays in a row that fail for a lasting reason before an entry is quarantined (default 5)
	// Only, when set, are the (root, target) pairs to replay and, with
	// Full, to sync whole: a config's own, not what targets.json
	// remembers. Entries of other pairs are left alone (counted).
	Only []spool.Pair
	// Rules, when not nil, are the rules of the full syncs (the
	// pipeline's, as evfilter --print-rules gives them); nil: the rules
	// rpush last recorded for each root (spool rules.json), if any.
	// Spooled entries always replay with the rules they were made with.
	Rules *event.Rules
}

// Summary is what a Run did.
type Summary struct {
	Replayed, Runs, Remain, Quarantined int
	Others                              int   // entries of pairs outside Only, left alone
	FullFailed                          int   // full syncs that failed (spooled)
	PutErr                              error // a failed full sync that could not be spooled either
}

type group struct {
	target rsync.Target
	root   string
	paths  []string
	ents   []*spool.Entry
	batch  event.Batch
}

// merge adds entry e (file f) to the group's one batch.
func (g *group) merge(f string, e *spool.Entry, old bool) {
	g.paths = append(g.paths, f)
	g.ents = append(g.ents, e)
	g.batch.Full = g.batch.Full || e.Batch.Full || old
	g.batch.Sync = append(g.batch.Sync, e.Batch.Sync...)
	g.batch.Delete = append(g.batch.Delete, e.Batch.Delete...)
	g.batch.Written = append(g.batch.Written, e.Batch.Written...)
	g.batch.Events += e.Batch.Events
	g.batch.Seq = max(g.batch.Seq, e.Batch.Seq)
	if g.batch.Full {
		g.batch.Sync, g.batch.Delete, g.batch.Written = []string{}, []string{}, nil
	}
}

// replayer is one Run: the spool is locked for its duration.
type replayer struct {
	cfg   *Config
	p     *push.Pusher
	sp    *spool.Spool
	log   *base.Log
	sum   Summary
	fulls map[spool.Pair]string // full-sync entries already in the spool
}

// Run replays sp once under its lock (ErrLocked when another replay holds
// it): the entries cfg selects, merged per (target, root); with cfg.Full a
// full sync of each pair after. log receives the per-entry messages; the
// caller prints the summary.
func Run(ctx context.Context, cfg Config, p *push.Pusher, sp *spool.Spool, log *base.Log) (Summary, error) {
	unlock, err := sp.Lock()
	if err != nil {
		return Summary{}, err
	}
	defer unlock()
	if cfg.MaxFailures < 1 {
		cfg.MaxFailures = 5
	}
	rp := &replayer{cfg: &cfg, p: p, sp: sp, log: log, fulls: map[spool.Pair]string{}}

	files, err := sp.List()
	if err != nil {
		return Summary{}, err
	}
	groups := map[[3]string]*group{}
	var order [][3]string
	for _, f := range files {
		e, err := sp.Read(f)
		var t rsync.Target
		if err == nil {
			t, err = rsync.ParseTarget(e.Target)
		}
		if err != nil {
			rp.quarantine(f, fmt.Sprintf("is unreadable: %v", err))
			continue
		}
		if cfg.Target != "" && e.Target != cfg.Target {
			continue
		}
		if cfg.Only != nil && !slices.Contains(cfg.Only, spool.Pair{Root: e.Batch.Root, Target: e.Target}) {
			rp.sum.Others++
			continue
		}
		if e.Batch.Full {
			rp.fulls[spool.Pair{Root: e.Batch.Root, Target: e.Target}] = f
		}
		// Entries made under different rules never share a run.
		key := [3]string{e.Target, e.Batch.Root}
		if e.Batch.Rules != nil {
			key[2] = string(event.AppendRules(nil, e.Batch.Rules))
		}
		g := groups[key]
		if g == nil {
			g = &group{target: t, root: e.Batch.Root, batch: event.Batch{Root: e.Batch.Root, Sync: []string{}, Delete: []string{}, Rules: e.Batch.Rules}}
			groups[key] = g
			order = append(order, key)
		}
		g.merge(f, e, cfg.MaxAge > 0 && sp.Now().Sub(e.FirstFailure) > cfg.MaxAge)
	}
	for _, key := range order {
		if ctx.Err() != nil {
			rp.sum.Remain += len(groups[key].ents)
			continue
		}
		rp.replay(ctx, groups[key])
	}
	if cfg.Full {
		rp.sum.FullFailed, rp.sum.PutErr = rp.full(ctx)
	}
	return rp.sum, nil
}

// replay runs a group's entries as one rsync run. When that fails for a
// lasting reason (not a target that is down, not the gate), each entry is
// replayed alone, so that one entry that can never succeed (a poison
// path) holds back only itself, and is quarantined after
// cfg.MaxFailures such replays.
func (rp *replayer) replay(ctx context.Context, g *group) {
	rp.sum.Runs++
	rep := rp.p.Push(ctx, g.target, &g.batch)
	if rep.OK {
		rp.done(g.paths)
		return
	}
	rp.log.Warnf("replay to %s of %s failed: %s", g.target.Spec, g.root, rep.Err)
	if !lasting(rep.Class) || len(g.ents) == 1 {
		for i, e := range g.ents {
			rp.failed(g.paths[i], e, rep)
		}
		return
	}
	for i, e := range g.ents {
		if ctx.Err() != nil {
			rp.sum.Remain++
			continue
		}
		one := &group{target: g.target, root: g.root, batch: event.Batch{Root: g.root, Sync: []string{}, Delete: []string{}, Rules: g.batch.Rules}}
		one.merge(g.paths[i], e, false)
		rp.sum.Runs++
		r := rp.p.Push(ctx, one.target, &one.batch)
		if r.OK {
			rp.done(one.paths)
			continue
		}
		rp.failed(g.paths[i], e, r)
	}
}

// lasting tells the failures that replaying again soon will not cure.
func lasting(c rsync.Class) bool {
	return c != rsync.Retry && c != rsync.Dangerous
}

func (rp *replayer) done(paths []string) {
	for _, f := range paths {
		if err := rp.sp.Remove(f); err != nil {
			rp.log.Errorf("%v", err)
		}
	}
	rp.sum.Replayed += len(paths)
}

// failed records a failed replay of entry e (file f), and parks it in
// quarantine when it has failed for a lasting reason cfg.MaxFailures
// times in a row.
func (rp *replayer) failed(f string, e *spool.Entry, rep push.Report) {
	e.Attempts += max(rep.Attempts, 1)
	e.LastFailure, e.LastError, e.Exit = rp.sp.Now(), rep.Err, rep.Exit
	if lasting(rep.Class) {
		e.Failures++
	} else {
		e.Failures = 0
	}
	if err := rp.sp.Update(f, e); err != nil {
		rp.log.Errorf("update %s: %v", f, err)
	}
	if e.Failures >= rp.cfg.MaxFailures {
		rp.quarantine(f, fmt.Sprintf("failed %d replays in a row (last: %s)", e.Failures, e.LastError))
		return
	}
	rp.sum.Remain++
}

func (rp *replayer) quarantine(f, why string) {
	rp.sum.Quarantined++
	q, err := rp.sp.Quarantine(f)
	if err != nil {
		rp.log.Errorf("entry %s %s, and could not be quarantined: %v", f, why, err)
		return
	}
	rp.log.Errorf("entry %s %s; moved to %s", f, why, q)
	rp.log.Hintf("read it (its first line says why), fix the cause, then move it back into %s or delete it; a full sync (failreplay --full) covers its paths", rp.sp.Dir)
}

// full is --full: a full sync of every (root, target) rpush has served. A
// failure is spooled, replacing the full-sync entry already there for the
// same pair rather than adding one more on each run.
func (rp *replayer) full(ctx context.Context) (failed int, putErr error) {
	pairs, err := rp.sp.Pairs()
	if rp.cfg.Only != nil {
		pairs, err = rp.cfg.Only, nil // the config's pairs, on a fresh install too
	}
	if err != nil && len(pairs) == 0 {
		rp.log.Warnf("--full: no (root, target) recorded yet in %s (rpush records them as it serves them; or give --source DIR TARGET...)", rp.sp.Dir)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Target+pairs[i].Root < pairs[j].Target+pairs[j].Root })
	recorded, err := rp.sp.Rules()
	if err != nil && !errors.Is(err, os.ErrNotExist) && rp.cfg.Rules == nil {
		// Without the rules a full sync would send what the pipeline
		// excludes and delete the target's excluded files.
		rp.log.Errorf("--full: %v; no full sync without the pipeline's rules (give them with --rules)", err)
		return len(pairs), nil
	}
	for _, pr := range pairs {
		if rp.cfg.Target != "" && pr.Target != rp.cfg.Target || ctx.Err() != nil {
			continue
		}
		t, err := rsync.ParseTarget(pr.Target)
		if err != nil {
			rp.log.Errorf("--full: %v", err)
			failed++
			continue
		}
		rp.sum.Runs++
		b := event.Batch{Root: pr.Root, Full: true, Sync: []string{}, Delete: []string{}, Rules: recorded[pr.Root]}
		if rp.cfg.Rules != nil {
			b.Rules = rp.cfg.Rules
		}
		rep := rp.p.Push(ctx, t, &b)
		if rep.OK {
			continue
		}
		failed++
		rp.log.Warnf("full sync of %s to %s failed: %s", pr.Root, pr.Target, rep.Err)
		now := rp.sp.Now()
		if f, ok := rp.fulls[pr]; ok {
			if e, err := rp.sp.Read(f); err == nil {
				e.Attempts += max(rep.Attempts, 1)
				e.LastFailure, e.LastError, e.Exit = now, rep.Err, rep.Exit
				if err := rp.sp.Update(f, e); err != nil {
					putErr = err
					rp.log.Errorf("spool full sync of %s to %s: %v", pr.Root, pr.Target, err)
				}
				continue
			}
		}
		f, err := rp.sp.Put(&spool.Entry{Target: pr.Target, Attempts: rep.Attempts, FirstFailure: now, LastFailure: now, LastError: rep.Err, Exit: rep.Exit, Batch: b})
		if err != nil {
			putErr = err
			rp.log.Errorf("spool full sync of %s to %s: %v", pr.Root, pr.Target, err)
			continue
		}
		rp.fulls[pr] = f
	}
	return failed, putErr
}
