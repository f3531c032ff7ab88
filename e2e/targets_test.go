//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
)

// batchLine renders one batch for rpush's stdin with the real encoder, so
// hostile names are escaped exactly as evbatch would.
func batchLine(seq uint64, root string, sync, del []string) string {
	b := event.Batch{Seq: seq, Root: root + "/", Sync: sync, Delete: del, Events: len(sync) + len(del)}
	if b.Sync == nil {
		b.Sync = []string{}
	}
	if b.Delete == nil {
		b.Delete = []string{}
	}
	return string(event.AppendBatch(nil, &b))
}

// fillHostile creates a tree of hostile names, a symlink, a nested dir and
// a dir that will be renamed; it returns the sync list for it.
func fillHostile(t testing.TB, src string) []string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(src, "names"), 0o755))
	for _, n := range hostileNames {
		must(t, os.WriteFile(filepath.Join(src, "names", n), []byte(n), 0o644))
	}
	must(t, os.Symlink("../names/with space", filepath.Join(src, "names", "link")))
	must(t, os.MkdirAll(filepath.Join(src, "tree/a/b"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "tree/a/b/f"), []byte("deep"), 0o644))
	must(t, os.MkdirAll(filepath.Join(src, "old-name/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "old-name/sub/g"), []byte("g"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "plain"), []byte("v1"), 0o644))
	return []string{"names/", "tree/", "old-name/", "plain"}
}

// mutate deletes a file, a whole tree and renames a dir, rewrites a file
// and changes a directory's mode only; it returns the batch lists for it.
func mutate(t testing.TB, src string) (sync, del []string) {
	t.Helper()
	must(t, os.Remove(filepath.Join(src, "names", "#hash")))
	must(t, os.RemoveAll(filepath.Join(src, "tree")))
	must(t, os.Rename(filepath.Join(src, "old-name"), filepath.Join(src, "new-name")))
	must(t, os.WriteFile(filepath.Join(src, "plain"), []byte("v2"), 0o644))
	must(t, os.Chmod(filepath.Join(src, "names"), 0o750))
	return []string{"new-name/", "plain", "names"}, []string{"names/#hash", "tree/a/b/f", "tree/a/b", "tree/a", "tree", "old-name"}
}

func noCommandRan(t testing.TB, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		for _, n := range []string{"PWNED", "PWNED2"} {
			if _, err := os.Stat(filepath.Join(d, n)); err == nil {
				t.Fatalf("a command in a file name ran: %s exists", filepath.Join(d, n))
			}
		}
	}
}

// TestFilterModeOldReceiver runs rpush against Debian 12's rsync 3.2.7
// security update as the daemon: its receiver rejects
// --delete-missing-args deletions (exit 2, "invalid file mode 00", nothing
// applied; upstream #910). rpush must notice, switch that target to filter
// mode, and still converge — deletions, renames, hostile names included —
// while a current daemon beside it stays in list mode.
func TestFilterModeOldReceiver(t *testing.T) {
	cache, err := filepath.Abs("../.cache/old-rsync")
	must(t, err)
	out, err := exec.Command("../scripts/old-rsync.sh", cache).Output()
	if err != nil {
		t.Fatalf("fetch rsync 3.2.7-1+deb12u5+ (scripts/old-rsync.sh): %v", err)
	}
	old := newDaemonWith(t, strings.TrimSpace(string(out)), "")
	cur := newDaemon(t)
	src := t.TempDir()
	spool := t.TempDir()
	in := batchLine(1, src, fillHostile(t, src), nil)
	s, d := mutate(t, src)
	in += batchLine(2, src, s, d)
	oldTarget := fmt.Sprintf("rsync://%s@127.0.0.1:%d/data/", user, old.port)
	r := clitest.RunEnv(t, []string{"RSYNC_PASSWORD=" + password}, in, bin("rpush"), "--spool", spool, oldTarget, cur.target())
	if r.Code != 0 {
		t.Fatalf("rpush: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "switching this target to filter mode") || strings.Count(r.Stderr, "filter mode") != 1 {
		t.Errorf("expected one filter-mode switch, for the old daemon only:\n%s", r.Stderr)
	}
	converge(t, src, old.module, cur.module)
	noCommandRan(t, src, old.module, cur.module, ".")
}

// TestRefusedDeleteDaemon: a daemon with `refuse options = delete*` cannot
// delete at all; rpush spools with a hint naming the way out, and
// --delete=false delivers everything but the deletions.
func TestRefusedDeleteDaemon(t *testing.T) {
	d := newDaemonWith(t, "rsync", "    refuse options = delete*")
	src := t.TempDir()
	spool := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	env := []string{"RSYNC_PASSWORD=" + password}
	r := clitest.RunEnv(t, env, batchLine(1, src, []string{"f"}, []string{"gone"}), bin("rpush"), "--spool", spool, d.target())
	if r.Code != 4 || !strings.Contains(r.Stdout, "--delete=false") {
		t.Fatalf("refused delete: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	r = clitest.RunEnv(t, env, batchLine(2, src, []string{"f"}, []string{"gone"}), bin("rpush"), "--spool", t.TempDir(), "--delete=false", d.target())
	if r.Code != 0 {
		t.Fatalf("--delete=false: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	converge(t, src, d.module)
}

// sshd is an OpenSSH server on 127.0.0.1 with its own host key, config and
// authorized key, started by the test on a free port.
type sshd struct {
	port  int
	key   string // client private key
	cmd   *exec.Cmd
	login string
}

func newSSHD(t testing.TB) *sshd {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("sshd not installed (make test installs openssh-server): %v", err)
	}
	dir := t.TempDir()
	for _, k := range []string{"hostkey", "id"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "id.pub"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600))
	u, err := osuser.Current()
	must(t, err)
	s := &sshd{port: freePort(t), key: filepath.Join(dir, "id"), login: u.Username}
	conf := filepath.Join(dir, "sshd_config")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/hostkey
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel ERROR
`, s.port, dir, dir, dir)), 0o600))
	if os.Geteuid() == 0 {
		// the privilege separation directory Debian's init script makes
		must(t, os.MkdirAll("/run/sshd", 0o755))
	}
	if out, err := exec.Command(bin, "-t", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v %s", err, out)
	}
	s.cmd = exec.Command(bin, "-D", "-e", "-f", conf)
	s.cmd.Stderr = os.Stderr
	must(t, s.cmd.Start())
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	clitest.Eventually(t, "sshd accepts a login", func() bool {
		return exec.Command("ssh", append(s.sshArgs(), s.login+"@127.0.0.1", "true")...).Run() == nil
	})
	return s
}

func (s *sshd) sshArgs() []string {
	return []string{"-p", fmt.Sprint(s.port), "-i", s.key, "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}
}

// rsh is the -e value for rpush (split by rsync, not by a shell).
func (s *sshd) rsh() string { return "ssh " + strings.Join(s.sshArgs(), " ") }

// TestSSHTarget: the ssh target form ([user@]host:/path) against a real
// sshd: hostile names, deletions, a rename and a mode change arrive; a
// dead port is retried (exit 255) and spooled, and failreplay delivers it
// with the same -e.
func TestSSHTarget(t *testing.T) {
	s := newSSHD(t)
	src := t.TempDir()
	dst := filepath.Join(t.TempDir(), "replica dir") // a space in the remote path, too
	must(t, os.Mkdir(dst, 0o755))
	spool := t.TempDir()
	target := s.login + "@127.0.0.1:" + dst
	in := batchLine(1, src, fillHostile(t, src), nil)
	r := clitest.RunEnv(t, nil, in, bin("rpush"), "--spool", spool, "-e", s.rsh(), target)
	if r.Code != 0 {
		t.Fatalf("rpush: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	converge(t, src, dst)
	sy, del := mutate(t, src)
	r = clitest.RunEnv(t, nil, batchLine(2, src, sy, del), bin("rpush"), "--spool", spool, "-e", s.rsh(), target)
	if r.Code != 0 {
		t.Fatalf("rpush: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	converge(t, src, dst)
	noCommandRan(t, src, dst, ".")

	// sshd down: transient (retried), then spooled. rsync 3.5.0 reports a
	// refused ssh connection as 12 (stream closed), not ssh's 255.
	must(t, os.WriteFile(filepath.Join(src, "while-down"), []byte("x"), 0o644))
	s.cmd.Process.Kill()
	s.cmd.Wait()
	r = clitest.RunEnv(t, nil, batchLine(3, src, []string{"while-down"}, nil), bin("rpush"),
		"--spool", spool, "-e", s.rsh(), "--retries", "1", "--backoff", "10ms", "--contimeout", "2", target)
	var rec event.Record
	err := event.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &rec)
	if res := rec.Result; err != nil || r.Code != 4 || (res.Exit != 12 && res.Exit != 255) || res.Attempts != 2 {
		t.Fatalf("sshd down: exit %d (%v)\nstdout %s\nstderr %s", r.Code, err, r.Stdout, r.Stderr)
	}
	s2 := newSSHDOnPort(t, s)
	r = clitest.RunEnv(t, nil, "", bin("failreplay"), "--spool", spool, "-e", s2.rsh())
	if r.Code != 0 {
		t.Fatalf("failreplay: exit %d\nstderr %s", r.Code, r.Stderr)
	}
	converge(t, src, dst)
}

// newSSHDOnPort restarts a stopped sshd with the same config and keys.
func newSSHDOnPort(t testing.TB, s *sshd) *sshd {
	t.Helper()
	s.cmd = exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	s.cmd.Stderr = os.Stderr
	must(t, s.cmd.Start())
	clitest.Eventually(t, "sshd back", func() bool {
		return exec.Command("ssh", append(s.sshArgs(), s.login+"@127.0.0.1", "true")...).Run() == nil
	})
	return s
}

// TestKill9DuringSpoolWrite kills rpush with SIGKILL while it is spooling
// batch after batch (its target is missing), at several points. Whatever
// the kill interrupted — a half-written temp file, a rename not yet done —
// must not block failreplay: every complete entry is replayed once the
// target exists, and the spool ends empty with nothing quarantined.
func TestKill9DuringSpoolWrite(t *testing.T) {
	for _, after := range []int{1, 40, 150} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			src := t.TempDir()
			spool := t.TempDir()
			target := filepath.Join(t.TempDir(), "not-yet")
			const n = 2000
			var in strings.Builder
			for i := range n {
				name := fmt.Sprintf("f%04d", i)
				must(t, os.WriteFile(filepath.Join(src, name), []byte(name), 0o644))
				in.WriteString(batchLine(uint64(i+1), src, []string{name}, nil))
			}
			cmd := exec.Command(bin("rpush"), "--spool", spool, "--retries", "0", "--quiet", target)
			cmd.Stdin = strings.NewReader(in.String())
			must(t, cmd.Start())
			entries := func() []string {
				m, _ := filepath.Glob(filepath.Join(spool, "*.batch"))
				return m
			}
			clitest.Eventually(t, fmt.Sprintf("%d spooled entries", after), func() bool { return len(entries()) >= after })
			cmd.Process.Kill()
			cmd.Wait()
			spooled := entries()
			// Each entry names its file; collect what failreplay must deliver.
			var want []string
			for _, e := range spooled {
				b, err := os.ReadFile(e)
				must(t, err)
				for i := range n {
					if name := fmt.Sprintf("f%04d", i); strings.Contains(string(b), `"`+name+`"`) {
						want = append(want, name)
						break
					}
				}
			}
			if len(want) != len(spooled) {
				t.Fatalf("%d entries but %d named files", len(spooled), len(want))
			}
			must(t, os.MkdirAll(target, 0o755))
			r := clitest.RunEnv(t, nil, "", bin("failreplay"), "--spool", spool)
			if r.Code != 0 {
				t.Fatalf("failreplay after kill -9: exit %d\n%s", r.Code, r.Stderr)
			}
			for _, name := range want {
				if _, err := os.Stat(filepath.Join(target, name)); err != nil {
					t.Errorf("spooled %s not replayed: %v", name, err)
				}
			}
			if left := entries(); len(left) != 0 {
				t.Errorf("entries left after replay: %v", left)
			}
			if q, _ := os.ReadDir(filepath.Join(spool, "quarantine")); len(q) != 0 {
				t.Errorf("quarantined after a kill -9: %v", q)
			}
			t.Logf("killed after %d entries; %d replayed", after, len(want))
		})
	}
}

// TestSlowTargetNeverHoldsOthers: one target accepts connections and never
// answers (a hung daemon). The local target beside it gets every batch at
// once; the hung one's queue fills (--queue) and further batches are
// spooled for it. SIGTERM then stops rpush within --grace: the stuck rsync
// is killed and its batch spooled with the queued ones, exit 0 (a clean
// stop: nothing is lost, all of it is in the spool).
func TestSlowTargetNeverHoldsOthers(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer hung.Close()
	go func() {
		var conns []net.Conn
		for {
			c, err := hung.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	src := t.TempDir()
	local := t.TempDir()
	spool := t.TempDir()
	const n, queue = 12, 3
	slow := fmt.Sprintf("rsync://u@127.0.0.1:%d/data/", hung.Addr().(*net.TCPAddr).Port)
	cmd := exec.Command(bin("rpush"), "--spool", spool, "--queue", fmt.Sprint(queue), "--grace", "1s", "--timeout", "600", slow, local)
	cmd.Env = append(os.Environ(), "RSYNC_PASSWORD=x")
	stdin, err := cmd.StdinPipe()
	must(t, err)
	out, errb := &clitest.Buffer{}, &clitest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	must(t, cmd.Start())
	// results counts result lines per target and outcome.
	results := func(target string, ok bool) int {
		c := 0
		for _, l := range strings.Split(out.String(), "\n") {
			var rec event.Record
			if event.Unmarshal([]byte(l), &rec) == nil && rec.Result.Target == target && rec.Result.OK == ok {
				c++
			}
		}
		return c
	}
	// One batch at a time, as evbatch would send them: each reaches the
	// local target while the hung one holds its first batch.
	for i := range n {
		name := fmt.Sprintf("f%02d", i)
		must(t, os.WriteFile(filepath.Join(src, name), []byte(name), 0o644))
		_, err = stdin.Write([]byte(batchLine(uint64(i+1), src, []string{name}, nil)))
		must(t, err)
		clitest.Eventually(t, fmt.Sprintf("batch %d at the local target", i+1), func() bool { return results(local, true) == i+1 })
	}
	converge(t, src, local)
	if got := strings.Count(out.String(), "target queue full"); got != n-queue-1 {
		t.Errorf("%d queue-full results for the hung target, want %d", got, n-queue-1)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rpush after SIGTERM: %v\n%s", err, errb)
		}
	case <-time.After(clitest.Timeout()):
		cmd.Process.Kill()
		t.Fatalf("rpush did not stop within its grace period")
	}
	entries, _ := filepath.Glob(filepath.Join(spool, "*.batch"))
	if len(entries) != n {
		t.Fatalf("%d batches spooled for the hung target, want %d\nstdout %s\nstderr %s", len(entries), n, out, errb)
	}
	if !strings.Contains(errb.String(), fmt.Sprintf("%d batch(es) spooled", n)) {
		t.Errorf("stderr: %s", errb)
	}
	stdin.Close()
}

// TestStatusFile: --status-file is rewritten while rpush runs and at exit,
// per target, in JSON or (for *.prom) Prometheus text.
func TestStatusFile(t *testing.T) {
	d := newDaemon(t)
	d.stop() // a dead target beside a good one
	src, local, spool := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	in := batchLine(1, src, []string{"f"}, nil) + batchLine(2, src, []string{"f"}, nil)
	dir := t.TempDir()
	for _, name := range []string{"rpush.json", "rpush.prom"} {
		file := filepath.Join(dir, name)
		r := clitest.RunEnv(t, []string{"RSYNC_PASSWORD=" + password}, in, bin("rpush"), "--spool", spool, "--retries", "1",
			"--backoff", "10ms", "--status-file", file, "--status-interval", "50ms", d.target(), local)
		if r.Code != 4 {
			t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
		}
		b, err := os.ReadFile(file)
		must(t, err)
		got := string(b)
		var want []string
		if name == "rpush.json" {
			want = []string{`"batches_ok": 2`, `"batches_spooled": 2`, `"retries": 2`, `"spool_entries": 2`, `Connection refused`, `"last_success": null`}
		} else {
			want = []string{fmt.Sprintf("inopipe_batches_ok_total{target=%q} 2", local), fmt.Sprintf("inopipe_batches_spooled_total{target=%q} 2", d.target()), "inopipe_spool_entries"}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %s:\n%s", name, w, got)
			}
		}
		spool = t.TempDir()
	}
}

// Issue 14: three classic tutorial loops, run unchanged with inowait in
// place of inotifywait (a PATH entry named inotifywait), converge against
// an rsync daemon on 127.0.0.1: inowait is a drop-in.
func TestTutorialLoopsWithInowait(t *testing.T) {
	shim := t.TempDir()
	must(t, os.Symlink(bin("inowait"), filepath.Join(shim, "inotifywait")))
	for _, loop := range []struct{ name, script string }{
		{"full rsync per event", `inotifywait -mrq --format '%w%f' -e create,delete,moved_to,close_write "$SRC" |
	while read f; do rsync -az --delete "$SRC/" "$TARGET"; done`},
		{"options after the path, timefmt", `inotifywait -mrq "$SRC" --timefmt '%d/%m/%y %H:%M' --format '%T %w%f %e' -e close_write,delete,create,attrib |
	while read date time file event; do rsync -az --delete "$SRC/" "$TARGET"; done`},
		{"per file, NUL-separated", `cd "$SRC" && inotifywait -mrq -e close_write,moved_to,create,delete --format '%w%f%0' --no-newline . |
	while IFS= read -r -d '' f; do rsync -az --delete "$SRC/" "$TARGET"; done`},
	} {
		t.Run(loop.name, func(t *testing.T) {
			d := newDaemon(t)
			src := t.TempDir()
			cmd := exec.Command("bash", "-c", loop.script)
			cmd.Env = append(os.Environ(), "PATH="+shim+":"+os.Getenv("PATH"), "SRC="+src, "TARGET="+d.target(), "RSYNC_PASSWORD="+password)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr clitest.Buffer
			cmd.Stderr = &stderr
			must(t, cmd.Start())
			defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
			// The loop has no readiness line (-q): write probes until a
			// first change has arrived, then the rest. Each probe is a new
			// file, never rewritten: truncating one while the loop's rsync
			// read it made rsync fail ("read errors mapping ... No data
			// available"), a flake of the test, not of the loop.
			var probes []string
			clitest.Eventually(t, "the loop's first sync", func() bool {
				p := filepath.Join(src, fmt.Sprintf("probe%d", len(probes)))
				os.WriteFile(p, []byte("p"), 0o644)
				probes = append(probes, p)
				for _, p := range probes {
					if _, err := os.Stat(filepath.Join(d.module, filepath.Base(p))); err == nil {
						return true
					}
				}
				return false
			})
			must(t, os.MkdirAll(filepath.Join(src, "www/a/b"), 0o755))
			must(t, os.WriteFile(filepath.Join(src, "www/a/b/index.html"), []byte("<h1>"), 0o644))
			must(t, os.WriteFile(filepath.Join(src, "with space.txt"), []byte("s"), 0o644))
			for _, p := range probes {
				must(t, os.Remove(p))
			}
			converge(t, src, d.module)
			if strings.Contains(stderr.String(), "error") {
				t.Fatalf("stderr:\n%s", stderr.String())
			}
		})
	}
}
