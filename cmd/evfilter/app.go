package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/filter"
)

const description = `read inowait events (JSON lines) on stdin, write the ones that pass on stdout

   inowait -mr /data | evfilter --temp -x '^cache/' | evbatch 500ms | rpush host::mod

   Patterns are Go RE2 regular expressions matched against the path relative
   to the watched root (a directory with a trailing "/"); an excluded
   directory excludes everything under it. Control records (Q_OVERFLOW,
   RESYNC, a root's DELETE_SELF/MOVE_SELF/UNMOUNT) always pass. Lines pass
   through unchanged, unknown fields included.

   The first line out is a "rules" record: the same rules as rsync
   patterns, which evbatch puts on every batch so that rpush's full syncs
   and replays apply them too. A rule rsync cannot express exactly is
   named on stderr at start: live events honour it, full syncs do not.`

// Config is evfilter's command line.
type Config struct {
	Set    filter.Set
	Rules  *event.Rules // the rules record written first (nil: none); see ownRules
	Invert bool
	Stats  bool
	Strict bool
}

// exitStatus is what each exit code means for evfilter (codes: base).
var exitStatus = []base.Status{
	{Code: base.ExitOK, Meaning: "end of input or a signal; every line was handled"},
	{Code: base.ExitError, Meaning: "an I/O error"},
	{Code: base.ExitUsage, Meaning: "bad usage, a bad pattern or an unreadable pattern file"},
	{Code: base.ExitBadInput, Meaning: "a malformed input line with --strict"},
}

func newApp() *cli.App {
	return base.WithExitStatus(exitStatus, &cli.App{
		Name:                   "evfilter",
		Usage:                  "filter an inowait event stream",
		UsageText:              "evfilter [options] < events > events",
		Description:            description,
		Version:                base.Version,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "exclude", Aliases: []string{"x"}, Usage: "drop paths matching `REGEX` (repeatable; all apply)"},
			&cli.StringSliceFlag{Name: "excludei", Aliases: []string{"X"}, Usage: "like --exclude, case-insensitive"},
			&cli.StringSliceFlag{Name: "include", Aliases: []string{"i"}, Usage: "pass only paths matching `REGEX` (repeatable; any may match)"},
			&cli.StringSliceFlag{Name: "includei", Usage: "like --include, case-insensitive"},
			&cli.StringSliceFlag{Name: "exclude-from", Usage: "read exclude patterns from `FILE` (one per line, # comments)"},
			&cli.StringSliceFlag{Name: "include-from", Usage: "read include patterns from `FILE`"},
			&cli.BoolFlag{Name: "match-full", Usage: "match patterns against the absolute path, not the path relative to root"},
			&cli.StringSliceFlag{Name: "event", Aliases: []string{"e"}, Usage: "pass only these event types (`LIST`, inotifywait names, case-insensitive)"},
			&cli.BoolFlag{Name: "temp", Usage: "drop editor and tool temp files (vim swap, name~, sed and rsync temp files, lock files); see evfilter(1)"},
			&cli.BoolFlag{Name: "invert", Aliases: []string{"v"}, Usage: "pass what would be dropped and drop what would pass (control records always pass)"},
			&cli.BoolFlag{Name: "stats", Usage: "print counts in and out, per reason, on stderr at exit"},
			&cli.BoolFlag{Name: "strict", Usage: "stop with exit status 3 at the first malformed input line"},
			&cli.BoolFlag{Name: "print-rules", Usage: "print the rules record (the rules as rsync patterns) and exit, reading nothing; nothing is printed without path rules"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return base.Usagef("unexpected argument %q (evfilter reads stdin)", c.Args().First())
			}
			cfg, err := configFrom(c)
			if err != nil {
				return err
			}
			if cfg.Rules, err = ownRules(cfg, base.NewLog("evfilter", c.App.ErrWriter)); err != nil {
				return err
			}
			if c.Bool("print-rules") {
				if cfg.Rules != nil {
					_, err = c.App.Writer.Write(event.AppendRules(nil, cfg.Rules))
				}
				return err
			}
			return run(c.Context, cfg, c.App.Reader, c.App.Writer, c.App.ErrWriter)
		},
	})
}

func configFrom(c *cli.Context) (*Config, error) {
	cfg := &Config{Invert: c.Bool("invert"), Stats: c.Bool("stats"), Strict: c.Bool("strict")}
	s := &cfg.Set
	s.Full, s.Temp = c.Bool("match-full"), c.Bool("temp")
	for _, spec := range []struct {
		flag  string
		icase bool
		dst   *[]*regexp.Regexp
	}{{"exclude", false, &s.Exclude}, {"excludei", true, &s.Exclude}, {"include", false, &s.Include}, {"includei", true, &s.Include}} {
		if err := filter.Compile(spec.dst, c.StringSlice(spec.flag), spec.icase, "--"+spec.flag); err != nil {
			return nil, base.Usagef("%v", err)
		}
	}
	for _, f := range c.StringSlice("exclude-from") {
		ps, err := filter.ReadPatterns(f)
		if err == nil {
			err = filter.Compile(&s.Exclude, ps, false, f)
		}
		if err != nil {
			return nil, base.Usagef("--exclude-from %s: %v", f, err)
		}
	}
	for _, f := range c.StringSlice("include-from") {
		ps, err := filter.ReadPatterns(f)
		if err == nil {
			err = filter.Compile(&s.Include, ps, false, f)
		}
		if err != nil {
			return nil, base.Usagef("--include-from %s: %v", f, err)
		}
	}
	for _, list := range c.StringSlice("event") {
		op, err := event.ParseOps(list)
		if err != nil {
			return nil, base.Usagef("--event: %v", err)
		}
		s.Events |= op
	}
	return cfg, nil
}

