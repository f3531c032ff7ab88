package main

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
)

// Exit codes, for cron and systemd.
const (
	exitOK     = 0 // every entry replayed (or none to replay)
	exitError  = 1 // configuration error (rsync missing, bad spool dir, ...)
	exitUsage  = 2 // bad command line
	exitRemain = 3 // some entries failed again and remain in the spool
	exitLocked = 4 // another failreplay holds the spool lock; nothing done
)

const description = `replay the batches rpush spooled, merging the entries of each (target, root)
   into one rsync run; remove an entry only after its run succeeded.

   */5 * * * *  failreplay --spool /var/spool/inopipe --password-file /etc/inopipe/rsync.pass

   Give the same rsync options as rpush (--rsync-opts, --password-file, --port, ...).
   --full also syncs every (root, target) rpush has served, whole (sersync's crontab).

EXIT STATUS:
   0  all replayed   1  configuration error   2  bad usage
   3  entries remain (failed again)   4  another failreplay is running`

// Config is failreplay's own part of the command line.
type Config struct {
	Target string
	MaxAge time.Duration
	Full   bool
}

func newApp() *cli.App {
	flags := append(push.Flags(),
		&cli.StringFlag{Name: "target", Usage: "replay only entries for `TARGET` (as written to rpush)"},
		&cli.DurationFlag{Name: "max-age", Usage: "replay entries older than `DURATION` as a full sync of their root instead of their path list"},
		&cli.BoolFlag{Name: "full", Usage: "also run a full sync of every (root, target) rpush has served (recorded in DIR/targets.json)"},
	)
	return &cli.App{
		Name:            "failreplay",
		Usage:           "replay rpush's spool; periodic full sync",
		UsageText:       "failreplay [options]",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags:           flags,
		Action: func(c *cli.Context) error {
			if err := base.CheckArgs(c); err != nil {
				return err
			}
			if c.NArg() > 0 {
				return base.Usagef("unexpected argument %q (targets come from the spool; use --target to pick one)", c.Args().First())
			}
			p, _, sp, err := push.FromFlags(c, nil)
			if err != nil {
				return err
			}
			cfg := &Config{Target: c.String("target"), MaxAge: c.Duration("max-age"), Full: c.Bool("full")}
			return run(c.Context, cfg, p, sp, c.App.ErrWriter)
		},
	}
}

type group struct {
	target rsync.Target
	root   string
	paths  []string
	ents   []*spool.Entry
	batch  event.Batch
}

func run(ctx context.Context, cfg *Config, p *push.Pusher, sp *spool.Spool, stderr io.Writer) error {
	log := &base.Log{Prog: "failreplay", W: stderr}
	p.Warnf = log.Warnf
	unlock, err := sp.Lock()
	if errors.Is(err, spool.ErrLocked) {
		log.Infof("another failreplay is running on %s; nothing done", sp.Dir)
		return base.Exit(exitLocked)
	}
	if err != nil {
		return base.Errorf(exitError, "%v", err)
	}
	defer unlock()

	files, err := sp.List()
	if err != nil {
		return base.Errorf(exitError, "%v", err)
	}
	groups := map[[2]string]*group{}
	var order [][2]string
	quarantined := 0
	for _, f := range files {
		e, err := sp.Read(f)
		var t rsync.Target
		if err == nil {
			t, err = rsync.ParseTarget(e.Target)
		}
		if err != nil {
			q, qerr := sp.Quarantine(f)
			if qerr != nil {
				log.Errorf("entry %s is unreadable (%v) and could not be quarantined: %v", f, err, qerr)
			} else {
				log.Errorf("entry %s is unreadable: %v; moved to %s", f, err, q)
			}
			quarantined++
			continue
		}
		if cfg.Target != "" && e.Target != cfg.Target {
			continue
		}
		key := [2]string{e.Target, e.Batch.Root}
		g := groups[key]
		if g == nil {
			g = &group{target: t, root: e.Batch.Root, batch: event.Batch{Root: e.Batch.Root, Sync: []string{}, Delete: []string{}}}
			groups[key] = g
			order = append(order, key)
		}
		g.paths = append(g.paths, f)
		g.ents = append(g.ents, e)
		old := cfg.MaxAge > 0 && sp.Now().Sub(e.FirstFailure) > cfg.MaxAge
		g.batch.Full = g.batch.Full || e.Batch.Full || old
		g.batch.Sync = append(g.batch.Sync, e.Batch.Sync...)
		g.batch.Delete = append(g.batch.Delete, e.Batch.Delete...)
		g.batch.Events += e.Batch.Events
		g.batch.Seq = max(g.batch.Seq, e.Batch.Seq)
	}
	replayed, remain, runs := 0, 0, 0
	for _, key := range order {
		if ctx.Err() != nil {
			remain += len(groups[key].ents)
			continue
		}
		g := groups[key]
		if g.batch.Full {
			g.batch.Sync, g.batch.Delete = []string{}, []string{}
		}
		runs++
		rep := p.Push(ctx, g.target, &g.batch)
		if rep.OK {
			for _, f := range g.paths {
				if err := sp.Remove(f); err != nil {
					log.Errorf("%v", err)
				}
			}
			replayed += len(g.paths)
			continue
		}
		log.Warnf("replay to %s of %s failed: %s", g.target.Spec, g.root, rep.Err)
		for i, e := range g.ents {
			e.Attempts += max(rep.Attempts, 1)
			e.LastFailure, e.LastError, e.Exit = sp.Now(), rep.Err, rep.Exit
			if err := sp.Update(g.paths[i], e); err != nil {
				log.Errorf("update %s: %v", g.paths[i], err)
			}
		}
		remain += len(g.paths)
	}
	fullFailed := 0
	if cfg.Full {
		pairs, err := sp.Pairs()
		if err != nil && len(pairs) == 0 {
			log.Warnf("--full: no (root, target) recorded yet in %s (rpush records them as it serves them)", sp.Dir)
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].Target+pairs[i].Root < pairs[j].Target+pairs[j].Root })
		for _, pr := range pairs {
			if cfg.Target != "" && pr.Target != cfg.Target || ctx.Err() != nil {
				continue
			}
			t, err := rsync.ParseTarget(pr.Target)
			if err != nil {
				log.Errorf("--full: %v", err)
				fullFailed++
				continue
			}
			runs++
			rep := p.Push(ctx, t, &event.Batch{Root: pr.Root, Full: true, Sync: []string{}, Delete: []string{}})
			if !rep.OK {
				fullFailed++
				log.Warnf("full sync of %s to %s failed: %s", pr.Root, pr.Target, rep.Err)
				now := sp.Now()
				sp.Put(&spool.Entry{Target: pr.Target, Attempts: rep.Attempts, FirstFailure: now, LastFailure: now, LastError: rep.Err, Exit: rep.Exit,
					Batch: event.Batch{Root: pr.Root, Full: true, Sync: []string{}, Delete: []string{}}})
			}
		}
	}
	full := ""
	if cfg.Full && fullFailed == 0 {
		full = "; full sync done"
	}
	log.Infof("replayed %d entries in %d rsync runs; %d remain; %d quarantined%s", replayed, runs, remain+fullFailed, quarantined, full)
	if remain+fullFailed > 0 {
		return base.Exit(exitRemain)
	}
	return nil
}
