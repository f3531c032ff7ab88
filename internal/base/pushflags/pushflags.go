// Package pushflags holds the command-line options rpush and failreplay
// share (so that a replay runs exactly as the first attempt did) and turns
// them into a push.Pusher, its targets and the spool. Part of base: with
// it, the only place below cmd/ that knows urfave/cli.
package pushflags

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
)

// Flags are the rsync options rpush and failreplay share, so that a replay
// runs exactly as the first attempt did.
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "spool", Value: spool.DefaultDir(), Usage: "keep undelivered batches in `DIR` (mode 0700)"},
		&cli.StringFlag{Name: "rsync-opts", Usage: "extra rsync options, e.g. '-z --bwlimit=5000' (`STRING` split like a shell would, never run by one)"},
		&cli.StringFlag{Name: "rsync", Value: "rsync", Usage: "the rsync binary (`PATH`)"},
		&cli.StringFlag{Name: "password-file", Usage: "daemon password from `FILE` (mode 0600, owned by you); RSYNC_PASSWORD works too"},
		&cli.IntFlag{Name: "timeout", Value: 60, Usage: "rsync I/O timeout in `SECONDS` (0: none)"},
		&cli.IntFlag{Name: "contimeout", Value: 10, Usage: "daemon connect timeout in `SECONDS` (also ssh's ConnectTimeout)"},
		&cli.IntFlag{Name: "port", Usage: "daemon `PORT` for host::module targets"},
		&cli.StringFlag{Name: "rsh", Aliases: []string{"e"}, Usage: "remote shell `COMMAND` for host:/path targets (BatchMode and timeouts are added)"},
		&cli.BoolFlag{Name: "delete", Value: true, Usage: "carry out deletions on targets (--delete=false: never delete, as sersync's <delete start=\"false\">)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "pass --dry-run to rsync"},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 1, Usage: "split a large batch over `N` concurrent rsync processes per target"},
		&cli.IntFlag{Name: "retries", Value: 3, Usage: "retry transient failures (daemon down, timeouts) `N` times before spooling"},
		&cli.DurationFlag{Name: "backoff", Value: time.Second, Usage: "first retry delay; doubles each time, with jitter"},
		&cli.StringFlag{Name: "log-files", Usage: "append one JSON line per file each rsync run changes to `FILE` (time, target, root, seq, rsync's itemized change, path)"},
		&cli.IntFlag{Name: "max-delete", Usage: "spool instead of running a batch that deletes more than `N` paths (0: no limit)"},
	}
}

// FromFlags builds the Pusher, the targets and the spool from a command
// line.
func FromFlags(c *cli.Context, targetArgs []string) (*push.Pusher, []rsync.Target, *spool.Spool, error) {
	var targets []rsync.Target
	daemon := false
	for _, a := range targetArgs {
		t, err := rsync.ParseTarget(a)
		if err != nil {
			return nil, nil, nil, base.Usagef("%v", err)
		}
		daemon = daemon || t.Kind == rsync.Daemon
		targets = append(targets, t)
	}
	extra, err := rsync.SplitOpts(c.String("rsync-opts"))
	if err != nil {
		return nil, nil, nil, base.Usagef("%v", err)
	}
	if len(targets) > 0 && !daemon {
		for _, f := range []string{"password-file", "port"} {
			if c.IsSet(f) {
				return nil, nil, nil, base.Usagef("--%s applies to rsync daemon targets (host::module), and none is given", f)
			}
		}
	}
	opts := rsync.Options{
		Timeout: c.Int("timeout"), ConTimeout: c.Int("contimeout"), Port: c.Int("port"),
		PasswordFile: c.String("password-file"), Rsh: c.String("rsh"), Extra: extra,
		Delete: c.Bool("delete"), DryRun: c.Bool("dry-run"),
	}
	if opts.PasswordFile != "" {
		if err := rsync.CheckPasswordFile(opts.PasswordFile); err != nil {
			return nil, nil, nil, base.Errorf(1, "%w", err)
		}
	}
	bin := c.String("rsync")
	if _, err := exec.LookPath(bin); err != nil {
		return nil, nil, nil, (&base.Error{Code: 1, Err: fmt.Errorf("rsync binary %q: %w", bin, err)}).
			WithHint("install rsync (apt-get install rsync) or give --rsync PATH")
	}
	if c.Int("jobs") < 1 {
		return nil, nil, nil, base.Usagef("--jobs must be at least 1")
	}
	sp, err := spool.Open(c.String("spool"))
	if err != nil {
		return nil, nil, nil, base.Errorf(1, "%w", err)
	}
	p := &push.Pusher{
		Binary: bin, Opts: opts, Runner: rsync.ExecRunner{},
		Env:     rsync.Env(os.Environ(), os.Getenv("RSYNC_PASSWORD")),
		Retries: c.Int("retries"), Backoff: c.Duration("backoff"),
		Jobs: c.Int("jobs"), SplitMin: 64, MaxDelete: c.Int("max-delete"),
	}
	if name := c.String("log-files"); name != "" {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, nil, base.Errorf(base.ExitError, "--log-files: %w", err)
		}
		// The process keeps it open until it exits.
		p.Opts.ListFiles = true
		p.OnFiles = FileLog(f, time.Now)
	}
	return p, targets, sp, nil
}

// FileLog writes --log-files records to w: one JSON line per changed file,
// each in one Write (O_APPEND keeps concurrent lines whole), names encoded
// as the event stream encodes them (bytes that are not UTF-8 kept).
func FileLog(w io.Writer, now func() time.Time) func(rsync.Target, *event.Batch, []rsync.FileChange) {
	var mu sync.Mutex
	return func(t rsync.Target, b *event.Batch, files []rsync.FileChange) {
		stamp := now().UTC().Format(time.RFC3339Nano)
		mu.Lock()
		defer mu.Unlock()
		var line []byte
		for _, f := range files {
			line = append(line[:0], `{"time":"`...)
			line = append(line, stamp...)
			line = append(line, `","target":`...)
			line = event.AppendString(line, t.Spec)
			line = append(line, `,"root":`...)
			line = event.AppendString(line, b.Root)
			line = append(line, `,"seq":`...)
			line = strconv.AppendUint(line, b.Seq, 10)
			line = append(line, `,"change":`...)
			line = event.AppendString(line, f.Change)
			line = append(line, `,"path":`...)
			line = event.AppendString(line, f.Path)
			line = append(line, "}\n"...)
			w.Write(line)
		}
	}
}

// ProgressLog says how far a full sync has got (files and bytes sent so
// far), at a bounded rate: every second on a terminal, every 10 s in a
// journal or a file; nothing for a sync shorter than that.
func ProgressLog(log *base.Log, tty bool, now func() time.Time) func(rsync.Target, string, int, int64) {
	every := 10 * time.Second
	if tty {
		every = time.Second
	}
	var mu sync.Mutex
	type key struct{ target, root string }
	last := map[key]time.Time{}
	return func(t rsync.Target, root string, files int, bytes int64) {
		k := key{t.Spec, root}
		n := now()
		mu.Lock()
		at, seen := last[k]
		if !seen {
			last[k] = n
			mu.Unlock()
			return
		}
		due := n.Sub(at) >= every
		if due {
			last[k] = n
		}
		mu.Unlock()
		if due {
			log.Infof("full sync of %s to %s: %d files, %.1f MiB sent so far", root, t.Spec, files, float64(bytes)/(1<<20))
		}
	}
}
