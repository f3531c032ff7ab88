//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

// supervised is inopipe-run running one pipeline from an env file.
type supervised struct {
	file   string // the env file
	cmd    *exec.Cmd
	stderr *clitest.Buffer
	done   chan struct{}
}

func startSupervised(t testing.TB, env string) *supervised {
	t.Helper()
	f := filepath.Join(t.TempDir(), "test.env")
	must(t, os.WriteFile(f, []byte(env+"BIN="+binDir+"\nSTOP_TIMEOUT=20\n"), 0o644))
	return startSupervisedFile(t, f)
}

// startSupervisedFile runs inopipe-run on an env file already written (a
// restart uses the same file: its SPOOL belongs to it).
func startSupervisedFile(t testing.TB, f string) *supervised {
	t.Helper()
	s := &supervised{file: f, cmd: exec.Command(bin("inopipe-run"), f), stderr: &clitest.Buffer{}, done: make(chan struct{})}
	s.cmd.Stderr = s.stderr
	must(t, s.cmd.Start())
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(clitest.Timeout()):
			s.cmd.Process.Kill()
		}
	})
	return s
}

// stages maps each stage's name to its pid (the supervisor's descendants).
func (s *supervised) stages(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	var walk func(pid int)
	walk = func(pid int) {
		// Every thread's children: a child belongs to the thread that
		// forked it (inopipe-run forks from a locked thread, for Pdeathsig).
		var b []byte
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, task := range tasks {
			c, _ := os.ReadFile(task)
			b = append(append(b, c...), ' ')
		}
		for _, f := range strings.Fields(string(b)) {
			p, _ := strconv.Atoi(f)
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil {
				out[strings.TrimSpace(string(comm))] = p
			}
			walk(p)
		}
	}
	walk(s.cmd.Process.Pid)
	for k := range out {
		switch k {
		case "inowait", "evfilter", "evbatch", "rpush":
		default:
			delete(out, k)
		}
	}
	return out
}

func (s *supervised) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(clitest.Timeout()):
		t.Fatalf("inopipe-run did not stop\n%s", s.stderr)
		return -1
	}
}

func gone(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil {
		return true
	}
	// a zombie is gone too
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return strings.Contains(string(b), ") Z ")
}

// TestSupervisorOneStageDies: kill -9 of any one stage stops the others
// and inopipe-run exits non-zero (systemd then restarts the pipeline), in
// contrast to `sh -c 'a | b | c'`, where a dead rpush goes unnoticed until
// inowait next writes. A restart resyncs what changed meanwhile.
func TestSupervisorOneStageDies(t *testing.T) {
	for _, victim := range []string{"inowait", "evfilter", "evbatch", "rpush"} {
		t.Run(victim, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			must(t, os.WriteFile(filepath.Join(src, "before"), []byte("x"), 0o644))
			env := fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nWINDOW=50ms\nSPOOL=%s\nEVFILTER_OPTS=--temp\n", src, dst, t.TempDir())
			s := startSupervised(t, env)
			converge(t, src, dst) // the resync at start
			var pids map[string]int
			clitest.Eventually(t, "four stages", func() bool { pids = s.stages(t); return len(pids) == 4 })
			must(t, syscall.Kill(pids[victim], syscall.SIGKILL))
			if code := s.wait(t); code == 0 {
				t.Fatalf("exit 0 after kill -9 of %s\n%s", victim, s.stderr)
			}
			if !strings.Contains(s.stderr.String(), "error: "+victim+" exited") {
				t.Errorf("stderr does not name the dead stage:\n%s", s.stderr)
			}
			for name, pid := range pids {
				if !gone(pid) {
					t.Errorf("%s (pid %d) still running after the pipeline stopped", name, pid)
				}
			}
			// Changed while down; the restart's resync delivers it.
			must(t, os.WriteFile(filepath.Join(src, "while-down"), []byte("y"), 0o644))
			startSupervisedFile(t, s.file)
			converge(t, src, dst)
		})
	}
}

// TestSupervisorStop: SIGTERM (systemctl stop) drains the pipeline: what
// was changed before is delivered, every stage exits, status 0.
func TestSupervisorStop(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	s := startSupervised(t, fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nWINDOW=50ms\nSPOOL=%s\n", src, dst, t.TempDir()))
	clitest.Eventually(t, "watching", func() bool { return strings.Contains(s.stderr.String(), "watches established") })
	pids := s.stages(t)
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(src, fmt.Sprint(i)), []byte("z"), 0o644))
	}
	converge(t, src, dst)
	must(t, s.cmd.Process.Signal(syscall.SIGTERM))
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, s.stderr)
	}
	for name, pid := range pids {
		if !gone(pid) {
			t.Errorf("%s still running", name)
		}
	}
}

