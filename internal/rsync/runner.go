package rsync

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
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

var (
	bytesSent = regexp.MustCompile(`(?m)^Total bytes sent: ([0-9,.]+)`)
	deleted   = regexp.MustCompile(`(?m)^Number of deleted files: ([0-9,.]+)`)
)

// statNumber reads a --stats number ("1,234" or "1.234" by locale).
func statNumber(re *regexp.Regexp, out []byte) int64 {
	m := re.FindSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(string(m[1])), 10, 64)
	return n
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
