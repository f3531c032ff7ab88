package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

// sideBySide are the items of the inotifywait-compatibility issue, each
// run through the installed inotifywait (3.22.6 on Debian) and inowait
// with the same arguments, in the same directory, on the same changes.
// "DIR" in args is replaced by the watched tree; ops run in it by sh.
var sideBySide = []struct {
	name string
	args []string
	env  []string
	ops  string // changes made once both watch (none: an error case)
}{
	// Events: stdout must be the same, byte for byte.
	{"options after the path (tutorial form)", []string{"data", "-m", "--timefmt", "%d/%m/%y", "--format", "%T %w%f %e", "-e", "close_write,delete,create,attrib"}, nil,
		"touch data/a && rm data/a"},
	{"attached -e value in a cluster", []string{"-mecreate,delete", "--format", "%e %f", "data"}, nil, "touch data/b && rm data/b"},
	{"-e with empty names", []string{"-m", "-e", "create,,delete,", "--format", "%e %f", "data"}, nil, "touch data/c && rm data/c"},
	{"abbreviated long options", []string{"--mon", "--form", "%e %f", "--ev", "create", "data"}, nil, "touch data/d"},
	{"@path: its parent's events are reported", []string{"-m", "-r", "-e", "attrib,create", "--format", "%w|%f|%e", "data", "@data/skip"}, nil,
		"touch data/skip data/skip/inner data/keep/k"},
	{"--format '' prints an empty line per event", []string{"-m", "-e", "create", "--format", "", "data"}, nil, "touch data/e data/f"},
	{"strftime directives and a POSIX TZ", []string{"-m", "-e", "create", "--timefmt", "%Y-%m-%d %V %G %U %W %g %-d %_m %j %u %w %C %y", "--format", "%T|%f", "data"},
		[]string{"TZ=CST-8"}, "touch data/g"},
	{"excludes match the path as printed", []string{"-m", "-r", "--exclude", "^data/skip", "--format", "%w%f %e", "-e", "create", "data"}, nil,
		"touch data/skip/h data/keep/h"},
	{"-P watches a directory symlink itself", []string{"-m", "-P", "--format", "%w|%f|%e", "link"}, nil, "touch -h link && touch data/keep/i"},
	// Without -m both stop at the first event: once both have exited, -qq
	// has had its chance to print.
	{"-qq prints nothing", []string{"-qqe", "create", "data"}, nil, "touch data/j"},
	// Errors: the exit status and the message (inowait's house style,
	// "inowait: error: ...", compared without case or punctuation).
	{"an empty argument", []string{""}, nil, ""},
	{"a bare @", []string{"@"}, nil, ""},
	{"-o twice", []string{"-o", "o1", "-o", "o2", "data"}, nil, ""},
	{"no such path", []string{"/nonexistent/x"}, nil, ""},
	{"unknown event", []string{"-e", "nope", "data"}, nil, ""},
	{"--timefmt without --format", []string{"--timefmt", "%Y", "data"}, nil, ""},
	{"--no-newline without --format", []string{"--no-newline", "data"}, nil, ""},
	{"-c with --format", []string{"-c", "--format", "%f", "data"}, nil, ""},
}

// TestSideBySide: inowait behaves as inotifywait on every item (the
// deliberate differences are listed in inowait(1)).
func TestSideBySide(t *testing.T) {
	if _, err := exec.LookPath("inotifywait"); err != nil {
		t.Skip("inotifywait not installed (make test installs inotify-tools)")
	}
	for _, c := range sideBySide {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, d := range []string{"data/skip", "data/keep"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("data/keep", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			start := func(name string, extra ...string) *proc {
				args := append(extra, c.args...)
				p := &proc{}
				p.cmd = exec.Command(name, args...)
				p.cmd.Dir = dir
				p.cmd.Env = append(os.Environ(), c.env...)
				p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
				if err := p.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
				return p
			}
			var extra []string
			if !hasFormat(c.args) {
				extra = []string{"--text"}
			}
			want, got := start("inotifywait"), start(inowait(), extra...)
			if c.ops == "" {
				wantErr, gotErr := want.cmd.Wait(), got.cmd.Wait()
				if code(wantErr) != code(gotErr) || want.out.String() != got.out.String() {
					t.Fatalf("exit %d, stdout %q; inotifywait: exit %d, stdout %q", code(gotErr), got.out.String(), code(wantErr), want.out.String())
				}
				if w, g := message(want.errb.String()), message(got.errb.String()); !strings.HasPrefix(g, w) {
					t.Fatalf("message %q (%q); inotifywait: %q", g, got.errb.String(), w)
				}
				return
			}
			// Watching once each process's inotify descriptor has a watch
			// (-qq prints no "watches established" to wait for).
			for _, p := range []*proc{want, got} {
				clitest.Eventually(t, "a watch of "+p.cmd.Path, func() bool { return hasWatch(p.cmd.Process.Pid) })
			}
			sh := exec.Command("sh", "-c", c.ops)
			sh.Dir = dir
			if out, err := sh.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v %s", c.ops, err, out)
			}
			if !slices.ContainsFunc(c.args, func(a string) bool { return strings.HasPrefix(a, "-m") || a == "--mon" }) {
				// One event: both exit after it.
				wantErr, gotErr := want.cmd.Wait(), got.cmd.Wait()
				if code(wantErr) != code(gotErr) {
					t.Fatalf("exit %d; inotifywait: exit %d", code(gotErr), code(wantErr))
				}
			} else {
				// Both have seen the changes when their outputs agree and
				// are not empty; bounded.
				deadline := time.Now().Add(2 * time.Second)
				for time.Now().Before(deadline) && (want.out.String() == "" || want.out.String() != got.out.String()) {
					time.Sleep(20 * time.Millisecond)
				}
			}
			if w, g := want.out.String(), got.out.String(); w != g {
				t.Fatalf("stdout differs\n--- inotifywait\n%q\n--- inowait\n%q", w, g)
			}
		})
	}
}

// hasWatch reports whether the process has an inotify watch (its fdinfo).
func hasWatch(pid int) bool {
	fds, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "fdinfo", "*"))
	for _, f := range fds {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "inotify wd:") {
			return true
		}
	}
	return false
}

func hasFormat(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--form") || a == "-c" || strings.HasPrefix(a, "--csv") {
			return true
		}
	}
	return false
}

func code(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

var (
	stamp = regexp.MustCompile(`^\S+Z inowait: (error: )?`)
	punct = regexp.MustCompile(`[!.]+$`)
)

// message is the first line that says what went wrong, lower-cased,
// without inowait's time and name, inotifywait's "Setting up watches." or
// the final "!" or ".": the words are compared, not the house style.
func message(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if l == "" || strings.HasPrefix(l, "Setting up watches") || strings.Contains(l, "inowait: hint:") {
			continue
		}
		l = stamp.ReplaceAllString(l, "")
		if i := strings.Index(l, "!  "); i >= 0 {
			l = l[:i] // "'x' is not a valid event!  Run with ..."
		}
		return punct.ReplaceAllString(strings.ToLower(strings.TrimSpace(l)), "")
	}
	return ""
}