// TestSupervisorBadConfig: the env file is data, never sourced; mistakes
// are named with file and line.
func TestSupervisorBadConfig(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.env")
	must(t, os.WriteFile(f, []byte("SOURCE=/tmp\nTARGETS=/tmp/x\nTARGET=x\n"), 0o644))
	r := clitest.Run(t, "", bin("inopipe-run"), f)
	if r.Code != 2 || !strings.Contains(r.Stderr, "bad.env:3: unknown setting TARGET") {
		t.Fatalf("exit %d stderr %s", r.Code, r.Stderr)
	}
	must(t, os.WriteFile(f, []byte("SOURCE=/tmp\nTARGETS=$(touch PWNED)\n"), 0o644))
	r = clitest.Run(t, "", bin("inopipe-run"), f)
	if r.Code != 2 || !strings.Contains(r.Stderr, "bad.env:2: TARGETS:") {
		t.Fatalf("exit %d stderr %s", r.Code, r.Stderr)
	}
	noCommandRan(t, ".")
}

// TestSystemdUnits: the shipped units pass systemd-analyze verify (with
// the binaries at the paths the units name, here bin/).
func TestSystemdUnits(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not available")
	}
	dir := t.TempDir()
	units, _ := filepath.Glob("../scripts/systemd/*")
	if len(units) < 5 {
		t.Fatalf("units: %v", units)
	}
	run := bin("inopipe-run")
	args := []string{"verify", "--man=no"}
	for _, u := range units {
		b, err := os.ReadFile(u)
		must(t, err)
		s := strings.ReplaceAll(string(b), "/usr/local/bin/inopipe-run", run)
		s = strings.ReplaceAll(s, "/usr/local/bin/", binDir+"/")
		name := strings.Replace(filepath.Base(u), "@.", "@test.", 1)
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644))
		args = append(args, filepath.Join(dir, name))
	}
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestInstallAndCompletion: make install into a DESTDIR puts every piece
// in place (units pointing at PREFIX), and the bash completion offers each
// tool's own flags. "-o build": the binaries make test built are installed
// as they are; the test does not rebuild the repository's bin/.
func TestInstallAndCompletion(t *testing.T) {
	dest := t.TempDir()
	out, err := exec.Command("make", "-s", "-C", "..", "-o", "build", "install", "DESTDIR="+dest, "PREFIX=/usr").CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"bin/rpush", "bin/inopipe-run", "bin/sersync2inopipe", "share/man/man7/inopipe.7", "share/man/man1/rpush.1",
		"lib/systemd/system/inopipe@.service", "lib/systemd/system/failreplay@.timer",
		"share/bash-completion/completions/rpush", "share/zsh/site-functions/_inopipe"} {
		if _, err := os.Stat(filepath.Join(dest, "usr", f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/inopipe@.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/inopipe-run ") {
		t.Errorf("unit not rewritten to PREFIX:\n%s", unit)
	}
	for tool, want := range map[string]string{"rpush": "--status-file", "inowait": "--monitor", "evfilter": "--exclude-from"} {
		script := fmt.Sprintf(`source ../completions/inopipe.bash; COMP_WORDS=(%s --); COMP_CWORD=1; _inopipe; printf '%%s\n' "${COMPREPLY[@]}"`, tool)
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), want+"\n") {
			t.Errorf("completion for %s: %v\n%s", tool, err, out)
		}
	}
}

// The operator cases for inopipe-run, each a way the shell
// supervisor failed: a config value acting as more targets or running a
// command, Ctrl-C hanging, --full following an old spool, a wrong
// password looking like an outage, --help failing.

