package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
)

var binDir string

// -o creates its file 0600, as inotifywait: events name private files.
func TestOutfileMode(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "events")
	if r := clitest.Run(t, "", inowait(), "-q", "-t", "1", "-o", out, dir); r.Code != 2 {
		t.Fatalf("exit %d %s", r.Code, r.Stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", fi.Mode(), err)
	}
}

// stamped is a stderr line of inowait's, with its timestamp.
var stamped = regexp.MustCompile(`^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z inowait: `)

func TestMain(m *testing.M) { clitest.Main(m, &binDir, "inowait") }

func inowait() string { return filepath.Join(binDir, "inowait") }

// proc is a watcher process running in the background.
type proc struct {
	cmd    *exec.Cmd
	out    clitest.Buffer
	errb   clitest.Buffer
	cancel context.CancelFunc
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clitest.Timeout())
	p := &proc{cancel: cancel}
	p.cmd = exec.CommandContext(ctx, name, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		p.cmd.Wait()
		cancel()
	})
	return p
}

func (p *proc) waitStderr(t *testing.T, substr string) {
	t.Helper()
	clitest.Eventually(t, fmt.Sprintf("%q on stderr of %s", substr, p.cmd.Path), func() bool {
		return strings.Contains(p.errb.String(), substr)
	})
}

// TestTextMatchesInotifywait runs inotifywait and inowait on the same
// directory and compares their output byte for byte, for each text format.
func TestTextMatchesInotifywait(t *testing.T) {
	if _, err := exec.LookPath("inotifywait"); err != nil {
		t.Skip("inotifywait not installed (make test installs inotify-tools)")
	}
	formats := map[string][]string{
		"default": nil,
		"csv":     {"-c"},
		"format":  {"--format", "%w|%f|%e|%:e|%c|%%|%0|%n|%q"},
		"timefmt": {"--format", "%T %e %f", "--timefmt", "%Y"},
		"nul":     {"--format", "%w%f%0", "--no-newline"},
	}
	for name, args := range formats {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			want := startProc(t, "inotifywait", append([]string{"-m"}, append(args, dir)...)...)
			oursArgs := args
			if name == "default" {
				oursArgs = []string{"--text"}
			}
			got := startProc(t, inowait(), append([]string{"-m"}, append(oursArgs, dir)...)...)
			want.waitStderr(t, "Watches established.")
			got.waitStderr(t, "watches established")
			script := `touch "a b" && mkdir sub && mv "a b" "c,d" && printf x > " lead" && touch 'q"x' 'trail ' "$(printf 'nl\nx')" &&
				chmod 600 "c,d" && rm "c,d" && rmdir sub && cat " lead" >/dev/null && touch END`
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			done := func(s string) bool { return strings.Count(s, "END") >= 4 } // CREATE OPEN ATTRIB CLOSE_WRITE
			clitest.Eventually(t, "END from both", func() bool { return done(want.out.String()) && done(got.out.String()) })
			if w, g := want.out.String(), got.out.String(); w != g {
				t.Errorf("output differs from inotifywait\n--- inotifywait\n%q\n--- inowait\n%q", w, g)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"timeout", []string{"-q", "-t", "1", dir}, 2, ""},
		{"missing path", []string{"-q", filepath.Join(dir, "nope")}, 1, "inowait: error: couldn't watch"},
		{"bad event", []string{"-e", "bogus", dir}, 1, `inowait: error: 'bogus' is not a valid event`},
		// as inotifywait's getopt_long reads them (issue 14)
		{"options after the path", []string{dir, "--exclude", "x", "-t1"}, 2, ""},
		{"typo -format", []string{"-format", "%w", dir}, 1, "invalid option -- 'f'"},
		{"ambiguous abbreviation", []string{"--tim", "1", dir}, 1, "option '--tim' is ambiguous"},
		// more of inotifywait 3.22.6's behaviour, checked side by side
		{"outfile twice", []string{"-o", filepath.Join(dir, "a"), "-o", filepath.Join(dir, "b"), dir}, 1, "multiple --outfile options given"},
		{"empty argument (an unset variable)", []string{"-t", "1", ""}, 1, "no files specified to watch"},
		{"bare @ excludes nothing", []string{"-q", "-t", "1", "@", dir}, 2, ""},
		{"-e '' is every event", []string{"-q", "-t", "1", "-e", "", dir}, 2, ""},
		{"no files", []string{"-m"}, 1, "no files specified"},
		{"csv and format", []string{"-c", "--format", "%w", dir}, 1, "-c and --format cannot both be specified"},
		{"T without timefmt", []string{"--format", "%T", dir}, 1, "--timefmt was not specified"},
		{"daemon without outfile", []string{"-d", dir}, 1, "requires -o"},
		{"bad regex", []string{"--exclude", "(", dir}, 1, "--exclude: error parsing regexp"},
	}
	for _, c := range cases {
		r := clitest.Run(t, "", inowait(), c.args...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.stderr) {
			t.Errorf("%s: exit %d stderr %q; want exit %d and %q", c.name, r.Code, r.Stderr, c.code, c.stderr)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
			// a time first (stderr is not the journal), then the voice
			if line != "" && !stamped.MatchString(line) {
				t.Errorf("%s: stderr line not in the inowait voice: %q", c.name, line)
			}
		}
	}
}

