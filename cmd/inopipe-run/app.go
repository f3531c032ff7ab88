package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/runconfig"
)

const description = `run one inopipe pipeline under supervision, configured by an env file:

   inowait -mr --resync SOURCE | evfilter | evbatch WINDOW | rpush TARGETS...

   Every stage is a child process, watched: when one exits, the others are
   stopped and inopipe-run exits 1, so that systemd (Restart=on-failure)
   restarts the pipeline, which begins with a full resync. SIGINT, SIGTERM
   or SIGHUP stop it cleanly: inowait first, the other stages drain, rpush
   runs or spools what it has read; exit 0. A second signal stops every
   stage at once.

   --replay and --full run failreplay for the config's SOURCE and TARGETS
   with its options (for failreplay@NAME.timer and failreplay-full@NAME.timer).
   --check reads the config and probes each target, and starts nothing.

   The env file is data, never a script: see inopipe-run(8).`

// exitStatus is what each exit code means for inopipe-run (codes: base).
var exitStatus = []base.Status{
	{Code: base.ExitOK, Meaning: "stopped by a signal, every stage ended cleanly (--check: config and targets are fine)"},
	{Code: base.ExitError, Meaning: "a stage died, a target refused the configuration, or a stage did not stop in time"},
	{Code: base.ExitUsage, Meaning: "bad usage or a bad env file (file:line on stderr)"},
	{Code: base.ExitPartial, Meaning: "--replay/--full: entries remain in the spool"},
	{Code: base.ExitLocked, Meaning: "--replay/--full: another failreplay holds the spool lock"},
}

// Mode is what inopipe-run does with the config.
type Mode int

// Modes.
const (
	ModeRun    Mode = iota // supervise the pipeline
	ModeReplay             // failreplay of the spool
	ModeFull               // failreplay --full of SOURCE to every target
	ModeCheck              // parse, probe, start nothing
	ModeStatus             // print the status file for a person
)

func newApp() *cli.App {
	return base.WithExitStatus(exitStatus, &cli.App{
		Name:            "inopipe-run",
		Usage:           "run one supervised inopipe pipeline from /etc/inopipe/NAME.env",
		UsageText:       "inopipe-run [--replay|--full|--check|--status] /etc/inopipe/NAME.env",
		Description:     description,
		Version:         base.Version,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "replay", Usage: "replay the spool with failreplay, for this config's SOURCE and TARGETS"},
			&cli.BoolFlag{Name: "full", Usage: "replay, then a full sync of SOURCE to every target of the config (sersync's crontab)"},
			&cli.BoolFlag{Name: "check", Usage: "read the config and probe every target; start nothing"},
			&cli.BoolFlag{Name: "status", Usage: "print the pipeline's STATUS_FILE for a person: per target, what was delivered, what waits, the lag, the last error"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return base.Usagef("want one env file, e.g. /etc/inopipe/www.env")
			}
			mode := ModeRun
			n := 0
			for _, m := range []struct {
				flag string
				mode Mode
			}{{"replay", ModeReplay}, {"full", ModeFull}, {"check", ModeCheck}, {"status", ModeStatus}} {
				if c.Bool(m.flag) {
					mode = m.mode
					n++
				}
			}
			if n > 1 {
				return base.Usagef("--replay, --full, --check and --status exclude each other")
			}
			cfg, err := load(c.Args().First())
			if err != nil {
				return err
			}
			if mode == ModeStatus {
				return showStatus(cfg, time.Now(), c.App.Writer)
			}
			return run(c.Context, mode, cfg, c.App.ErrWriter)
		},
	})
}

// load reads and checks the env file.
func load(file string) (*runconfig.Config, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, base.Errorf(base.ExitUsage, "%v", err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, base.Errorf(base.ExitUsage, "%v", err)
	}
	cfg, err := runconfig.Parse(abs, data)
	if err != nil {
		return nil, base.Errorf(base.ExitUsage, "%w", err)
	}
	return cfg, nil
}

func run(ctx context.Context, mode Mode, cfg *runconfig.Config, stderr io.Writer) error {
	log := base.NewLog("inopipe-run", stderr)
	tools := []string{"inowait", "evfilter", "evbatch", "rpush"}
	if mode != ModeRun {
		tools = []string{"failreplay", "evfilter"}
	}
	if mode == ModeCheck {
		tools = []string{"rsync"}
	}
	paths := map[string]string{}
	for _, t := range tools {
		p, err := lookTool(cfg, t)
		if err != nil {
			return err
		}
		paths[t] = p
	}
	if mode != ModeCheck {
		if err := claimSpool(cfg); err != nil {
			return err
		}
	}
	switch mode {
	case ModeCheck:
		return check(ctx, cfg, log)
	case ModeReplay, ModeFull:
		rules, err := printRules(ctx, cfg, paths["evfilter"])
		if err != nil {
			return err
		}
		return replay(ctx, cfg, paths["failreplay"], rules, mode == ModeFull, stderr)
	}
	if err := probeAll(ctx, cfg, log); err != nil {
		return err
	}
	return supervise(ctx, cfg, paths, log)
}

// lookTool finds a stage: in BIN when the config sets it, else in PATH.
func lookTool(cfg *runconfig.Config, name string) (string, error) {
	if name == "rsync" {
		return name, nil
	}
	if cfg.Bin != "" {
		p := filepath.Join(cfg.Bin, name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", base.Errorf(base.ExitError, "%s: not an executable in BIN=%s", name, cfg.Bin)
		}
		return p, nil
	}
	p, err := lookPath(name)
	if err != nil {
		return "", (&base.Error{Code: base.ExitError, Err: fmt.Errorf("%s not found in PATH", name)}).
			WithHint("make install, or set BIN= in %s", cfg.File)
	}
	return p, nil
}

// claimSpool refuses a spool another config already uses: replays and
// full syncs follow the config, and two configs in one spool would replay
// each other's batches. The owner is written to SPOOL/.owner the first
// time.
func claimSpool(cfg *runconfig.Config) error {
	if cfg.Spool == "" {
		return nil // rpush's default spool: one per user; shared by design
	}
	if err := os.MkdirAll(cfg.Spool, 0o700); err != nil {
		return base.Errorf(base.ExitError, "spool %s: %w", cfg.Spool, err)
	}
	owner := filepath.Join(cfg.Spool, ".owner")
	b, err := os.ReadFile(owner)
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(b)); got != cfg.File {
			return (&base.Error{Code: base.ExitUsage, Err: fmt.Errorf("SPOOL=%s belongs to %s, not %s", cfg.Spool, got, cfg.File)}).
				WithHint("give each config its own SPOOL (or, if %s was renamed, remove %s)", got, owner)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(owner, []byte(cfg.File+"\n"), 0o600); err != nil {
			return base.Errorf(base.ExitError, "spool %s: %w", cfg.Spool, err)
		}
		return nil
	}
	return base.Errorf(base.ExitError, "spool %s: %w", cfg.Spool, err)
}
