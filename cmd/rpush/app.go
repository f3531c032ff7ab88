package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/pushflags"
	"github.com/inopipe/inopipe/internal/dispatch"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/replay"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
	"github.com/inopipe/inopipe/internal/status"
)

const description = `read batches (from evbatch) or events (from inowait/evfilter) on stdin and
   run rsync for each, to every TARGET in parallel; print one JSON result line
   per (batch, target); spool what fails for failreplay.

   inowait -mr --resync /data | evfilter --temp | evbatch 500ms | rpush backup::data /mnt/copy

   TARGET: host::module[/path], user@host::module, rsync://[user@]host[:port]/module,
   [user@]host:/path (ssh), or a local directory. No shell is ever run; paths
   reach rsync NUL-separated on stdin.`

// Config is rpush's own part of the command line.
type Config struct {
	Targets []rsync.Target
	Quiet   bool
	Init    bool
	Strict  bool
	Grace   time.Duration
	Queue   int // batches waiting per target before further ones are spooled

	Instance       string        // --instance: the metrics' instance label
	StopOnRefusal  bool          // --stop-on-refusal
	StatusFile     string        // JSON (or Prometheus text for *.prom) per target
	StatusInterval time.Duration // how often it is rewritten
}

// exitStatus is what each exit code means for rpush (codes: base).
var exitStatus = []base.Status{
	{Code: base.ExitOK, Meaning: "every batch reached every target"},
	{Code: base.ExitError, Meaning: "a source was stopped, rsync is missing, a batch was lost (neither delivered nor spooled), or an I/O error"},
	{Code: base.ExitUsage, Meaning: "bad usage"},
	{Code: base.ExitBadInput, Meaning: "a malformed input line with --strict"},
	{Code: base.ExitPartial, Meaning: "some batches were spooled (run failreplay)"},
}

func newApp() *cli.App {
	flags := append(pushflags.Flags(),
		&cli.BoolFlag{Name: "stop-on-refusal", Usage: "stop (exit 1, after running or spooling what was read) when a target refuses the configuration: wrong password, unknown module, refused option (inopipe-run sets it)"},
		&cli.BoolFlag{Name: "check", Usage: "probe each TARGET once (rsync --list-only, with every option given) and exit: 1 if one refuses the configuration"},
		&cli.BoolFlag{Name: "init", Usage: "run a full sync of each root to each target before its first batch (sersync -r)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print result lines for failures only"},
		&cli.DurationFlag{Name: "grace", Value: 30 * time.Second, Usage: "on SIGTERM, let running rsyncs finish for this `DURATION`, then stop them and spool"},
		&cli.BoolFlag{Name: "strict", Usage: "stop with exit status 3 at the first malformed input line"},
		&cli.StringFlag{Name: "status-file", Usage: "rewrite `FILE` atomically with per-target figures (JSON; Prometheus text if it ends in .prom)"},
		&cli.DurationFlag{Name: "status-interval", Value: 5 * time.Second, Usage: "how often the --status-file is rewritten"},
		&cli.StringFlag{Name: "instance", Usage: "label every metric of the --status-file with instance=`NAME` (inopipe-run: the env file's name)"},
		&cli.IntFlag{Name: "queue", Value: 1024, Usage: "batches waiting per target; when a slow target has `N` waiting, further ones are spooled for it"},
	)
	return base.WithExitStatus(exitStatus, &cli.App{
		Name:            "rpush",
		Usage:           "rsync each batch to one or more targets, spooling failures",
		UsageText:       "rpush [options] TARGET... < batches > results",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags:           flags,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return base.Usagef("no TARGET given")
			}
			p, targets, sp, err := pushflags.FromFlags(c, c.Args().Slice())
			if err != nil {
				return err
			}
			if c.Bool("check") {
				return check(c.Context, p, targets, c.App.ErrWriter)
			}
			cfg := &Config{Targets: targets, Quiet: c.Bool("quiet"), Init: c.Bool("init"), Strict: c.Bool("strict"), Grace: c.Duration("grace"), Queue: c.Int("queue"),
				StatusFile: c.String("status-file"), Instance: c.String("instance"), StopOnRefusal: c.Bool("stop-on-refusal"), StatusInterval: c.Duration("status-interval")}
			if cfg.StatusInterval <= 0 {
				return base.Usagef("--status-interval must be positive")
			}
			if cfg.Queue < 1 {
				return base.Usagef("--queue must be at least 1")
			}
			signal.Ignore(syscall.SIGPIPE)
			return run(c.Context, cfg, p, sp, c.App.Reader, c.App.Writer, c.App.ErrWriter)
		},
	})
}

