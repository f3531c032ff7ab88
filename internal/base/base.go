// Package base is the command-line plumbing shared by the seven inopipe
// binaries: the one exit point, the voice on stderr, signal handling and the
// command line read as GNU getopt_long reads it (Getopt).
//
// Output rules, followed by every tool:
//
//   - stdout carries only the data stream (JSON lines, or inotifywait text
//     for inowait --format); never logs.
//   - every line on stderr starts with the program name: "rpush: error: …",
//     "rpush: warning: …", "rpush: hint: …", or "rpush: …" for progress and
//     summaries.
//   - messages are lowercase and have no trailing period; errors name what
//     failed and where (a path, a line number, a target).
//   - a hint says what the operator can change, on its own line after the
//     error it explains.
//   - os.Exit is called once, in main, after every defer has run. Nothing
//     below main exits; functions return an *Error carrying the exit code.
package base

import (
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
)

// Version is the inopipe release, set at link time by the Makefile.
var Version = "0.1.0-dev"

func init() {
	// urfave/cli's default version flag takes -v, which grep-like tools
	// need for --invert; every inopipe tool spells it --version only.
	// (urfave/cli keeps this default in a package variable.)
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
}

// Error is an error that carries the exit code the process should end with
// and optional hints for the operator.
type Error struct {
	Code  int
	Err   error // nil: exit with Code and print nothing
	Hints []string
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with exit code code.
func Errorf(code int, format string, a ...any) *Error {
	return &Error{Code: code, Err: fmt.Errorf(format, a...)}
}

// Exit returns an *Error that only sets the exit code (the tool has already
// reported what went wrong).
func Exit(code int) *Error { return &Error{Code: code} }

// WithHint adds a hint line to e and returns it.
func (e *Error) WithHint(format string, a ...any) *Error {
	e.Hints = append(e.Hints, fmt.Sprintf(format, a...))
	return e
}

// UsageError marks a command-line mistake; Run maps it to the usage exit
// code given to it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError.
func Usagef(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// Run runs app with args and returns the process exit code. It prints the
// error (and its hints) in the program's voice. usageCode is the exit code
// for command-line mistakes (1 for inowait, as inotifywait; 2 elsewhere).
func Run(ctx context.Context, app *cli.App, args []string, usageCode int) int {
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	// urfave/cli v2 would otherwise call os.Exit inside Run for cli.Exit
	// errors; we map errors to codes here instead.
	app.ExitErrHandler = func(*cli.Context, error) {}
	// `tool --generate-bash-completion` lists flags for the shell
	// completions in completions/ (bash and zsh).
	app.EnableBashCompletion = true
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return &UsageError{Err: err}
	}
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata["args"] = args
	// Every tool takes --no-timestamps; it is passed on through the
	// environment, to the tool's Log and to the stages inopipe-run starts.
	app.Flags = append(app.Flags, &cli.BoolFlag{Name: "no-timestamps", Usage: "no time before each line on stderr (none either when stderr is the journal)"})
	// Every tool reads its command line as GNU getopt_long does (see
	// Getopt): options after operands, clusters with attached values,
	// unique prefixes, "--" ending the options.
	args, err := Getopt(app.Flags, args)
	if err != nil {
		return Report(app.ErrWriter, app.Name, &UsageError{Err: err}, usageCode)
	}
	app.Metadata["args"] = args
	before := app.Before
	app.Before = func(c *cli.Context) error {
		if c.Bool("no-timestamps") {
			os.Setenv("INOPIPE_NO_TIMESTAMPS", "1")
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	err = app.RunContext(ctx, args)
	return Report(app.ErrWriter, app.Name, err, usageCode)
}

// Report prints err in the voice of prog and returns the exit code for it.
func Report(w io.Writer, prog string, err error, usageCode int) int {
	if err == nil {
		return 0
	}
	log := NewLog(prog, w)
	var ue *UsageError
	if errors.As(err, &ue) {
		log.Errorf("%s", lower(ue.Err.Error()))
		log.Hintf("see '%s --help'", prog)
		return usageCode
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Err != nil {
			log.Errorf("%s", lower(e.Err.Error()))
		}
		for _, h := range e.Hints {
			log.Hintf("%s", h)
		}
		return e.Code
	}
	log.Errorf("%s", lower(err.Error()))
	return 1
}

// lower makes urfave/cli's own messages ("Required flag …", "flag provided
// but not defined") follow the lowercase rule.
func lower(s string) string {
	if len(s) > 1 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'a' && s[1] <= 'z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

// Log writes the tool's voice on stderr. It is safe for concurrent use.
type Log struct {
	Prog  string
	W     io.Writer
	Quiet bool // suppress Infof (progress, summaries); errors still print
	// Stamp puts the time (RFC 3339, UTC, milliseconds) before each line;
	// NewLog decides it.
	Stamp bool
	mu    sync.Mutex
}

// NewLog is the voice of prog on w. Lines carry a timestamp when w is the
// process's own stderr, unless that is the journal (JOURNAL_STREAM set: it
// stamps every line itself) or INOPIPE_NO_TIMESTAMPS is set (the
// --no-timestamps option of every tool sets it, for the tool and the
// stages it starts). Tests writing to a buffer get no timestamps.
func NewLog(prog string, w io.Writer) *Log {
	return &Log{Prog: prog, W: w, Stamp: stamps(w)}
}

func stamps(w io.Writer) bool {
	if _, ok := w.(*os.File); !ok {
		return false
	}
	return os.Getenv("JOURNAL_STREAM") == "" && os.Getenv("INOPIPE_NO_TIMESTAMPS") == ""
}

func (l *Log) printf(kind, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	l.mu.Lock()
	defer l.mu.Unlock()
	stamp := ""
	if l.Stamp {
		stamp = time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00") + " "
	}
	if kind == "" {
		fmt.Fprintf(l.W, "%s%s: %s\n", stamp, l.Prog, msg)
		return
	}
	fmt.Fprintf(l.W, "%s%s: %s: %s\n", stamp, l.Prog, kind, msg)
}

// Errorf prints "prog: error: …".
func (l *Log) Errorf(format string, a ...any) { l.printf("error", format, a...) }

// Warnf prints "prog: warning: …".
func (l *Log) Warnf(format string, a ...any) { l.printf("warning", format, a...) }

// Hintf prints "prog: hint: …".
func (l *Log) Hintf(format string, a ...any) { l.printf("hint", format, a...) }

// Infof prints "prog: …" unless Quiet.
func (l *Log) Infof(format string, a ...any) {
	if !l.Quiet {
		l.printf("", format, a...)
	}
}

// SignalContext returns a context that is cancelled by the first SIGINT or
// SIGTERM. The first signal means "stop taking input, drain, flush, exit
// cleanly"; after it the default disposition is restored, so a second
// signal aborts the process at once. stop releases the handler.
func SignalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			signal.Reset(syscall.SIGINT, syscall.SIGTERM)
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
}

// IsTerminal reports whether w is a terminal: long work (watch setup on a
// big tree, an initial full sync) shows progress there and stays quiet in
// pipes and journals.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isTerminal(int(f.Fd()))
}

// Main is every tool's main: run app with the process's arguments under a
// signal context, print any error in the tool's voice, exit with its code.
func Main(app *cli.App, usageCode int) {
	TightHeap(512 << 10)
	go TrimWhenIdle(context.Background(), 5*time.Second)
	ctx, stop := SignalContext(context.Background())
	code := Run(ctx, app, os.Args, usageCode)
	stop()
	os.Exit(code)
}
