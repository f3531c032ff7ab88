package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/cmd/internal/pushflags"
	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
)

const description = `replay the batches rpush spooled, merging the entries of each (target, root)
   into one rsync run; remove an entry only after its run succeeded.

   */5 * * * *  failreplay --spool /var/spool/inopipe --password-file /etc/inopipe/rsync.pass

   Give the same rsync options as rpush (--rsync-opts, --password-file, --port, ...).
   --full also syncs every (root, target) rpush has served, whole (sersync's crontab).`

// Config is failreplay's own part of the command line.
type Config struct {
	Target      string
	MaxAge      time.Duration
	Full        bool
	MaxFailures int // replays in a row that fail for a lasting reason before an entry is quarantined
	// Only, when set (--source DIR TARGET...), are the (root, target)
	// pairs to replay and, with Full, to sync whole: a config's own, not
	// what targets.json remembers. Entries of other pairs are left alone.
	Only []spool.Pair
}

// exitStatus is what each exit code means for failreplay (codes: base).
var exitStatus = []base.Status{
	{Code: base.ExitOK, Meaning: "every entry replayed (or none to replay)"},
	{Code: base.ExitError, Meaning: "a configuration error, or a failed full sync that could not be spooled"},
	{Code: base.ExitUsage, Meaning: "bad usage"},
	{Code: base.ExitPartial, Meaning: "entries remain in the spool (failed again)"},
	{Code: base.ExitLocked, Meaning: "another failreplay holds the spool lock; nothing done"},
}

func newApp() *cli.App {
	flags := append(pushflags.Flags(),
		&cli.StringFlag{Name: "target", Usage: "replay only entries for `TARGET` (as written to rpush)"},
		&cli.DurationFlag{Name: "max-age", Usage: "replay entries older than `DURATION` as a full sync of their root instead of their path list"},
		&cli.BoolFlag{Name: "full", Usage: "also run a full sync of every (root, target) rpush has served (recorded in DIR/targets.json)"},
		&cli.StringFlag{Name: "source", Usage: "act on this source `DIR` and the TARGETs given after the options only (a config's pairs), not on every pair the spool remembers"},
		&cli.IntFlag{Name: "max-failures", Value: 5, Usage: "park an entry in DIR/quarantine after `N` replays in a row fail for a reason retrying does not cure (a target that is down never counts)"},
	)
	return base.WithExitStatus(exitStatus, &cli.App{
		Name:            "failreplay",
		Usage:           "replay rpush's spool; periodic full sync",
		UsageText:       "failreplay [options] [--source DIR TARGET...]",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags:           flags,
		Action: func(c *cli.Context) error {
			if err := base.CheckArgs(c); err != nil {
				return err
			}
			var only []spool.Pair
			switch src := c.String("source"); {
			case src == "" && c.NArg() > 0:
				return base.Usagef("unexpected argument %q (targets come from the spool, or from --source DIR TARGET...)", c.Args().First())
			case src != "" && c.NArg() == 0:
				return base.Usagef("--source needs the TARGETs it is replicated to")
			case src != "":
				if !filepath.IsAbs(src) {
					return base.Usagef("--source %q is not an absolute path", src)
				}
				root := strings.TrimSuffix(filepath.Clean(src), "/") + "/"
				for _, a := range c.Args().Slice() {
					only = append(only, spool.Pair{Root: root, Target: a})
				}
			}
			p, _, sp, err := pushflags.FromFlags(c, nil)
			if err != nil {
				return err
			}
			cfg := &Config{Target: c.String("target"), MaxAge: c.Duration("max-age"), Full: c.Bool("full"), MaxFailures: c.Int("max-failures"), Only: only}
			if cfg.MaxFailures < 1 {
				return base.Usagef("--max-failures must be at least 1")
			}
			return run(c.Context, cfg, p, sp, c.App.ErrWriter)
		},
	})
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
	g.batch.Events += e.Batch.Events
	g.batch.Seq = max(g.batch.Seq, e.Batch.Seq)
	if g.batch.Full {
		g.batch.Sync, g.batch.Delete = []string{}, []string{}
	}
}

