package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/filter"
	"github.com/inopipe/inopipe/internal/inotify"
)

// Exit codes, as inotifywait's.
const (
	exitOK      = 0 // an event was received (or -m ended cleanly)
	exitError   = 1 // error, usage error, or a watched root went away
	exitTimeout = 2 // -t passed without an event
)

// daemonEnv marks the background copy started by -d.
const daemonEnv = "INOWAIT_DAEMON_CHILD"

const usageText = `watch files and directory trees with inotify; print one JSON line per event

   inowait -mr /data | evfilter --temp | evbatch 500ms | rpush backup::data

   Without --format or -c, each event is a JSON object (see inowait(1), OUTPUT).
   With --format, --csv or --text the output is inotifywait's, byte for byte.`

// Config is everything inowait needs, read from the command line.
type Config struct {
	Paths         []string
	Excludes      []string // @path arguments
	Monitor       bool
	Daemon        bool
	Recursive     bool
	NoDereference bool
	Quiet         int
	Syslog        bool
	Outfile       string
	Timeout       time.Duration
	Events        event.Op
	Exclude       []*regexp.Regexp
	Include       []*regexp.Regexp
	Format        string
	FormatSet     bool // --format given, even empty (inotifywait then prints an empty line per event)
	Text          bool
	CSV           bool
	NoNewline     bool
	Timefmt       string
	Resync        bool
	CreateOnly    bool // synthetic CREATE only for files of new directories (JSON without -e)
}

// exitStatus is what each exit code means for inowait (codes: base).
var exitStatus = []base.Status{
	{Code: exitOK, Meaning: "an event was received (-m: stopped by a signal)"},
	{Code: exitError, Meaning: "an error, bad usage, or a watched root was deleted, moved or unmounted"},
	{Code: exitTimeout, Meaning: "--timeout passed without an event"},
}