// An inline comment is refused (file:line), nothing starts, and no target
// named in it is touched.
func TestRunInlineCommentRefused(t *testing.T) {
	src, tgt, precious := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "new"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(precious, "keep"), []byte("keep"), 0o644))
	f := filepath.Join(t.TempDir(), "www.env")
	must(t, os.WriteFile(f, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s   # previously %s\nBIN=%s\n", src, tgt, precious, binDir)), 0o644))
	r := clitest.Run(t, "", bin("inopipe-run"), f)
	if r.Code != 2 || !strings.Contains(r.Stderr, "www.env:2: TARGETS:") || !strings.Contains(r.Stderr, "inline comment") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(precious, "keep")); err != nil {
		t.Fatalf("a target named in a comment was synced: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tgt, "new")); err == nil {
		t.Fatal("the pipeline started")
	}
}

// A value is never evaluated: the shell version ran this through bash
// arithmetic, as root.
func TestRunValueNeverRuns(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "PWNED")
	f := filepath.Join(dir, "x.env")
	must(t, os.WriteFile(f, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nBIN=%s\nSTOP_TIMEOUT=running[$(touch %s)0]\n", t.TempDir(), t.TempDir(), binDir, marker)), 0o644))
	r := clitest.Run(t, "", bin("inopipe-run"), f)
	if r.Code != 2 || !strings.Contains(r.Stderr, "x.env:4: STOP_TIMEOUT:") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command in the env file ran")
	}
}

// Ctrl-C in a terminal reaches the whole foreground process group: every
// process of it gets SIGINT at once. inopipe-run stops in order and exits
// 0; no stage, no temporary directory is left.
func TestRunCtrlCToProcessGroup(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	f := filepath.Join(t.TempDir(), "t.env")
	must(t, os.WriteFile(f, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nWINDOW=50ms\nSPOOL=%s\nBIN=%s\nSTOP_TIMEOUT=20\n", src, dst, t.TempDir(), binDir)), 0o644))
	tmp := t.TempDir()
	cmd := exec.Command(bin("inopipe-run"), f)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // its own session and group, as a shell job
	stderr := &clitest.Buffer{}
	cmd.Stderr = stderr
	must(t, cmd.Start())
	s := &supervised{cmd: cmd, stderr: stderr, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	clitest.Eventually(t, "watching", func() bool { return strings.Contains(stderr.String(), "watches established") })
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	converge(t, src, dst)
	pids := s.stages(t)
	must(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d after Ctrl-C\n%s", code, stderr)
	}
	for name, pid := range pids {
		if !gone(pid) {
			t.Errorf("%s still running", name)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// --full syncs the config's SOURCE to the config's TARGETS: on a fresh
// install (nothing recorded yet), and never to a target the spool
// remembers but the config no longer names.
func TestRunFullFollowsTheConfig(t *testing.T) {
	src, dst, removed, spool := t.TempDir(), t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "spool")
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(removed, "keep"), []byte("keep"), 0o644))
	f := filepath.Join(t.TempDir(), "t.env")
	must(t, os.WriteFile(f, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nSPOOL=%s\nBIN=%s\n", src, dst, spool, binDir)), 0o644))
	r := clitest.Run(t, "", bin("inopipe-run"), "--full", f)
	if r.Code != 0 {
		t.Fatalf("--full on a fresh install: exit %d\n%s", r.Code, r.Stderr)
	}
	converge(t, src, dst)
	// The spool remembers a target the config dropped.
	must(t, os.WriteFile(filepath.Join(spool, "targets.json"), []byte(fmt.Sprintf(`[{"root":%q,"target":%q}]`, src+"/", removed)), 0o600))
	r = clitest.Run(t, "", bin("inopipe-run"), "--full", f)
	if _, err := os.Stat(filepath.Join(removed, "keep")); r.Code != 0 || err != nil {
		t.Fatalf("a target removed from the config got a full --delete sync (exit %d, %v)\n%s", r.Code, err, r.Stderr)
	}
	// Another config may not use the same spool.
	g := filepath.Join(t.TempDir(), "other.env")
	must(t, os.WriteFile(g, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nSPOOL=%s\nBIN=%s\n", src, removed, spool, binDir)), 0o644))
	r = clitest.Run(t, "", bin("inopipe-run"), "--full", g)
	if r.Code != 2 || !strings.Contains(r.Stderr, "belongs to "+f) {
		t.Fatalf("a second config on the same spool: exit %d\n%s", r.Code, r.Stderr)
	}
}

// A wrong password stops the start-up with rsync's words and a hint,
// instead of spooling every batch in silence.
func TestRunWrongPasswordIsFatal(t *testing.T) {
	d := newDaemon(t)
	wrong := filepath.Join(t.TempDir(), "wrong.pass")
	must(t, os.WriteFile(wrong, []byte("not-the-password\n"), 0o600))
	f := filepath.Join(t.TempDir(), "t.env")
	must(t, os.WriteFile(f, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nPASSWORD_FILE=%s\nSPOOL=%s\nBIN=%s\n", t.TempDir(), d.target(), wrong, filepath.Join(t.TempDir(), "s"), binDir)), 0o644))
	for _, args := range [][]string{{f}, {"--check", f}} {
		r := clitest.Run(t, "", bin("inopipe-run"), args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "rpush: error: "+d.target()+": rsync exit 5") || !strings.Contains(r.Stderr, "refused the password") {
			t.Fatalf("%q: exit %d\n%s", args, r.Code, r.Stderr)
		}
	}
}

func TestRunHelpAndVersion(t *testing.T) {
	for _, a := range []string{"--help", "--version"} {
		if r := clitest.Run(t, "", bin("inopipe-run"), a); r.Code != 0 || r.Stdout == "" {
			t.Errorf("%s: exit %d\n%s%s", a, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// A target down for longer than the retries, then back: the change made
// during the outage arrives within seconds of the next batch, with no
// failreplay run (rpush catches up from its spool), and the status file
// counted the spooled batch as pending meanwhile.
func TestRunCatchUpWhenTargetReturns(t *testing.T) {
	d := newDaemon(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "before"), []byte("x"), 0o644))
	status := filepath.Join(t.TempDir(), "status.json")
	s := startSupervised(t, fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nPASSWORD_FILE=%s\nWINDOW=50ms\nSPOOL=%s\nSTATUS_FILE=%s\nRPUSH_OPTS=--retries 0 --contimeout 2 --status-interval 100ms\n",
		src, d.target(), d.passFile, filepath.Join(t.TempDir(), "spool"), status))
	converge(t, src, d.module) // running: the start-up resync went through
	clitest.Eventually(t, "watching", func() bool { return strings.Contains(s.stderr.String(), "watches established") })
	d.stop()
	must(t, os.WriteFile(filepath.Join(src, "during-outage"), []byte("x"), 0o644))
	clitest.Eventually(t, "the outage's batch pending in the status file", func() bool {
		b, _ := os.ReadFile(status)
		return strings.Contains(string(b), `"pending": 1`) && strings.Contains(string(b), `"batches_spooled": 1`)
	})
	d.start(t)
	must(t, os.WriteFile(filepath.Join(src, "after"), []byte("y"), 0o644))
	converge(t, src, d.module)
	// The line comes right after the replay that converged the target,
	// through inopipe-run's stderr: wait for it, do not race it.
	clitest.Eventually(t, "the catch-up reported", func() bool {
		return strings.Contains(s.stderr.String(), "is back: its spooled batches are delivered")
	})
}

// Issue 13: a rewrite that keeps size and mtime (reproducible builds, tar x,
// cp -p, touch -r) reaches the target: the kernel said the file was
// written, and rsync's quick check is not allowed to skip it.
func TestRunSameSizeSameMtimeRewrite(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	f := filepath.Join(src, "release.tar")
	must(t, os.WriteFile(f, []byte("version-1"), 0o644))
	stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // SOURCE_DATE_EPOCH
	must(t, os.Chtimes(f, stamp, stamp))
	s := startSupervised(t, fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nWINDOW=50ms\nSPOOL=%s\n", src, dst, filepath.Join(t.TempDir(), "spool")))
	converge(t, src, dst)
	clitest.Eventually(t, "watching", func() bool { return strings.Contains(s.stderr.String(), "watches established") })
	must(t, os.WriteFile(f, []byte("version-2"), 0o644)) // same size
	must(t, os.Chtimes(f, stamp, stamp))                 // same mtime
	converge(t, src, dst)
}

// A target that starts refusing the password while the pipeline runs
// (rotated on the server) stops the pipeline with rsync's words, instead
// of spooling every batch in silence.
func TestRunRefusalAfterStartStopsThePipeline(t *testing.T) {
	d := newDaemon(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "before"), []byte("x"), 0o644))
	s := startSupervised(t, fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nPASSWORD_FILE=%s\nWINDOW=50ms\nSPOOL=%s\n", src, d.target(), d.passFile, filepath.Join(t.TempDir(), "spool")))
	converge(t, src, d.module)                                                   // running: the start-up resync went through
	must(t, os.WriteFile(d.secrets, []byte(user+":rotated-elsewhere\n"), 0o600)) // the daemon rereads it per connection
	must(t, os.WriteFile(filepath.Join(src, "after-rotation"), []byte("x"), 0o644))
	if code := s.wait(t); code != 1 {
		t.Fatalf("exit %d\n%s", code, s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "refuses the configuration") || !strings.Contains(s.stderr.String(), "auth failed") {
		t.Fatalf("stderr:\n%s", s.stderr)
	}
}
