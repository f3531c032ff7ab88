//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

var binDir string

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("rsync"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: rsync not installed (make test installs it)")
		os.Exit(1)
	}
	clitest.Main(m, &binDir, "inowait", "evfilter", "evbatch", "rpush", "failreplay", "inopipe-run")
}

func bin(name string) string { return filepath.Join(binDir, name) }

// daemon is an rsync --daemon on 127.0.0.1 with one auth module, "data".
type daemon struct {
	dir, module, conf, secrets string
	passFile, binary           string
	port                       int
	cmd                        *exec.Cmd
	log                        string
}

const (
	user     = "inopipe"
	password = "s3cret-pass"
)

func newDaemon(t testing.TB) *daemon { return newDaemonWith(t, "rsync", "") }

// newDaemonWith starts binary as the daemon, with extra lines in the
// module's section (e.g. "refuse options = delete*").
func newDaemonWith(t testing.TB, binary, moduleExtra string) *daemon {
	t.Helper()
	base := t.TempDir()
	d := &daemon{dir: base, module: filepath.Join(base, "module"), binary: binary}
	must(t, os.Mkdir(d.module, 0o755))
	d.secrets = filepath.Join(base, "secrets")
	must(t, os.WriteFile(d.secrets, []byte(user+":"+password+"\n"), 0o600))
	d.passFile = filepath.Join(base, "client.pass")
	must(t, os.WriteFile(d.passFile, []byte(password+"\n"), 0o600))
	d.log = filepath.Join(base, "rsyncd.log")
	d.port = freePort(t)
	d.conf = filepath.Join(base, "rsyncd.conf")
	conf := fmt.Sprintf(`pid file = %s/rsyncd.pid
log file = %s
address = 127.0.0.1
port = %d
use chroot = no
munge symlinks = no
[data]
    path = %s
    read only = no
    auth users = %s
    secrets file = %s
    uid = %d
    gid = %d
%s
`, base, d.log, d.port, d.module, user, d.secrets, os.Getuid(), os.Getgid(), moduleExtra)
	must(t, os.WriteFile(d.conf, []byte(conf), 0o644))
	d.start(t)
	t.Cleanup(func() { d.stop() })
	return d
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (d *daemon) start(t testing.TB) {
	t.Helper()
	d.cmd = exec.Command(d.binary, "--daemon", "--no-detach", "--config="+d.conf)
	d.cmd.Stderr = os.Stderr
	must(t, d.cmd.Start())
	clitest.Eventually(t, "rsync daemon listening", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.port), 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// childCPU is the CPU seconds of the daemon's reaped children (each
// connection's receiver): cutime + cstime.
func (d *daemon) childCPU() float64 {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	f := procStat(d.cmd.Process.Pid)
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseFloat(f[13], 64)
	cs, _ := strconv.ParseFloat(f[14], 64)
	return (cu + cs) / 100 // USER_HZ
}

// procStat is /proc/PID/stat split into fields after the command name
// (f[0] is the state, f[11] utime, f[13] cutime, f[21] rss), nil when the
// process is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

func (d *daemon) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
		d.cmd = nil
	}
}

func (d *daemon) target() string {
	return fmt.Sprintf("rsync://%s@127.0.0.1:%d/data/", user, d.port)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pipeline is several processes joined by pipes (no shell in between).
type pipeline struct {
	cmds   []*exec.Cmd
	stderr []*clitest.Buffer
	out    *clitest.Buffer
	done   chan struct{}
}

func startPipeline(t testing.TB, env []string, stages ...[]string) *pipeline {
	t.Helper()
	p := &pipeline{out: &clitest.Buffer{}, done: make(chan struct{})}
	var prev io.Reader
	for i, argv := range stages {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		eb := &clitest.Buffer{}
		cmd.Stderr = eb
		p.stderr = append(p.stderr, eb)
		if prev != nil {
			cmd.Stdin = prev
		}
		if i == len(stages)-1 {
			cmd.Stdout = p.out
		} else {
			r, err := cmd.StdoutPipe()
			must(t, err)
			prev = r
		}
		p.cmds = append(p.cmds, cmd)
	}
	for _, c := range p.cmds {
		must(t, c.Start())
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM to the first stage; the rest drain and exit on EOF.
func (p *pipeline) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	if len(p.cmds) == 0 {
		return
	}
	p.cmds[0].Process.Signal(syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		for _, c := range p.cmds {
			c.Wait()
		}
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(clitest.Timeout()):
		for _, c := range p.cmds {
			c.Process.Kill()
		}
		t.Errorf("pipeline did not stop after SIGTERM")
	}
}

func diffTrees(a, b map[string]string) string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var d []string
	for _, k := range keys {
		if a[k] != b[k] {
			d = append(d, fmt.Sprintf("%q: source %q target %q", k, a[k], b[k]))
		}
		if len(d) > 20 {
			break
		}
	}
	return strings.Join(d, "\n")
}

// converge waits until every target equals src (metadata, then content).
func converge(t testing.TB, src string, targets ...string) {
	t.Helper()
	deadline := time.Now().Add(clitest.Timeout())
	for _, tg := range targets {
		if _, ok := waitConverged(src, tg, time.Until(deadline)); !ok {
			d := diffTrees(meta(src), meta(tg))
			if d == "" {
				d = "same names and metadata, different contents"
			}
			t.Fatalf("%s did not converge:\n%s", tg, d)
		}
	}
}

// meta describes a tree without reading file contents (cheap to poll):
// per relative path, mode (type and permissions), size and mtime of
// files, symlink targets.
func meta(root string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) != nil {
			return nil
		}
		desc := fmt.Sprintf("mode=%o", st.Mode)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			desc += fmt.Sprintf(" size=%d mtime=%d", st.Size, st.Mtim.Sec)
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	return out
}

// sameContent compares the regular files listed in m byte for byte (by
// hash).
func sameContent(src, dst string, m map[string]string) bool {
	for rel, desc := range m {
		if !strings.HasPrefix(desc, "mode=100") {
			continue
		}
		a, err1 := os.ReadFile(filepath.Join(src, rel))
		b, err2 := os.ReadFile(filepath.Join(dst, rel))
		if err1 != nil || err2 != nil || sha256.Sum256(a) != sha256.Sum256(b) {
			return false
		}
	}
	return true
}

// waitConverged polls until dst equals src or the limit passes; it
// returns when the trees were seen equal (the end of the metadata walk
// that the content check then confirmed). The source has stopped changing
// (the invariant's premise), so it is described once: each poll walks
// only the target, which halves the poll's cost (CPU taken from the
// solution) and the time between polls on a large tree.
func waitConverged(src, dst string, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	m := meta(src)
	for {
		equal := maps.Equal(m, meta(dst))
		// The target was equal no later than the end of the walk that saw
		// it so (the conservative end: a timestamp taken before the walk
		// credited a solution with the walk's duration, 0.3 s on 50,000
		// files, and reported a lag of 0.00 s).
		at := time.Now()
		if equal && sameContent(src, dst, m) {
			return at, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