// replayer is one failreplay run: the spool is locked for its duration.
type replayer struct {
	cfg *Config
	p   *push.Pusher
	sp  *spool.Spool
	log *base.Log

	replayed, remain, runs, quarantined int
	fulls                               map[spool.Pair]string // full-sync entries already in the spool
}

func run(ctx context.Context, cfg *Config, p *push.Pusher, sp *spool.Spool, stderr io.Writer) error {
	log := &base.Log{Prog: "failreplay", W: stderr}
	p.Warnf = log.Warnf
	unlock, err := sp.Lock()
	if errors.Is(err, spool.ErrLocked) {
		log.Infof("another failreplay is running on %s; nothing done", sp.Dir)
		return base.Exit(base.ExitLocked)
	}
	if err != nil {
		return base.Errorf(base.ExitError, "%w", err)
	}
	defer unlock()
	if cfg.MaxFailures < 1 {
		cfg.MaxFailures = 5
	}
	rp := &replayer{cfg: cfg, p: p, sp: sp, log: log, fulls: map[spool.Pair]string{}}

	files, err := sp.List()
	if err != nil {
		return base.Errorf(base.ExitError, "%w", err)
	}
	groups := map[[2]string]*group{}
	var order [][2]string
	others := 0
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
			others++
			continue
		}
		if e.Batch.Full {
			rp.fulls[spool.Pair{Root: e.Batch.Root, Target: e.Target}] = f
		}
		key := [2]string{e.Target, e.Batch.Root}
		g := groups[key]
		if g == nil {
			g = &group{target: t, root: e.Batch.Root, batch: event.Batch{Root: e.Batch.Root, Sync: []string{}, Delete: []string{}}}
			groups[key] = g
			order = append(order, key)
		}
		g.merge(f, e, cfg.MaxAge > 0 && sp.Now().Sub(e.FirstFailure) > cfg.MaxAge)
	}
	if others > 0 {
		log.Infof("%d entries for other (root, target) pairs left alone (not in --source and TARGETs)", others)
	}
	for _, key := range order {
		if ctx.Err() != nil {
			rp.remain += len(groups[key].ents)
			continue
		}
		rp.replay(ctx, groups[key])
	}
	fullFailed := 0
	var putErr error
	if cfg.Full {
		fullFailed, putErr = rp.full(ctx)
	}
	full := ""
	if cfg.Full && fullFailed == 0 {
		full = "; full sync done"
	}
	log.Infof("replayed %d entries in %d rsync runs; %d remain; %d quarantined%s", rp.replayed, rp.runs, rp.remain+fullFailed, rp.quarantined, full)
	switch {
	case putErr != nil:
		return base.Errorf(base.ExitError, "a failed full sync could not be spooled either: %v", putErr)
	case rp.remain+fullFailed > 0:
		return base.Exit(base.ExitPartial)
	}
	return nil
}

// replay runs a group's entries as one rsync run. When that fails for a
// lasting reason (not a target that is down, not the gate), each entry is
// replayed alone, so that one entry that can never succeed (a poison
// path) holds back only itself, and is quarantined after
// cfg.MaxFailures such replays.
func (rp *replayer) replay(ctx context.Context, g *group) {
	rp.runs++
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
			rp.remain++
			continue
		}
		one := &group{target: g.target, root: g.root, batch: event.Batch{Root: g.root, Sync: []string{}, Delete: []string{}}}
		one.merge(g.paths[i], e, false)
		rp.runs++
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
	rp.replayed += len(paths)
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
	rp.remain++
}

func (rp *replayer) quarantine(f, why string) {
	rp.quarantined++
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
		rp.runs++
		b := event.Batch{Root: pr.Root, Full: true, Sync: []string{}, Delete: []string{}}
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
