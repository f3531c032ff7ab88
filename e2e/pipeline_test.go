//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

// hostileNames are created in the source; each must arrive byte for byte,
// and no command in a name may ever run.
var hostileNames = []string{
	"with space", "new\nline", `dq"uote`, "sq'uote", "$(touch PWNED)", "`touch PWNED2`",
	"-leading-dash", "#hash", ";semi", "日本語", "bad\xff\xfebyte", "*glob?[x]", "back\\slash",
}

// TestPipelineConverges runs the real pipeline against an rsync daemon
// (auth) and a local directory at once, through a workload of storms,
// renames, deletes, editor saves and hostile names.
func TestPipelineConverges(t *testing.T) {
	d := newDaemon(t)
	src := t.TempDir()
	local := t.TempDir()
	spool := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "before-start"), []byte("existing"), 0o644))
	p := startPipeline(t, nil,
		[]string{bin("inowait"), "-mr", "--resync", src},
		[]string{bin("evfilter"), "--temp"},
		[]string{bin("evbatch"), "--max-delay", "2s", "200ms"},
		[]string{bin("rpush"), "--spool", spool, "--password-file", d.passFile, "-j", "2", d.target(), local},
	)
	clitest.Eventually(t, "inowait ready", func() bool { return strings.Contains(p.stderr[0].String(), "watches established") })

	// mkdir -p storm with immediate writes
	for i := 0; i < 30; i++ {
		dir := filepath.Join(src, fmt.Sprintf("storm%d/b/c/d", i))
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "f"), []byte(fmt.Sprint(i)), 0o644))
	}
	// hostile names and a symlink
	must(t, os.Mkdir(filepath.Join(src, "names"), 0o755))
	for _, n := range hostileNames {
		must(t, os.WriteFile(filepath.Join(src, "names", n), []byte(n), 0o644))
	}
	must(t, os.Symlink("../before-start", filepath.Join(src, "names", "link")))
	// editor-style save: swap file, temp + rename
	page := filepath.Join(src, "page.html")
	must(t, os.WriteFile(page, []byte("v1"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, ".page.html.swp"), []byte("swap"), 0o600))
	must(t, os.WriteFile(page+".tmp", []byte("v2"), 0o644))
	must(t, os.Rename(page+".tmp", page))
	must(t, os.Remove(filepath.Join(src, ".page.html.swp")))
	converge(t, src, d.module, local)

	// renames of directories, deletes of files and trees, same-size rewrite
	must(t, os.Rename(filepath.Join(src, "storm1"), filepath.Join(src, "renamed1")))
	must(t, os.RemoveAll(filepath.Join(src, "storm2")))
	must(t, os.Remove(filepath.Join(src, "names", "with space")))
	must(t, os.WriteFile(page, []byte("v3"), 0o644)) // same size as v2, same second
	must(t, os.Chmod(filepath.Join(src, "names"), 0o750))
	converge(t, src, d.module, local)

	for _, pwned := range []string{"PWNED", "PWNED2"} {
		for _, dir := range []string{src, d.module, local, "."} {
			if _, err := os.Stat(filepath.Join(dir, pwned)); err == nil {
				t.Fatalf("a command in a file name ran: %s exists in %s", pwned, dir)
			}
		}
	}
	if strings.Contains(p.out.String(), `"ok":false`) {
		t.Errorf("failed results:\n%s", p.out.String())
	}
}

// TestDaemonDownThenReplay: batches for a dead daemon are retried, then
// spooled (exit 4); once it is back, failreplay converges and empties the
// spool; a second run has nothing to do.
func TestDaemonDownThenReplay(t *testing.T) {
	d := newDaemon(t)
	d.stop()
	src := t.TempDir()
	spool := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "a/b"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "a/b/f"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "bad\xffname"), []byte("y"), 0o644))
	in := fmt.Sprintf(`{"seq":1,"root":"%s/","sync":["a/","bad\udcffname"],"delete":["gone"],"events":3}`+"\n", src)
	common := []string{"--spool", spool, "--password-file", d.passFile, "--retries", "1", "--backoff", "10ms", "--contimeout", "2"}
	r := clitest.RunEnv(t, nil, in, bin("rpush"), append(common, d.target())...)
	if r.Code != 4 || !strings.Contains(r.Stdout, `"exit":10`) || !strings.Contains(r.Stdout, `"spooled":`) || !strings.Contains(r.Stderr, "rpush: hint: run failreplay") {
		t.Fatalf("daemon down: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, `"attempts":2`) {
		t.Errorf("expected a retry before spooling: %s", r.Stdout)
	}
	d.start(t)
	r = clitest.RunEnv(t, nil, "", bin("failreplay"), common...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "replayed 1 entries") {
		t.Fatalf("failreplay: exit %d stderr %s", r.Code, r.Stderr)
	}
	converge(t, src, d.module)
	entries, _ := filepath.Glob(filepath.Join(spool, "*.batch"))
	if len(entries) != 0 {
		t.Fatalf("spool not empty: %v", entries)
	}
	// --full syncs the recorded (root, target) pairs whole.
	must(t, os.WriteFile(filepath.Join(src, "only-full-sees-me"), []byte("z"), 0o644))
	r = clitest.RunEnv(t, nil, "", bin("failreplay"), append(common, "--full")...)
	if r.Code != 0 {
		t.Fatalf("failreplay --full: %d %s", r.Code, r.Stderr)
	}
	converge(t, src, d.module)
}