func newApp() *cli.App {
	return base.WithExitStatus(exitStatus, &cli.App{
		Name:                   "inowait",
		Usage:                  "watch files and directory trees, print events as JSON lines",
		UsageText:              "inowait [options] FILE|DIR|@EXCLUDE...",
		Description:            usageText,
		Version:                base.Version,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		// -e, --exclude and --include values are taken whole: inowait
		// splits event lists itself, and a regex may hold a comma.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "monitor", Aliases: []string{"m"}, Usage: "keep listening for events; without it inowait exits after the first event"},
			&cli.BoolFlag{Name: "daemon", Aliases: []string{"d"}, Usage: "like --monitor, but run in the background writing to --outfile; implies --syslog"},
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "watch directories recursively, including directories created later"},
			&cli.BoolFlag{Name: "no-dereference", Aliases: []string{"P"}, Usage: "do not follow a symlink given as a path"},
			&cli.StringFlag{Name: "fromfile", Usage: "read paths to watch (and @path exclusions) from `FILE`, one per line; - for stdin"},
			&cli.StringFlag{Name: "outfile", Aliases: []string{"o"}, Usage: "write events to `FILE` instead of stdout"},
			&cli.BoolFlag{Name: "syslog", Aliases: []string{"s"}, Usage: "send errors to syslog instead of stderr"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print less (only events); -qq prints nothing, not even events"},
			&cli.StringSliceFlag{Name: "event", Aliases: []string{"e"}, Usage: "listen only for `EVENT`s (repeatable, comma lists, case-insensitive)"},
			&cli.IntFlag{Name: "timeout", Aliases: []string{"t"}, Usage: "exit with status 2 after `SECONDS` without an event (0: never)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "ignore events on paths matching `REGEX` (Go RE2 syntax; repeatable, all apply); matching directories are not watched"},
			&cli.StringSliceFlag{Name: "excludei", Usage: "like --exclude, case-insensitive"},
			&cli.StringSliceFlag{Name: "include", Usage: "report only events on paths matching `REGEX` (repeatable); recursion is not affected"},
			&cli.StringSliceFlag{Name: "includei", Usage: "like --include, case-insensitive"},
			&cli.StringFlag{Name: "format", Usage: "print inotifywait text with this printf-like `FMT` (%w %f %e %Xe %T %c %0 %n %%) instead of JSON"},
			&cli.BoolFlag{Name: "text", Usage: "print inotifywait's default text line (\"%w %,e %f\") instead of JSON"},
			&cli.BoolFlag{Name: "csv", Aliases: []string{"c"}, Usage: "print inotifywait's CSV lines instead of JSON"},
			&cli.BoolFlag{Name: "no-newline", Usage: "do not print a newline after each --format line"},
			&cli.StringFlag{Name: "timefmt", Usage: "strftime(3) `FMT` for %T in --format"},
			&cli.BoolFlag{Name: "resync", Usage: "emit a RESYNC record per root once watches are in place (for an initial full sync)"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := configFrom(c, quietLevel(c))
			if err != nil {
				return err
			}
			if cfg.Daemon && os.Getenv(daemonEnv) == "" {
				return daemonize(c)
			}
			return run(c.Context, cfg, c.App.Writer, c.App.ErrWriter)
		},
	})
}

func configFrom(c *cli.Context, quiet int) (*Config, error) {
	cfg := &Config{
		Monitor:       c.Bool("monitor") || c.Bool("daemon"),
		Daemon:        c.Bool("daemon"),
		Recursive:     c.Bool("recursive"),
		NoDereference: c.Bool("no-dereference"),
		Quiet:         quiet,
		Syslog:        c.Bool("syslog") || c.Bool("daemon"),
		Outfile:       c.String("outfile"),
		Timeout:       time.Duration(c.Int("timeout")) * time.Second,
		Format:        c.String("format"),
		FormatSet:     c.IsSet("format"),
		Text:          c.Bool("text"),
		CSV:           c.Bool("csv"),
		NoNewline:     c.Bool("no-newline"),
		Timefmt:       c.String("timefmt"),
		Resync:        c.Bool("resync"),
	}
	if c.Int("timeout") < 0 {
		return nil, base.Usagef("--timeout must be 0 or more seconds")
	}
	ev, err := parseEvents(c.StringSlice("event"))
	if err != nil {
		return nil, err
	}
	cfg.Events = ev
	if ev == 0 && !cfg.FormatSet && !cfg.CSV && !cfg.Text {
		// JSON feeds a replication pipeline: reads change nothing, and
		// asking the kernel for them costs every stage (-e access,open
		// asks for them; the text formats keep inotifywait's default).
		// A file found in a new directory is one synthetic CREATE
		// (evbatch takes it as written), not CREATE then CLOSE_WRITE.
		cfg.Events = event.ChangeEvents
		cfg.CreateOnly = true
	}
	for _, spec := range []struct {
		flag  string
		icase bool
		dst   *[]*regexp.Regexp
	}{{"exclude", false, &cfg.Exclude}, {"excludei", true, &cfg.Exclude}, {"include", false, &cfg.Include}, {"includei", true, &cfg.Include}} {
		if err := filter.Compile(spec.dst, c.StringSlice(spec.flag), spec.icase, "--"+spec.flag); err != nil {
			return nil, base.Usagef("%v", err)
		}
	}
	if cfg.CSV && cfg.Format != "" {
		return nil, base.Usagef("-c and --format cannot both be specified")
	}
	if cfg.Timefmt != "" && cfg.Format == "" {
		return nil, base.Usagef("--timefmt cannot be specified without --format")
	}
	if cfg.Format != "" && usesTime(parseFormat(cfg.Format)) && cfg.Timefmt == "" {
		return nil, base.Usagef("%%T is in --format string, but --timefmt was not specified")
	}
	if cfg.NoNewline && cfg.Format == "" {
		return nil, base.Usagef("--no-newline cannot be specified without --format")
	}
	if optionCount(c, "outfile") > 1 {
		return nil, base.Usagef("multiple --outfile options given") // as inotifywait
	}
	if cfg.Daemon && cfg.Outfile == "" {
		return nil, base.Usagef("-d/--daemon requires -o/--outfile")
	}
	args := c.Args().Slice()
	if f := c.String("fromfile"); f != "" {
		more, err := readFromFile(f, c.App.Reader)
		if err != nil {
			return nil, base.Errorf(exitError, "--fromfile: %w", err)
		}
		args = append(args, more...)
	}
	for _, a := range args {
		switch {
		case a == "" || a == "@":
			// An unset variable, or an exclusion of nothing: inotifywait
			// skips both (and says "No files specified" if nothing is left).
			continue
		case strings.HasPrefix(a, "@"):
			cfg.Excludes = append(cfg.Excludes, a[1:])
			continue
		}
		cfg.Paths = append(cfg.Paths, a)
	}
	if len(cfg.Paths) == 0 {
		return nil, base.Usagef("no files specified to watch")
	}
	return cfg, nil
}

// quietLevel counts -q: 1 for -q, 2 for -qq (or -q -q, -mqq …). urfave/cli
// v2's BoolFlag.Count is off by the number of aliases, so count here.
// watches says how many watches are set, without "1 directories" (a
// watch may also be on a single file).
func watches(n int) string {
	if n == 1 {
		return "1 watch"
	}
	return fmt.Sprintf("%d watches", n)
}

// optionCount is how many times the option was given (the command line
// as base.Getopt spelled it: "--name" each time, options before "--").
func optionCount(c *cli.Context, name string) int {
	raw, _ := c.App.Metadata["args"].([]string)
	n := 0
	for _, a := range raw {
		if a == "--" {
			break
		}
		if a == "--"+name {
			n++
		}
	}
	return n
}

// parseEvents reads -e values as inotifywait 3.22.6 does: comma lists,
// case-insensitive; an empty name anywhere (-e ”, "create,",
// "create,,delete") means every event, as inotifywait quietly does; a name with a blank in it makes the whole value
// invalid, named as given; "oneshot" is accepted and changes nothing
// (without -m inowait stops after the first event anyway; with -m it keeps
// every watch, see inowait(1)).
func parseEvents(values []string) (event.Op, error) {
	var op event.Op
	all := false
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			switch {
			case name == "":
				all = true
				continue
			case strings.ContainsAny(name, " \t"):
				return 0, base.Usagef("'%s' is not a valid event (see --help)", v)
			case strings.EqualFold(name, "oneshot"):
				continue
			}
			o, err := event.OpFromName(name)
			if err != nil {
				return 0, base.Usagef("'%s' is not a valid event (see --help)", v)
			}
			op |= o
		}
	}
	if all {
		return event.AllEvents, nil
	}
	return op, nil
}