// ownRules are the rules record evfilter writes first (nil when it has
// no path rule). Each rule rsync cannot express is named on stderr: the
// operator must know that full syncs will not honour it.
func ownRules(cfg *Config, log *base.Log) (*event.Rules, error) {
	s := &cfg.Set
	if len(s.Exclude) == 0 && len(s.Include) == 0 && !s.Temp {
		return nil, nil
	}
	if cfg.Invert {
		log.Warnf("--invert: full syncs (rpush, failreplay) cannot apply inverted rules; they will sync every path")
		return nil, nil
	}
	r, errs := s.Rules()
	for _, err := range errs {
		log.Warnf("%v: live events honour this rule, full syncs cannot (rpush, failreplay); split it into simpler rules (evfilter(1), RULES AND FULL SYNCS)", err)
	}
	// Rules evbatch could not read would leave full syncs without them:
	// they would send what is excluded and delete the target's excluded
	// files. Refuse at start instead.
	if err := r.Check(); err != nil {
		return nil, base.Usagef("the rules as rsync patterns: %v; use fewer or simpler patterns", err)
	}
	return &r, nil
}

// mergeRules joins an upstream evfilter's rules with ours: excludes add
// up; includes of two stages cannot be combined into rsync rules (rsync
// takes the first that matches), so ours win, with a warning.
func mergeRules(up, own *event.Rules, log *base.Log) *event.Rules {
	if own == nil {
		return up
	}
	m := &event.Rules{Exclude: append(slices.Clip(up.Exclude), own.Exclude...), Include: own.Include}
	switch {
	case own.Include == nil:
		m.Include = up.Include
	case up.Include != nil:
		log.Warnf("includes of two evfilter stages: full syncs apply only the last stage's")
	}
	return m
}

// run filters stdin to stdout until EOF. Lines are copied unchanged, and
// flushed whenever no more input is waiting, so latency stays low.
func run(ctx context.Context, cfg *Config, stdin io.Reader, stdout, stderr io.Writer) error {
	log := base.NewLog("evfilter", stderr)
	// On SIGTERM evfilter stops reading but writes every line it has read
	// (base.StopReader), as every stage does.
	src, closeIn := base.StopReader(ctx, stdin)
	defer closeIn()
	in := event.NewDecoder(src)
	out := bufio.NewWriterSize(stdout, 64*1024)
	stats := map[string]int{}
	var nin, nout, nbad int
	defer func() {
		if cfg.Stats {
			keys := make([]string, 0, len(stats))
			for k := range stats {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			msg := fmt.Sprintf("in %d, out %d, malformed %d", nin, nout, nbad)
			for _, k := range keys {
				msg += fmt.Sprintf(", %s %d", k, stats[k])
			}
			log.Infof("%s", msg)
		}
	}()
	in.SkipTime(true) // lines pass through unchanged
	flush := func() error {
		if err := out.Flush(); err != nil {
			return base.Errorf(base.ExitError, "write: %w", err)
		}
		return nil
	}
	bad := func(le *event.LineError) {
		nin++
		nbad++
		log.Errorf("%v", le)
	}
	own := cfg.Rules
	if own != nil {
		out.Write(event.AppendRules(nil, own))
	}
	err := in.Each(cfg.Strict, flush, bad, func(rec *event.Record) error {
		if rec.Kind == event.KindRules {
			// An evfilter upstream: its rules and ours both hold.
			merged := mergeRules(&rec.Rules, own, log)
			if err := merged.Check(); err != nil {
				out.Flush()
				return base.Errorf(base.ExitBadInput, "line %d: the rules joined with the upstream evfilter's: %v", in.Line(), err)
			}
			out.Write(event.AppendRules(nil, merged))
			return nil
		}
		if rec.Kind != event.KindEvent {
			return &event.LineError{Line: in.Line(), Err: event.ErrNotEvent}
		}
		nin++
		keep, reason := cfg.Set.Decide(&rec.Event)
		if cfg.Invert && reason != filter.ReasonControl {
			keep = !keep
		}
		stats[reason]++
		if !keep {
			return nil
		}
		nout++
		out.Write(in.Raw())
		if err := out.WriteByte('\n'); err != nil {
			return base.Errorf(base.ExitError, "write: %w", err)
		}
		return nil
	})
	if err != nil {
		out.Flush() // what was kept before a --strict stop
		return base.ReadError(err)
	}
	if err := out.Flush(); err != nil {
		return base.Errorf(base.ExitError, "write: %w", err)
	}
	return nil
}