// TestFirstEventExits: without -m, inowait prints one event and exits 0,
// like inotifywait.
func TestFirstEventExits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProc(t, inowait(), "-e", "create", dir)
	p.waitStderr(t, "watches established")
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v (stderr %s)", err, p.errb.String())
		}
	case <-time.After(clitest.Timeout()):
		t.Fatal("did not exit after the first event")
	}
	if n := strings.Count(p.out.String(), "\n"); n != 1 || !strings.Contains(p.out.String(), `"events":["CREATE"]`) {
		t.Errorf("output %q", p.out.String())
	}
}

// TestRootDeletedExits1 documents the choice: a vanished root stops inowait
// with exit 1 after the DELETE_SELF record, so a supervisor restarts it.
func TestRootDeletedExits1(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "r")
	os.Mkdir(dir, 0o755)
	p := startProc(t, inowait(), "-mr", dir)
	p.waitStderr(t, "watches established")
	os.RemoveAll(dir)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(clitest.Timeout()):
		t.Fatal("did not exit when the root was deleted")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(p.out.String(), `"DELETE_SELF"`) || !strings.Contains(p.errb.String(), "was deleted; stopping") {
		t.Errorf("stdout %q stderr %q", p.out.String(), p.errb.String())
	}
}

// TestOverflowAsUnprivileged fills the kernel queue of an unprivileged
// inowait (stopped with SIGSTOP while the events come) and checks
// that a Q_OVERFLOW record comes out and that watching goes on.
func TestOverflowAsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	dir, err := os.MkdirTemp("", "inowait-overflow-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clitest.Timeout())
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--", inowait(), "-m", dir)
	var errb clitest.Buffer
	cmd.Stdout, cmd.Stderr = pw, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	clitest.Eventually(t, "watches established", func() bool { return strings.Contains(errb.String(), "watches established") })
	max := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		fmt.Sscan(string(b), &max)
	}
	if max > 200000 {
		t.Skipf("max_queued_events is %d; too large to overflow quickly", max)
	}
	// a slow reader would not do: inowait holds its output and keeps
	// draining the kernel queue (TestSlowReaderNoOverflow)
	must(t, cmd.Process.Signal(syscall.SIGSTOP))
	for i := 0; i < max/2+2000; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, cmd.Process.Signal(syscall.SIGCONT))
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sawOverflow, sawAfter := false, false
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(clitest.Timeout())
	for !(sawOverflow && sawAfter) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended; overflow %v after %v; stderr %s", sawOverflow, sawAfter, errb.String())
			}
			if strings.Contains(l, `"Q_OVERFLOW"`) && !sawOverflow {
				sawOverflow = true
				// inowait must keep watching after the overflow
				os.WriteFile(filepath.Join(dir, "after"), nil, 0o644)
			}
			if sawOverflow && strings.Contains(l, `"name":"after"`) {
				sawAfter = true
			}
		case <-deadline:
			t.Fatalf("timed out: overflow %v, event after it %v", sawOverflow, sawAfter)
		}
	}
	go io.Copy(io.Discard, pr)
	// and the operator is told, with the sysctl to raise
	clitest.Eventually(t, "an overflow warning", func() bool {
		return strings.Contains(errb.String(), "queue overflowed") && strings.Contains(errb.String(), "raise fs.inotify.max_queued_events (now ")
	})
}

