package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/pushflags"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/replay"
	"github.com/inopipe/inopipe/internal/spool"
)

const description = `replay the batches rpush spooled, merging the entries of each (target, root)
   into one rsync run; remove an entry only after its run succeeded.

   */5 * * * *  failreplay --spool /var/spool/inopipe --password-file /etc/inopipe/rsync.pass

   Give the same rsync options as rpush (--rsync-opts, --password-file, --port, ...).
   --full also syncs every (root, target) rpush has served, whole (sersync's crontab).`

// Config is failreplay's own part of the command line.
type Config = replay.Config

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
		&cli.StringFlag{Name: "rules", Usage: "the pipeline's rules for full syncs: a rules record as `JSON` (evfilter --print-rules), or \"none\"; default: the rules rpush last recorded in DIR/rules.json"},
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
			if c.IsSet("rules") {
				if cfg.Rules, err = parseRules(c.String("rules")); err != nil {
					return base.Usagef("--rules: %v", err)
				}
			}
			return run(c.Context, cfg, p, sp, c.App.ErrWriter)
		},
	})
}

// parseRules reads --rules: a rules record ({"rules":{...}}, as evfilter
// --print-rules prints it) or "none".
func parseRules(s string) (*event.Rules, error) {
	if strings.TrimSpace(s) == "none" || strings.TrimSpace(s) == "" {
		return &event.Rules{}, nil
	}
	var rec event.Record
	if err := event.Unmarshal([]byte(strings.TrimSpace(s)), &rec); err != nil {
		return nil, err
	}
	if rec.Kind != event.KindRules {
		return nil, fmt.Errorf("not a rules record (want {\"rules\":{\"exclude\":[...]}})")
	}
	return &rec.Rules, nil
}

func run(ctx context.Context, cfg *Config, p *push.Pusher, sp *spool.Spool, stderr io.Writer) error {
	log := base.NewLog("failreplay", stderr)
	p.Warnf = log.Warnf
	p.OnProgress = pushflags.ProgressLog(log, base.IsTerminal(stderr), time.Now)
	sum, err := replay.Run(ctx, *cfg, p, sp, log)
	switch {
	case errors.Is(err, spool.ErrLocked):
		log.Infof("another failreplay is running on %s; nothing done", sp.Dir)
		return base.Exit(base.ExitLocked)
	case err != nil:
		return base.Errorf(base.ExitError, "%w", err)
	}
	if sum.Others > 0 {
		log.Infof("%d entries for other (root, target) pairs left alone (not in --source and TARGETs)", sum.Others)
	}
	full := ""
	if cfg.Full && sum.FullFailed == 0 {
		full = "; full sync done"
	}
	log.Infof("replayed %d entries in %d rsync runs; %d remain; %d quarantined%s", sum.Replayed, sum.Runs, sum.Remain+sum.FullFailed, sum.Quarantined, full)
	switch {
	case sum.PutErr != nil:
		return base.Errorf(base.ExitError, "a failed full sync could not be spooled either: %w", sum.PutErr)
	case sum.Remain+sum.FullFailed > 0:
		return base.Exit(base.ExitPartial)
	}
	return nil
}
