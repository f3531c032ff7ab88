package rsync

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Run is one rsync invocation.
type Run struct {
	Binary string
	Args   []string
	Env    []string
	Stdin  []byte
	// Progress, when set, is told of each file as rsync names it (the
	// run's Args must ask with Options.ListFiles), while the run goes on;
	// Outcome.Files is then empty (the caller keeps what it needs).
	Progress func(FileChange)
}

// Outcome is what a run did.
type Outcome struct {
	Exit    int // ExitNotRun when it could not start
	Stderr  string
	Bytes   int64
	Deleted int64        // "Number of deleted files" from --stats; -1 when absent
	Files   []FileChange // what the run changed, when Options.ListFiles asked
	Elapsed time.Duration
	Err     error // start failure
}

// Runner executes rsync runs. ExecRunner is the real one; tests use a fake
// made of func fields.
type Runner interface {
	Run(ctx context.Context, r Run) Outcome
}

// ExecRunner runs the real rsync in its own process group. When ctx is
// done the group gets SIGTERM; WaitDelay later it is killed.
type ExecRunner struct {
	WaitDelay time.Duration
}

// The --stats lines Run reads.
var (
	bytesSent = []byte("Total bytes sent: ")
	deleted   = []byte("Number of deleted files: ")
)

// statNumber reads the number that follows prefix at the start of a line
// of out ("1,234" or "1.234" by locale; "3 (reg: 2, dir: 1)" is 3), -1
// when no line starts with prefix and a digit. It runs after every rsync:
// a scan for the prefix, no regexp and no allocation.
func statNumber(prefix, out []byte) int64 {
	for at := 0; ; {
		i := bytes.Index(out[at:], prefix)
		if i < 0 {
			return -1
		}
		i += at
		if i == 0 || out[i-1] == '\n' {
			if n, ok := digits(out[i+len(prefix):]); ok {
				return n
			}
		}
		at = i + 1
	}
}

// digits reads the decimal number at the start of b, skipping the
// locale's thousands separators (at most math.MaxInt64); ok when it has
// a digit.
func digits(b []byte) (n int64, ok bool) {
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			d := int64(c - '0')
			if n > (math.MaxInt64-d)/10 {
				n = math.MaxInt64
			} else {
				n = n*10 + d
			}
			ok = true
		case c == ',' || c == '.':
		default:
			return n, ok
		}
	}
	return n, ok
}

// Run starts rsync and waits for it.
func (e ExecRunner) Run(ctx context.Context, r Run) Outcome {
	start := time.Now()
	cmd := exec.CommandContext(ctx, r.Binary, r.Args...)
	cmd.Env = r.Env
	cmd.Stdin = bytes.NewReader(r.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if r.Progress != nil {
		cmd.Stdout = &progressWriter{out: &out, fn: r.Progress}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// the whole group: rsync forks a receiver/ssh of its own
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = e.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	err := cmd.Run()
	o := Outcome{Stderr: strings.TrimSpace(errb.String()), Elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.Exit = ee.ExitCode()
		if o.Exit < 0 { // killed by a signal
			o.Exit = ExitSignal
		}
	default:
		o.Exit, o.Err = ExitNotRun, err
	}
	o.Bytes = max(0, statNumber(bytesSent, out.Bytes()))
	o.Deleted = statNumber(deleted, out.Bytes())
	o.Files = Files(out.Bytes())
	return o
}

// progressWriter hands each complete FileMark line of rsync's standard
// output to fn as it arrives, and keeps the rest (--stats) in out.
type progressWriter struct {
	out     *bytes.Buffer
	partial []byte
	fn      func(FileChange)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if fc, ok := ParseFile(string(w.partial[:i])); ok {
			w.fn(fc) // not kept: a full sync of a million files would hold them all
		} else {
			w.out.Write(w.partial[:i+1])
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}
