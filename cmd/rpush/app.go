package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
	"github.com/inopipe/inopipe/internal/status"
)

// Exit codes.
const (
	exitOK      = 0 // every batch reached every target
	exitError   = 1 // a source was stopped (unsafe root), rsync missing, or an I/O error
	exitUsage   = 2 // bad command line
	exitPartial = 3 // some batches were spooled (run failreplay)
)

const description = `read batches (from evbatch) or events (from inowait/evfilter) on stdin and
   run rsync for each, to every TARGET in parallel; print one JSON result line
   per (batch, target); spool what fails for failreplay.

   inowait -mr --resync /data | evfilter --temp | evbatch 500ms | rpush backup::data /mnt/copy

   TARGET: host::module[/path], user@host::module, rsync://[user@]host[:port]/module,
   [user@]host:/path (ssh), or a local directory. No shell is ever run; paths
   reach rsync NUL-separated on stdin.

EXIT STATUS:
   0  all delivered   1  source stopped, rsync missing or I/O error
   2  bad usage       3  some batches spooled (run failreplay)`

// Config is rpush's own part of the command line.
type Config struct {
	Targets []rsync.Target
	Quiet   bool
	Init    bool
	Strict  bool
	Grace   time.Duration
	Queue   int // batches waiting per target before further ones are spooled

	StatusFile     string        // JSON (or Prometheus text for *.prom) per target
	StatusInterval time.Duration // how often it is rewritten
}