// -q prints only events (no watch-setup messages), -qq prints nothing,
// not even the event, as inotifywait; the count comes from the command
// line as getopt reads it (-q -q, -qq, -mqq, --quiet --quiet).
func TestQuietLevels(t *testing.T) {
	dir := t.TempDir()
	if r := clitest.Run(t, "", inowait(), "-t", "1", dir); r.Code != 2 || !strings.Contains(r.Stderr, "watches established") {
		t.Fatalf("no -q: exit %d stderr %q", r.Code, r.Stderr)
	}
	if r := clitest.Run(t, "", inowait(), "-q", "-t", "1", dir); r.Code != 2 || strings.Contains(r.Stderr, "watches") {
		t.Fatalf("-q: exit %d stderr %q", r.Code, r.Stderr)
	}
	for _, q := range [][]string{{"-qq"}, {"-q", "-q"}, {"--quiet", "--quiet"}, {"-mqq"}} {
		args := append(append([]string{}, q...), "-e", "create", dir)
		cmd := exec.Command(inowait(), args...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		deadline := time.After(clitest.Timeout())
		// With -qq there is no "watches established" to wait for: make
		// events until inowait has seen one (or, with -m, for a while).
	loop:
		for i := 0; ; i++ {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%s%d", strings.Join(q, ""), i)), nil, 0o644)
			select {
			case <-done:
				break loop
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("%q: did not exit", q)
			case <-time.After(20 * time.Millisecond):
				if q[0] == "-mqq" && i > 20 {
					cmd.Process.Signal(syscall.SIGTERM)
				}
			}
		}
		if out.Len() != 0 || errb.Len() != 0 {
			t.Errorf("%q printed stdout %q stderr %q", q, out.String(), errb.String())
		}
	}
}

// --exclude matches the path as printed: with the relative root "data",
// ^data/skip excludes data/skip (inotifywait's behaviour; it matched the
// absolute path before).
func TestExcludeMatchesPrintedPath(t *testing.T) {
	cwd := t.TempDir()
	for _, d := range []string{"data/skip", "data/keep"} {
		must(t, os.MkdirAll(filepath.Join(cwd, d), 0o755))
	}
	cmd := exec.Command(inowait(), "-mrq", "data", "--exclude", "^data/skip", "-e", "create", "--format", "%w%f")
	cmd.Dir = cwd
	var out clitest.Buffer
	cmd.Stdout = &out
	must(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(clitest.Timeout())
	for i := 0; !strings.Contains(out.String(), "data/keep/"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no event for data/keep: %q", out.String())
		}
		os.WriteFile(filepath.Join(cwd, "data/skip", fmt.Sprint(i)), nil, 0o644)
		os.WriteFile(filepath.Join(cwd, "data/keep", fmt.Sprint(i)), nil, 0o644)
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(out.String(), "data/skip") {
		t.Fatalf("excluded path reported:\n%s", out.String())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// -t counts from the last event the kernel delivered, even one that is
// not printed (here: excluded), as inotifywait's does.
func TestTimeoutResetByUnprintedEvents(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(inowait(), "-q", "-t", "1", "--exclude", "noise", dir)
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		select {
		case <-done:
			t.Fatalf("timed out after %v while excluded events kept coming", time.Since(start))
		case <-time.After(200 * time.Millisecond):
			os.WriteFile(filepath.Join(dir, "noise"), []byte("x"), 0o644)
		}
	}
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Fatalf("exit %d, want 2 (timeout)", code)
		}
	case <-time.After(clitest.Timeout()):
		cmd.Process.Kill()
		t.Fatal("no timeout once the events stopped")
	}
}

// TestSyslogGetsFatalErrors: with -s, as inotifywait, the fatal error goes
// to syslog, not to stderr (with -d stderr is gone: it would be lost).
func TestSyslogGetsFatalErrors(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	c := listenGram(t, sock)
	old := syslogPaths
	syslogPaths = []string{sock}
	defer func() { syslogPaths = old }()
	missing := filepath.Join(dir, "missing")
	r := clitest.RunApp(t, newApp(), base.ExitError, "", "-s", "-m", missing)
	if r.Code != 1 || strings.Contains(r.Stderr, "missing") {
		t.Fatalf("exit %d\nstderr %q", r.Code, r.Stderr)
	}
	if sys := readGram(t, c); !strings.Contains(sys, "missing") {
		t.Fatalf("syslog %q", sys)
	}
	// No syslog daemon: stderr.
	syslogPaths = []string{filepath.Join(dir, "nolog")}
	r = clitest.RunApp(t, newApp(), base.ExitError, "", "-s", "-m", missing)
	if r.Code != 1 || !strings.Contains(r.Stderr, "missing") {
		t.Fatalf("-s without a daemon: exit %d stderr %q", r.Code, r.Stderr)
	}
	// Without -s: stderr.
	r = clitest.RunApp(t, newApp(), base.ExitError, "", "-m", missing)
	if r.Code != 1 || !strings.Contains(r.Stderr, "missing") {
		t.Fatalf("without -s: exit %d stderr %q", r.Code, r.Stderr)
	}
}
