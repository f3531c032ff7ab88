package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/batch"
	"github.com/inopipe/inopipe/internal/event"
)

const description = `read events (JSON lines) on stdin, write batches for rpush on stdout

   inowait -mr /data | evfilter --temp | evbatch 500ms | rpush host::mod

   A batch for a root is written when no event has arrived for WINDOW (a
   debounce), when its first event is --max-delay old, or when --max-paths
   distinct paths are pending. Each path appears once with its net effect
   (see evbatch(1) for the table). End of input or SIGTERM writes what is
   pending, then exits.`

// Config is evbatch's command line.
type Config struct {
	Batch  batch.Config
	Strict bool
}

// exitStatus is what each exit code means for evbatch (codes: base).
var exitStatus = []base.Status{
	{Code: base.ExitOK, Meaning: "end of input or a signal; every batch was written"},
	{Code: base.ExitError, Meaning: "an I/O error (standard output closed): some batches were not written"},
	{Code: base.ExitUsage, Meaning: "bad usage"},
	{Code: base.ExitBadInput, Meaning: "a malformed input line with --strict"},
}

func newApp() *cli.App {
	return base.WithExitStatus(exitStatus, &cli.App{
		Name:            "evbatch",
		Usage:           "debounce and coalesce events into batches",
		UsageText:       "evbatch [options] WINDOW < events > batches",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "max-delay", DefaultText: "2×WINDOW, at least 400ms", Usage: "write a batch at the latest this `DURATION` after its first event, even if events keep coming (0: never)"},
			&cli.IntFlag{Name: "max-paths", Value: batch.Defaults.MaxPaths, Usage: "write a batch as soon as `N` distinct paths are pending (0: no limit)"},
			&cli.IntFlag{Name: "rollup", Value: batch.Defaults.Rollup, Usage: "more than `N` pending entries in one directory become one recursive sync of it (0: never)"},
			&cli.IntFlag{Name: "full-threshold", Value: batch.Defaults.FullThreshold, Usage: "more than `N` pending paths in one root make the batch a full resync (0: never)"},
			&cli.BoolFlag{Name: "strict", Usage: "stop with exit status 3 at the first malformed input line"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := parseConfig(c)
			if err != nil {
				return err
			}
			// A closed stdout must be an error we can report (with what is
			// lost), not a silent death by SIGPIPE.
			signal.Ignore(syscall.SIGPIPE)
			return run(c.Context, cfg, c.App.Reader, c.App.Writer, c.App.ErrWriter)
		},
	})
}

// parseConfig turns the command line into a Config.
func parseConfig(c *cli.Context) (*Config, error) {
	if c.NArg() != 1 {
		return nil, base.Usagef("need exactly one WINDOW argument, e.g. 500ms")
	}
	win, err := time.ParseDuration(c.Args().First())
	if err != nil || win <= 0 {
		return nil, base.Usagef("WINDOW %q: want a positive duration such as 500ms or 2s", c.Args().First())
	}
	cfg := &Config{Strict: c.Bool("strict"), Batch: batch.Config{
		Window: win, MaxDelay: batch.DefaultMaxDelay(win), MaxPaths: c.Int("max-paths"),
		Rollup: c.Int("rollup"), FullThreshold: c.Int("full-threshold"),
	}}
	if c.IsSet("max-delay") {
		cfg.Batch.MaxDelay = c.Duration("max-delay")
	}
	if cfg.Batch.MaxDelay > 0 && cfg.Batch.MaxDelay < win {
		return nil, base.Usagef("--max-delay %v is shorter than WINDOW %v", cfg.Batch.MaxDelay, win)
	}
	return cfg, nil
}

// run reads events until EOF or ctx is done, writing batches as they fall
// due. The reader goroutine hands over events in slices to keep the channel
// cost per event low. On SIGTERM the reader stops at once but hands over
// every event it has read (base.StopReader), and everything pending is
// written before run returns.
func run(ctx context.Context, cfg *Config, stdin io.Reader, stdout, stderr io.Writer) error {
	log := base.NewLog("evbatch", stderr)
	co := batch.New(cfg.Batch)
	co.Warn = log.Warnf
	src, closeIn := base.StopReader(ctx, stdin)
	defer closeIn()
	in := make(chan []event.Event)
	loopDone := make(chan struct{})
	readErr := make(chan error, 1)
	// rules are the latest "rules" record read (evfilter's first line):
	// stored before any event that follows it is handed to the loop.
	var rules atomic.Pointer[event.Rules]
	go func() {
		defer close(in)
		readErr <- read(loopDone, cfg, src, in, &rules, log)
	}()
	out := bufio.NewWriter(stdout)
	var buf []byte
	err := batch.Loop(co, in, func(b *event.Batch) error {
		b.Rules = rules.Load()
		buf = event.AppendBatch(buf[:0], b)
		out.Write(buf)
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write batch %d: %w", b.Seq, err)
		}
		return nil
	})
	close(loopDone)
	if err != nil {
		return base.Errorf(base.ExitError, "%w", err).
			WithHint("restart the pipeline with inowait --resync so that a full sync covers them")
	}
	return <-readErr
}

// read decodes stdin into in until EOF (a stop is an EOF, see
// base.StopReader); it gives up only when the loop has ended (loopDone).
func read(loopDone <-chan struct{}, cfg *Config, stdin io.Reader, in chan<- []event.Event, rules *atomic.Pointer[event.Rules], log *base.Log) error {
	d := event.NewDecoder(stdin)
	// A chunk is what one read of the pipe brought (at most maxChunk
	// events). Two alternate: the loop is done with a slice once it
	// receives the next one (batch.Loop), so the one sent before last is
	// free again. A new slice per send was most of evbatch's garbage: a
	// pipeline at work sends a few events per read.
	const maxChunk = 256
	var bufs [2][]event.Event
	cur := 0
	chunk := bufs[cur][:0]
	errLoopDone := errors.New("loop done")
	// send hands the events read so far to the loop; before a read that may
	// block, and when a chunk is full.
	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		select {
		case in <- chunk:
			bufs[cur] = chunk
			cur = 1 - cur
			chunk = bufs[cur][:0]
			return nil
		case <-loopDone:
			return errLoopDone
		}
	}
	err := d.Each(cfg.Strict, send, func(le *event.LineError) { log.Errorf("%v", le) }, func(rec *event.Record) error {
		if rec.Kind == event.KindRules {
			r := rec.Rules
			rules.Store(&r)
			return nil
		}
		if rec.Kind != event.KindEvent {
			return &event.LineError{Line: d.Line(), Err: event.ErrNotEvent}
		}
		chunk = append(chunk, rec.Event)
		if len(chunk) == maxChunk {
			return send()
		}
		return nil
	})
	if err == errLoopDone {
		return nil
	}
	send()
	return base.ReadError(err)
}