// TestFailureClasses: wrong password, unknown module and a 0644 password
// file are reported clearly and spooled (or refused) without retry loops.
func TestFailureClasses(t *testing.T) {
	d := newDaemon(t)
	src := t.TempDir()
	spool := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	in := fmt.Sprintf(`{"seq":1,"root":"%s/","sync":["f"],"delete":[],"events":1}`+"\n", src)

	wrong := filepath.Join(t.TempDir(), "wrong.pass")
	must(t, os.WriteFile(wrong, []byte("nope\n"), 0o600))
	start := time.Now()
	r := clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "--password-file", wrong, "--backoff", "5s", d.target())
	if r.Code != 4 || !strings.Contains(r.Stdout, `"exit":5`) || !strings.Contains(r.Stdout, `"attempts":1`) {
		t.Errorf("wrong password: exit %d stdout %s", r.Code, r.Stdout)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("an auth failure was retried with back-off")
	}

	nomod := fmt.Sprintf("rsync://%s@127.0.0.1:%d/nosuch/", user, d.port)
	r = clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "--password-file", d.passFile, nomod)
	if r.Code != 4 || !strings.Contains(r.Stdout, `"exit":5`) || !strings.Contains(r.Stdout, "Unknown module") {
		t.Errorf("unknown module: exit %d stdout %s", r.Code, r.Stdout)
	}

	loose := filepath.Join(t.TempDir(), "loose.pass")
	must(t, os.WriteFile(loose, []byte(password+"\n"), 0o644))
	r = clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "--password-file", loose, d.target())
	if r.Code != 1 || !strings.Contains(r.Stderr, "must not be other-accessible") {
		t.Errorf("0644 password file: exit %d stderr %s", r.Code, r.Stderr)
	}

	r = clitest.RunEnv(t, []string{"RSYNC_PASSWORD=" + password}, in, bin("rpush"), "--spool", spool, d.target())
	if r.Code != 0 {
		t.Errorf("RSYNC_PASSWORD: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	}

	r = clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "--rsync-opts", "-z; rm -rf /", d.target())
	if r.Code != 2 || !strings.Contains(r.Stderr, "shell syntax") {
		t.Errorf("shell syntax in --rsync-opts: exit %d stderr %s", r.Code, r.Stderr)
	}
	r = clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "--password-file", d.passFile, t.TempDir())
	if r.Code != 2 || !strings.Contains(r.Stderr, "daemon targets") {
		t.Errorf("--password-file with a local target: exit %d stderr %s", r.Code, r.Stderr)
	}
}

// TestConcurrentReplayOnce: two failreplay runs started at once replay the
// spooled entry exactly once: one holds the lock and replays it; the other
// finds the lock taken (exit 5) or, if it starts after, nothing to replay.
// A stand-in for rsync counts the runs.
func TestConcurrentReplayOnce(t *testing.T) {
	src := t.TempDir()
	dst := t.TempDir()
	spool := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	// A target that does not exist yet fails: the batch is spooled.
	missing := filepath.Join(dst, "not-yet", "deeper")
	in := fmt.Sprintf(`{"seq":1,"root":"%s/","sync":["f"],"delete":[],"events":1}`+"\n", src)
	r := clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "--retries", "0", missing)
	if r.Code != 4 {
		t.Fatalf("expected a spooled batch: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	must(t, os.MkdirAll(missing, 0o755))
	state := t.TempDir()
	counter := filepath.Join(state, "runs")
	wrapper := filepath.Join(state, "rsync")
	must(t, os.WriteFile(wrapper, []byte("#!/bin/sh\necho run >> \"$INOPIPE_TEST_RUNS\"\nsleep 0.2\nexec rsync \"$@\"\n"), 0o755))
	cmds := make([]*exec.Cmd, 2)
	for i := range cmds {
		cmds[i] = exec.Command(bin("failreplay"), "--spool", spool, "--rsync", wrapper)
		cmds[i].Env = append(os.Environ(), "INOPIPE_TEST_RUNS="+counter)
	}
	for _, c := range cmds {
		must(t, c.Start())
	}
	codes := map[int]int{}
	for _, c := range cmds {
		c.Wait()
		codes[c.ProcessState.ExitCode()]++
	}
	runs, _ := os.ReadFile(counter)
	if n := strings.Count(string(runs), "run"); n != 1 || codes[0] < 1 || codes[0]+codes[5] != 2 {
		t.Fatalf("%d rsync runs (want 1), exit codes %v (want one 0, the other 0 or 5)", n, codes)
	}
	converge(t, src, missing)
}
