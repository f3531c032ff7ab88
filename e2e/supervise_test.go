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

	"github.com/inopipe/inopipe/internal/clitest"
)

// supervised is scripts/inopipe-run running one pipeline from an env file.
type supervised struct {
	cmd    *exec.Cmd
	stderr *clitest.Buffer
	done   chan struct{}
}

func startSupervised(t *testing.T, env string) *supervised {
	t.Helper()
	f := filepath.Join(t.TempDir(), "test.env")
	must(t, os.WriteFile(f, []byte(env+"BIN="+binDir+"\nSTOP_TIMEOUT=20\n"), 0o644))
	s := &supervised{cmd: exec.Command("../scripts/inopipe-run", f), stderr: &clitest.Buffer{}, done: make(chan struct{})}
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
func (s *supervised) stages(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	var walk func(pid int)
	walk = func(pid int) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
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

func (s *supervised) wait(t *testing.T) int {
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
			startSupervised(t, env)
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
	must(t, os.WriteFile(f, []byte("SOURCE=/tmp\nTARGETS=$(touch PWNED)\nTARGET=x\n"), 0o644))
	r := clitest.Run(t, "", "../scripts/inopipe-run", f)
	if r.Code != 2 || !strings.Contains(r.Stderr, "bad.env:3: unknown setting TARGET") {
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
	run := filepath.Join(dir, "inopipe-run")
	b, err := os.ReadFile("../scripts/inopipe-run")
	must(t, err)
	must(t, os.WriteFile(run, b, 0o755))
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
// tool's own flags.
func TestInstallAndCompletion(t *testing.T) {
	dest := t.TempDir()
	out, err := exec.Command("make", "-s", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/usr").CombinedOutput()
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