func newApp() *cli.App {
	flags := append(push.Flags(),
		&cli.BoolFlag{Name: "init", Usage: "run a full sync of each root to each target before its first batch (sersync -r)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print result lines for failures only"},
		&cli.DurationFlag{Name: "grace", Value: 30 * time.Second, Usage: "on SIGTERM, let running rsyncs finish for this `DURATION`, then stop them and spool"},
		&cli.BoolFlag{Name: "strict", Usage: "stop with exit status 2 at the first malformed input line"},
		&cli.StringFlag{Name: "status-file", Usage: "rewrite `FILE` atomically with per-target figures (JSON; Prometheus text if it ends in .prom)"},
		&cli.DurationFlag{Name: "status-interval", Value: 5 * time.Second, Usage: "how often the --status-file is rewritten"},
		&cli.IntFlag{Name: "queue", Value: 1024, Usage: "batches waiting per target; when a slow target has `N` waiting, further ones are spooled for it"},
	)
	return &cli.App{
		Name:            "rpush",
		Usage:           "rsync each batch to one or more targets, spooling failures",
		UsageText:       "rpush [options] TARGET... < batches > results",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags:           flags,
		Action: func(c *cli.Context) error {
			if err := base.CheckArgs(c); err != nil {
				return err
			}
			if c.NArg() == 0 {
				return base.Usagef("no TARGET given")
			}
			p, targets, sp, err := push.FromFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			cfg := &Config{Targets: targets, Quiet: c.Bool("quiet"), Init: c.Bool("init"), Strict: c.Bool("strict"), Grace: c.Duration("grace"), Queue: c.Int("queue"),
				StatusFile: c.String("status-file"), StatusInterval: c.Duration("status-interval")}
			if cfg.StatusInterval <= 0 {
				return base.Usagef("--status-interval must be positive")
			}
			if cfg.Queue < 1 {
				return base.Usagef("--queue must be at least 1")
			}
			signal.Ignore(syscall.SIGPIPE)
			return run(c.Context, cfg, p, sp, c.App.Reader, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// state is shared by the workers, behind mu.
type state struct {
	mu        sync.Mutex
	spooled   int
	spoolErrs int               // batches that could not be spooled either
	fatal     string            // a Config-class failure: everything else is spooled
	stopped   map[string]string // root -> why it was stopped
	pairs     map[spool.Pair]bool
	outBroken bool
}

type worker struct {
	target rsync.Target
	ch     chan *event.Batch
	inited map[string]bool // roots already fully synced (--init); this worker's goroutine only
}

func run(ctx context.Context, cfg *Config, p *push.Pusher, sp *spool.Spool, stdin io.Reader, stdout, stderr io.Writer) error {
	log := &base.Log{Prog: "rpush", W: stderr}
	p.Warnf = log.Warnf
	tty := base.IsTerminal(stderr)
	st := &state{stopped: map[string]string{}, pairs: map[spool.Pair]bool{}}
	var specs []string
	for _, t := range cfg.Targets {
		specs = append(specs, t.Spec)
	}
	track := status.New(time.Now(), specs)
	writeStatus := func() {
		if cfg.StatusFile == "" {
			return
		}
		d := track.Snapshot(time.Now(), sp.Dir, sp.Count())
		if err := status.WriteFile(cfg.StatusFile, status.Render(cfg.StatusFile, d)); err != nil {
			log.Warnf("%v", err)
		}
	}
	if cfg.StatusFile != "" {
		writeStatus() // at once: monitoring sees rpush has started
		tick := time.NewTicker(cfg.StatusInterval)
		stopTick, tickDone := make(chan struct{}), make(chan struct{})
		// The last write comes after the ticker's, so the file ends with
		// the final figures.
		defer func() { close(stopTick); <-tickDone; tick.Stop(); writeStatus() }()
		go func() {
			defer close(tickDone)
			for {
				select {
				case <-tick.C:
					writeStatus()
				case <-stopTick:
					return
				}
			}
		}()
	}
	out := bufio.NewWriter(stdout)
	var outMu sync.Mutex
	emit := func(r *event.Result) {
		if cfg.Quiet && r.OK {
			return
		}
		outMu.Lock()
		defer outMu.Unlock()
		out.Write(event.AppendResult(nil, r))
		if err := out.Flush(); err != nil {
			st.mu.Lock()
			if !st.outBroken {
				log.Warnf("write results: %v (syncing goes on)", err)
			}
			st.outBroken = true
			st.mu.Unlock()
		}
	}

	// runCtx outlives a signal by the grace period, so that rsyncs in
	// flight may finish; then they are stopped (SIGTERM to their group).
	runCtx, cancelRuns := context.WithCancel(context.Background())
	defer cancelRuns()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(cfg.Grace, cancelRuns)
		context.AfterFunc(runCtx, func() { t.Stop() })
	})
	defer stopGrace()

	spoolIt := func(t rsync.Target, b *event.Batch, r *event.Result, why string, exit int) {
		now := sp.Now()
		e := &spool.Entry{Target: t.Spec, Attempts: r.Attempts, FirstFailure: now, LastFailure: now, LastError: why, Exit: exit, Batch: *b}
		path, err := sp.Put(e)
		st.mu.Lock()
		st.spooled++
		if err != nil {
			st.spoolErrs++
		}
		st.mu.Unlock()
		if err != nil {
			log.Errorf("spool batch %d for %s: %v", b.Seq, t.Spec, err)
			r.Error = why + "; and spooling failed: " + err.Error()
			return
		}
		r.Spooled = path
	}

	handle := func(w *worker, b *event.Batch) {
		r := &event.Result{Seq: b.Seq, Root: b.Root, Target: w.target.Spec}
		pair := spool.Pair{Root: b.Root, Target: w.target.Spec}
		st.mu.Lock()
		newPair := !st.pairs[pair]
		st.pairs[pair] = true
		fatal, stopped := st.fatal, st.stopped[b.Root]
		st.mu.Unlock()
		if newPair {
			if err := sp.RecordPairs([]spool.Pair{pair}); err != nil {
				log.Warnf("record %s → %s for failreplay --full: %v", b.Root, w.target.Spec, err)
			}
		}
		switch {
		case fatal != "":
			r.Error = "not run: " + fatal
		case stopped != "":
			r.Error = "not run: source stopped: " + stopped
		case ctx.Err() != nil:
			r.Error = "not run: rpush is stopping"
		}
		if r.Error != "" {
			spoolIt(w.target, b, r, r.Error, rsync.ExitNotRun)
			r.Exit = rsync.ExitNotRun
			track.Done(w.target.Spec, b.Seq, time.Now(), false, r.Spooled != "", 0, 0, 0, r.Error)
			emit(r)
			return
		}
		if cfg.Init && !w.inited[b.Root] && !b.Full {
			w.inited[b.Root] = true
			full := &event.Batch{Seq: b.Seq, Root: b.Root, Full: true, Sync: []string{}, Delete: []string{}}
			if tty {
				log.Infof("initial full sync of %s to %s…", b.Root, w.target.Spec)
			}
			rep := p.Push(runCtx, w.target, full)
			if tty && rep.OK {
				log.Infof("initial full sync of %s to %s done in %.1fs", b.Root, w.target.Spec, rep.Elapsed.Seconds())
			}
			if !rep.OK {
				log.Warnf("initial full sync of %s to %s: %s (spooled)", b.Root, w.target.Spec, rep.Err)
				fr := &event.Result{Seq: b.Seq, Root: b.Root, Target: w.target.Spec, Exit: rep.Exit, Attempts: rep.Attempts}
				spoolIt(w.target, full, fr, rep.Err, rep.Exit)
			}
		}
		rep := p.Push(runCtx, w.target, b)
		r.OK, r.Exit, r.Paths, r.Bytes, r.Attempts, r.Error = rep.OK, rep.Exit, rep.Paths, rep.Bytes, rep.Attempts, rep.Err
		r.Seconds = rep.Elapsed.Seconds()
		if !rep.OK {
			switch rep.Class {
			case rsync.Dangerous:
				st.mu.Lock()
				st.stopped[b.Root] = rep.Err
				st.mu.Unlock()
				log.Errorf("%s; no more batches for this root are run (they are spooled)", rep.Err)
			case rsync.Config:
				st.mu.Lock()
				st.fatal = rep.Err
				st.mu.Unlock()
				log.Errorf("%s; every further batch is spooled", rep.Err)
			}
			spoolIt(w.target, b, r, rep.Err, rep.Exit)
		}
		track.Done(w.target.Spec, b.Seq, time.Now(), r.OK, r.Spooled != "", r.Paths, r.Bytes, r.Attempts, r.Error)
		emit(r)
	}

	workers := make([]*worker, len(cfg.Targets))
	var wg sync.WaitGroup
	for i, t := range cfg.Targets {
		w := &worker{target: t, ch: make(chan *event.Batch, cfg.Queue), inited: map[string]bool{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range w.ch {
				handle(w, b)
			}
		}()
	}

	// dispatch hands a batch to every target's queue. A full queue (a slow
	// or dead target) never blocks the others: the batch is spooled for
	// that target instead. After shutdown began, everything is spooled.
	var dispMu sync.Mutex
	closed := false
	dispatch := func(b *event.Batch) {
		dispMu.Lock()
		defer dispMu.Unlock()
		for _, w := range workers {
			if !closed {
				track.Queued(w.target.Spec, b.Seq, b.First)
				select {
				case w.ch <- b:
					continue
				default:
				}
			}
			r := &event.Result{Seq: b.Seq, Root: b.Root, Target: w.target.Spec, Exit: rsync.ExitNotRun}
			r.Error = "not run: target queue full (target too slow)"
			if closed {
				r.Error = "not run: rpush is stopping"
			}
			spoolIt(w.target, b, r, r.Error, rsync.ExitNotRun)
			track.Done(w.target.Spec, b.Seq, time.Now(), false, r.Spooled != "", 0, 0, 0, r.Error)
			emit(r)
		}
	}
	shutdown := func() {
		dispMu.Lock()
		if !closed {
			closed = true
			for _, w := range workers {
				close(w.ch)
			}
		}
		dispMu.Unlock()
	}

	readDone := make(chan error, 1)
	go func() { readDone <- read(ctx, cfg, stdin, dispatch, log) }()
	var readErr error
	select {
	case readErr = <-readDone:
	case <-ctx.Done():
		log.Infof("stopping: running rsyncs get %v to finish, queued batches are spooled", cfg.Grace)
	}
	shutdown()
	wg.Wait()

	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case readErr != nil:
		return readErr
	case st.fatal != "" || len(st.stopped) > 0 || st.spoolErrs > 0:
		return base.Exit(exitError)
	case ctx.Err() != nil:
		// Stopped by a signal (systemctl stop): a clean stop, since
		// everything not delivered is in the spool.
		if st.spooled > 0 {
			log.Infof("stopped: %d batch(es) spooled in %s for failreplay", st.spooled, sp.Dir)
		}
		return nil
	case st.spooled > 0:
		return (&base.Error{Code: exitPartial, Err: fmt.Errorf("%d batch(es) spooled in %s", st.spooled, sp.Dir)}).
			WithHint("run failreplay --spool %s once the targets are back", sp.Dir)
	}
	return nil
}

// read decodes stdin: batches as they are, bare events as batches of one.
func read(ctx context.Context, cfg *Config, stdin io.Reader, dispatch func(*event.Batch), log *base.Log) error {
	d := event.NewDecoder(stdin)
	var rec event.Record
	var seq uint64
	for ctx.Err() == nil {
		err := d.Next(&rec)
		if err == io.EOF {
			return nil
		}
		var le *event.LineError
		if errors.As(err, &le) {
			log.Errorf("%v", le)
			if cfg.Strict {
				return base.Exit(exitUsage)
			}
			continue
		}
		if err != nil {
			return base.Errorf(exitError, "read: %v", err)
		}
		switch rec.Kind {
		case event.KindBatch:
			b := rec.Batch
			if b.Root == "" {
				log.Errorf("line %d: batch without root", d.Line())
				continue
			}
			dispatch(&b)
		case event.KindEvent:
			seq++
			if b, ok := push.FromEvent(&rec.Event, seq); ok {
				dispatch(&b)
			}
		default:
			log.Errorf("line %d: a result line is not input for rpush", d.Line())
		}
	}
	return nil
}