func run(ctx context.Context, cfg *Config, p *push.Pusher, sp *spool.Spool, stdin io.Reader, stdout, stderr io.Writer) error {
	log := base.NewLog("rpush", stderr)
	p.Warnf = log.Warnf
	p.OnProgress = pushflags.ProgressLog(log, base.IsTerminal(stderr), time.Now)
	var specs []string
	for _, t := range cfg.Targets {
		specs = append(specs, t.Spec)
	}
	track := status.New(time.Now(), specs)
	track.Instance = cfg.Instance
	writeStatus := func() {
		if cfg.StatusFile == "" {
			return
		}
		c := sp.Census() // one read of the spool per snapshot
		d := track.Snapshot(time.Now(), sp.Dir, c.Entries, c.Quarantined, c.Waiting)
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
	outBroken := false // under outMu
	emit := func(r *event.Result) {
		if cfg.Quiet && r.OK {
			return
		}
		outMu.Lock()
		defer outMu.Unlock()
		out.Write(event.AppendResult(nil, r))
		if err := out.Flush(); err != nil && !outBroken {
			outBroken = true
			log.Warnf("write results: %v (syncing goes on)", err)
		}
	}
	// Reading stops at EOF, at a signal, or (--stop-on-refusal) when a
	// target refuses the configuration.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	refused := ""
	var refusedMu sync.Mutex
	var onRefusal func(rsync.Target, string)
	if cfg.StopOnRefusal {
		onRefusal = func(t rsync.Target, why string) {
			refusedMu.Lock()
			refused = t.Spec + ": " + why
			refusedMu.Unlock()
			log.Errorf("%s refuses the configuration (%s); stopping: what was read is run or spooled", t.Spec, why)
			stopReading()
		}
	}
	eng := dispatch.New(dispatch.Config{
		OnRefusal: onRefusal, Targets: cfg.Targets, Queue: cfg.Queue, Init: cfg.Init, Grace: cfg.Grace,
		Progress: base.IsTerminal(stderr),
		// A target that comes back gets what the spool holds for it now,
		// not at the next failreplay timer (which stays as the backstop).
		CatchUp: func(ctx context.Context, t rsync.Target) (int, error) {
			sum, err := replay.Run(ctx, replay.Config{Target: t.Spec}, p, sp, log)
			return sum.Remain + sum.FullFailed, err
		},
		Behind: func(t rsync.Target) bool { n, _ := sp.Waiting(t.Spec); return n > 0 },
	}, p, sp, log, track, emit)
	stopEng := context.AfterFunc(ctx, func() {
		log.Infof("stopping: batches already read are run or spooled; running rsyncs get %v to finish", cfg.Grace)
		eng.Stop()
	})
	defer stopEng()

	if f, ok := stdin.(*os.File); ok && base.IsTerminal(f) {
		log.Infof("reading batches (or events) as JSON lines from the terminal; end with Ctrl-D (rpush is meant to read evbatch's output)")
	}
	// The reader ends at EOF, or once ctx is done, after handing over
	// every line it has read (base.StopReader).
	in, closeIn := base.StopReader(readCtx, stdin)
	readErr := read(cfg, in, eng.Dispatch, log)
	closeIn()
	sum := eng.Close()

	for _, o := range sum.Owed {
		log.Errorf("%v could be neither delivered nor spooled", o)
	}
	refusedMu.Lock()
	why := refused
	refusedMu.Unlock()
	switch {
	case readErr != nil:
		return readErr
	case why != "":
		return (&base.Error{Code: base.ExitError, Err: fmt.Errorf("stopped: %s", why)}).
			WithHint("fix the target's configuration (password file, module name, refused options), then restart: inopipe-run --check tells")
	case len(sum.Owed) > 0:
		return (&base.Error{Code: base.ExitError, Err: fmt.Errorf("%d (target, root) pair(s) lost batches that are not in the spool %s", len(sum.Owed), sp.Dir)}).
			WithHint("free the spool's filesystem, then restart the pipeline with inowait --resync (inopipe-run does) so that a full sync covers them")
	case len(sum.Stopped) > 0:
		return base.Exit(base.ExitError)
	case ctx.Err() != nil:
		// Stopped by a signal (systemctl stop): a clean stop, since
		// everything not delivered is in the spool.
		if sum.Spooled > 0 {
			log.Infof("stopped: %d batch(es) spooled in %s for failreplay", sum.Spooled, sp.Dir)
		}
		return nil
	case sum.Spooled > 0:
		return (&base.Error{Code: base.ExitPartial, Err: fmt.Errorf("%d batch(es) spooled in %s", sum.Spooled, sp.Dir)}).
			WithHint("run failreplay --spool %s once the targets are back", sp.Dir)
	}
	return nil
}

// check is --check: one probe per target. Lasting refusals (auth, module,
// options, no rsync) fail; a target that is only down is a warning, since
// its batches will be retried and spooled.
func check(ctx context.Context, p *push.Pusher, targets []rsync.Target, stderr io.Writer) error {
	log := base.NewLog("rpush", stderr)
	bad := 0
	for _, t := range targets {
		r := p.Probe(ctx, t)
		switch {
		case r.OK:
			log.Infof("%s: ok", t.Spec)
		case r.Class == rsync.Retry:
			log.Warnf("%s: unreachable now (%s); its batches will be retried, then spooled", t.Spec, r.Err)
		default:
			bad++
			log.Errorf("%s: %s", t.Spec, r.Err)
		}
	}
	if bad > 0 {
		return base.Exit(base.ExitError)
	}
	return nil
}

// read decodes stdin: batches as they are, bare events as batches of one.
func read(cfg *Config, stdin io.Reader, dispatch func(*event.Batch), log *base.Log) error {
	d := event.NewDecoder(stdin)
	var seq uint64
	err := d.Each(cfg.Strict, nil, func(le *event.LineError) { log.Errorf("%v", le) }, func(rec *event.Record) error {
		switch rec.Kind {
		case event.KindBatch:
			b := rec.Batch
			if b.Root == "" {
				return &event.LineError{Line: d.Line(), Err: errors.New("batch without root")}
			}
			dispatch(&b)
		case event.KindEvent:
			seq++
			if b, ok := push.FromEvent(&rec.Event, seq); ok {
				dispatch(&b)
			}
		default:
			return &event.LineError{Line: d.Line(), Err: errors.New("a result line is not input for rpush")}
		}
		return nil
	})
	return base.ReadError(err)
}