func quietLevel(c *cli.Context) int {
	if !c.Bool("quiet") {
		return 0
	}
	return max(optionCount(c, "quiet"), 1)
}

func readFromFile(name string, stdin io.Reader) ([]string, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// daemonize starts a detached copy of inowait (-d) and returns at once.
func daemonize(c *cli.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return base.Errorf(exitError, "daemon: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return base.Errorf(exitError, "daemon: %w", err)
	}
	defer null.Close()
	raw, _ := c.App.Metadata["args"].([]string)
	cmd := exec.Command(exe, raw[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return base.Errorf(exitError, "daemon: %w", err)
	}
	return cmd.Process.Release()
}

// sink writes events to out, buffered until the watcher says the kernel
// queue is drained.
type sink struct {
	out     io.Writer
	buf     []byte
	json    bool
	text    *textFormat
	silent  bool // -qq
	monitor bool
	events  event.Op // what the user asked for (for the exit code)
	got     int
	unasked bool // the last event was one the user did not ask for
}

var errFirstEvent = errors.New("first event received")

func (s *sink) Event(ev *event.Event) error {
	s.got++
	s.unasked = !ev.Op.Has(s.events) && !ev.Op.Has(event.Control)
	if !s.silent {
		if s.json {
			s.buf = event.AppendEvent(s.buf, ev)
		} else {
			s.buf = s.text.append(s.buf, ev)
		}
	}
	if !s.monitor {
		return errFirstEvent
	}
	if len(s.buf) >= 64*1024 {
		return s.Flush()
	}
	return nil
}

func (s *sink) Flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.out.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	return nil
}

// flushDelay: in JSON (a pipeline's first stage) events gather for 10 ms
// at a time (five times at most) while they keep coming; text output goes
// out at once, as inotifywait's does. Each wait is a sleep and a wake-up
// of the Go runtime, which on a tar x of 20,000 files cost inowait 3.2 s
// of CPU at 2 ms, 2.2 s at 5 ms, 1.3 s at 10 ms (README pipeline, 3 runs
// each, same machine); 10 ms is nothing next to evbatch's window.
func flushDelay(cfg *Config) time.Duration {
	if cfg.FormatSet || cfg.CSV || cfg.Text {
		return 0
	}
	return 10 * time.Millisecond
}

// openSyslog connects to syslog for -s and -d.
func openSyslog() (io.WriteCloser, error) {
	const logErr, logDaemon = 3, 3 << 3 // syslog(3) LOG_ERR | LOG_DAEMON
	return newSyslog(logErr|logDaemon, "inowait", syslogPaths)
}

// run watches what cfg says and writes events to stdout until ctx is done.
func run(ctx context.Context, cfg *Config, stdout, stderr io.Writer) (err error) {
	log := base.NewLog("inowait", stderr)
	log.Quiet = cfg.Quiet > 0
	if cfg.Syslog {
		// As inotifywait: with -s (and -d, whose stderr is gone) every
		// message, the fatal one included, goes to syslog and not to
		// stderr. Without a syslog to talk to, stderr it is.
		if sw, serr := openSyslog(); serr == nil {
			defer sw.Close()
			log.W = sw
			defer func() {
				var be *base.Error
				switch {
				case err == nil:
				case errors.As(err, &be) && be.Err == nil:
				default:
					code := exitError
					if be != nil {
						code = be.Code
					}
					log.Errorf("%v", err)
					err = base.Exit(code)
				}
			}()
		}
	}
	out := stdout
	if cfg.Outfile != "" {
		f, err := os.OpenFile(cfg.Outfile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600) // as inotifywait: events name private files
		if err != nil {
			return base.Errorf(exitError, "--outfile: %w", err)
		}
		defer f.Close()
		out = f
	}

	roots := map[string]string{} // absolute root key -> user's spelling
	for _, p := range cfg.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return base.Errorf(exitError, "couldn't watch %s: %w", p, err)
		}
		disp := p
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			abs = strings.TrimSuffix(abs, "/") + "/"
			if !strings.HasSuffix(disp, "/") {
				disp += "/"
			}
		}
		roots[abs] = disp
	}
	// display spells an absolute path as the user did: the longest root
	// that contains it, as given on the command line. --format's %w and the
	// --exclude/--include regexes use it, as inotifywait matches its
	// regexes against the path it prints (data/skip, not /srv/data/skip).
	rootKeys := make([]string, 0, len(roots))
	for abs := range roots {
		rootKeys = append(rootKeys, abs)
	}
	sort.Slice(rootKeys, func(i, j int) bool { return len(rootKeys[i]) > len(rootKeys[j]) })
	display := func(p string) string {
		for _, abs := range rootKeys {
			if strings.HasPrefix(p, abs) {
				return roots[abs] + p[len(abs):]
			}
			if p+"/" == abs {
				return strings.TrimSuffix(roots[abs], "/")
			}
		}
		return p
	}
	excluded := map[string]bool{}
	for _, e := range cfg.Excludes {
		abs, err := filepath.Abs(e)
		if err == nil {
			excluded[strings.TrimSuffix(abs, "/")] = true
		}
	}
	matchAny := func(res []*regexp.Regexp, s string) bool {
		for _, re := range res {
			if re.MatchString(s) {
				return true
			}
		}
		return false
	}
	wcfg := inotify.Config{
		Roots:         cfg.Paths,
		Recursive:     cfg.Recursive,
		Events:        cfg.Events,
		NoDereference: cfg.NoDereference,
		Resync:        cfg.Resync,
		Timeout:       cfg.Timeout,
		CreateOnly:    cfg.CreateOnly,
		FlushDelay:    flushDelay(cfg),
		SkipDir: func(dir string) bool {
			d := strings.TrimSuffix(dir, "/")
			return excluded[d] || matchAny(cfg.Exclude, strings.TrimSuffix(display(dir), "/"))
		},
		Drop: func(ev *event.Event) bool {
			// @path is not watched, nor anything under it; its parent's
			// events about it are reported, as inotifywait does.
			p := strings.TrimSuffix(ev.Path, "/")
			for q := p; len(excluded) > 0; {
				i := strings.LastIndexByte(q, '/')
				if i <= 0 {
					break
				}
				if q = q[:i]; excluded[q] {
					return true
				}
			}
			d := strings.TrimSuffix(display(ev.Path), "/")
			if matchAny(cfg.Exclude, d) {
				return true
			}
			return len(cfg.Include) > 0 && !matchAny(cfg.Include, d)
		},
		Warn: log.Warnf,
	}
	if cfg.Quiet == 0 {
		started := false
		tty := base.IsTerminal(stderr)
		wcfg.Progress = func(dirs int, elapsed time.Duration, done bool) {
			if !started {
				started = true
				if cfg.Recursive {
					log.Infof("setting up watches (recursive: this may take a while on a large tree)")
				} else {
					log.Infof("setting up watches")
				}
			}
			rate := float64(dirs) / max(elapsed.Seconds(), 1e-9)
			if done {
				log.Infof("watches established: %s in %.2fs (%.0f/s)", watches(dirs), elapsed.Seconds(), rate)
				return
			}
			if tty { // running counts only where someone watches
				log.Infof("watching: %s so far (%.0f/s)", watches(dirs), rate)
			}
		}
	}
	w, err := inotify.New(wcfg)
	if err != nil {
		return voice(err)
	}
	defer w.Close()
	// Setting up the watches read every directory of the tree; if that
	// took collections, give the memory back now instead of minutes later
	// (the scavenger's pace): a watcher spends its life at rest.
	base.TrimAfterWork()

	// A reader that falls behind must not stop the watcher from draining
	// the kernel queue: output goes out from a goroutine of its own.
	o := newOutput(out, outputLimit)
	s := &sink{out: o, json: !cfg.FormatSet && !cfg.CSV && !cfg.Text, silent: cfg.Quiet >= 2, monitor: cfg.Monitor, events: cfg.Events}
	if s.events == 0 {
		s.events = event.AllEvents
	}
	if !s.json {
		format := cfg.Format
		if !cfg.FormatSet {
			format = "%w %,e %f"
		}
		s.text = &textFormat{
			parts: parseFormat(format), csv: cfg.CSV, noNewline: cfg.NoNewline, timefmt: cfg.Timefmt,
			display: display,
			loc:     localZone(),
		}
	}
	err = w.Run(ctx, s)
	if cerr := o.Close(); cerr != nil && (err == nil || errors.Is(err, errFirstEvent) || errors.Is(err, inotify.ErrTimeout)) {
		return fmt.Errorf("write events: %w", cerr)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errFirstEvent):
		if s.unasked {
			return base.Exit(exitError)
		}
		return nil
	case errors.Is(err, inotify.ErrTimeout):
		return base.Exit(exitTimeout)
	case errors.Is(err, inotify.ErrRootGone):
		return (&base.Error{Code: exitError, Err: fmt.Errorf("%w; stopping", err)}).
			WithHint("inowait stops when a watched root disappears; restart it (with --resync) once the root is back")
	}
	return voice(err)
}

// voice gives the watcher's errors inowait's exit code and, for a kernel
// limit, the hint saying which sysctl to raise.
func voice(err error) error {
	var le *inotify.LimitError
	if errors.As(err, &le) {
		return (&base.Error{Code: exitError, Err: le}).
			WithHint("raise %s, e.g. sysctl %s=%d (see inowait(1), LIMITS)", le.Sysctl, le.Sysctl, le.Raise)
	}
	return err
}
