//go:build e2e

package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

// The acceptance harness: a solution (bench/solutions/*.sh) replicates a
// source tree to an auth rsync daemon on 127.0.0.1 through a workload; the
// harness waits until the target equals the source (names, types, sizes,
// mtimes, modes, symlink targets, then content hashes) and reports
// convergence time from workload start, lag after workload end, CPU
// seconds and peak RSS of the solution's process group.
//
// make test runs every workload once at a small size for inopipe (which
// must converge on all of them) and the burst for every solution (to keep
// the scripts honest); make bench runs the whole matrix at full size,
// as Go benchmarks (BenchmarkSolutions), medians of -count runs, into bench/SOLUTIONS.md.

const window = 200 * time.Millisecond

var solutions = []string{"inopipe", "lsyncd", "classic", "perfile"}

// solution is one running solution: a process group.
type solution struct {
	name    string
	cmd     *exec.Cmd
	env     []string
	stderr  *clitest.Buffer
	cpu     float64 // seconds, sampled over the group
	peakRSS int64   // KiB, sum over the group, peak of samples
	peakBy  string  // the members' RSS at that peak (describe)
	// CPU and peak RSS of an earlier incarnation (kill -9 and restart),
	// (the sampler never touches them)
	carriedCPU float64
	carriedRSS int64
	done       chan struct{}
	stop       chan struct{}
	sampled    chan struct{}
}

type setup struct {
	d     *daemon
	src   string
	spool string
	cwd   string // where the solution runs: a command in a name would land here
	jobs  int
	user  *unprivileged // run the solution as this user (nil: as the test)
}

// unprivileged is what a solution needs to run as another user: its uid
// and gid, and copies of the scripts, binaries and password file it can
// reach (the checkout and the test's own files may sit under 0700 dirs).
type unprivileged struct {
	cred     *syscall.Credential
	dir      string // scripts and binaries, world-readable
	passFile string // owned by the user, 0600
}

// asNobody prepares s to run its solution as the user nobody: needs root,
// skipped otherwise.
func asNobody(t testing.TB, s *setup) {
	t.Helper()
	u, err := osuser.Lookup("nobody")
	if err != nil || os.Geteuid() != 0 {
		t.Skipf("running a watcher as an unprivileged user needs root and a user nobody (%v)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	un := &unprivileged{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, dir: t.TempDir()}
	// t.TempDir's dirs (and their common parent) are 0700: open the way to
	// the source and the copies, hand the spool and cwd over.
	for _, d := range []string{filepath.Dir(s.src), s.src, un.dir} {
		must(t, os.Chmod(d, 0o755))
	}
	for _, d := range []string{s.spool, s.cwd} {
		must(t, os.Chown(d, uid, gid))
	}
	scripts, _ := filepath.Glob("../bench/solutions/*.sh")
	progs, _ := filepath.Glob(filepath.Join(binDir, "*"))
	for _, f := range append(scripts, progs...) {
		b, err := os.ReadFile(f)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(un.dir, filepath.Base(f)), b, 0o755))
	}
	un.passFile = filepath.Join(s.spool, "rsync.pass")
	must(t, os.WriteFile(un.passFile, []byte(password+"\n"), 0o600))
	must(t, os.Chown(un.passFile, uid, gid))
	s.user = un
}

func (s *setup) start(t testing.TB, name string) *solution {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("../bench/solutions", name+".sh"))
	must(t, err)
	bins, passFile := binDir, s.d.passFile
	if s.user != nil {
		script, bins, passFile = filepath.Join(s.user.dir, name+".sh"), s.user.dir, s.user.passFile
	}
	sol := &solution{name: name, stderr: &clitest.Buffer{}, done: make(chan struct{}), stop: make(chan struct{}), sampled: make(chan struct{})}
	sol.env = append(os.Environ(),
		"SRC="+s.src, "TARGET="+s.d.target(), "PASSFILE="+passFile, "RSYNC_PASSWORD="+password,
		"WINDOW="+window.String(), fmt.Sprintf("WINDOW_S=%g", window.Seconds()), "JOBS="+strconv.Itoa(s.jobs),
		"SPOOL="+s.spool, "BIN="+bins)
	sol.cmd = exec.Command(script)
	sol.cmd.Env, sol.cmd.Dir, sol.cmd.Stderr = sol.env, s.cwd, sol.stderr
	sol.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.user != nil {
		sol.cmd.SysProcAttr.Credential = s.user.cred
	}
	must(t, sol.cmd.Start())
	go sol.sample()
	t.Cleanup(func() { sol.kill() })
	ndirs := 0
	filepath.WalkDir(s.src, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			ndirs++
		}
		return nil
	})
	clitest.Eventually(t, name+" watching every directory", func() bool { return sol.watches() >= ndirs })
	sol.settle(t)
	return sol
}

// settle waits until the solution has finished what it does at start
// (inopipe's --resync batch, lsyncd's startup rsync), so that a workload
// is not merged into it: no rsync in the group and no CPU used for
// 2×window+100 ms (longer than a debounce window, so a batch still held
// by evbatch shows up as CPU before the wait ends).
func (s *solution) settle(t testing.TB) {
	t.Helper()
	quiet := 2*window + 100*time.Millisecond
	cpu, since := -1.0, time.Now()
	clitest.Eventually(t, s.name+" idle after its start", func() bool {
		if c, _ := s.usage(); s.member("rsync") != 0 || c != cpu {
			cpu, since = c, time.Now()
		}
		return time.Since(since) >= quiet
	})
}

// members lists the pids of the solution's process group.
func (s *solution) members() []int {
	pgid := s.cmd.Process.Pid
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// member is the pid of a group member named comm, 0 if none.
func (s *solution) member(comm string) int {
	for _, pid := range s.members() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) == comm {
			return pid
		}
	}
	return 0
}

// watches counts inotify watches held by the group.
func (s *solution) watches() int {
	n := 0
	for _, pid := range s.members() {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
		for _, fd := range fds {
			b, _ := os.ReadFile(fd)
			n += bytes.Count(b, []byte("inotify wd:"))
		}
	}
	return n
}

// usage reads the group's CPU seconds (own + reaped children) and
// resident size (KiB) from /proc.
func (s *solution) usage() (cpu float64, rssKiB int64) {
	cpu, rss := s.usageBy()
	return cpu, total(rss)
}

// total is the group's resident size (KiB).
func total(rss []memberRSS) (kib int64) {
	for _, m := range rss {
		kib += m.kib
	}
	return kib
}

// memberRSS is one member's resident size.
type memberRSS struct {
	pid int
	kib int64
}

// usageBy is usage with each member's resident size.
func (s *solution) usageBy() (cpu float64, rss []memberRSS) {
	hz := 100.0 // USER_HZ on Linux
	for _, pid := range s.members() {
		if f := procStat(pid); len(f) > 21 {
			for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
				v, _ := strconv.ParseFloat(f[i], 64)
				cpu += v / hz
			}
			pages, _ := strconv.ParseInt(f[21], 10, 64)
			rss = append(rss, memberRSS{pid, pages * int64(os.Getpagesize()) / 1024})
		}
	}
	return cpu, rss
}

// describe names the members and splits each one's resident size into
// anonymous memory (heap, stacks, runtime) and file pages (its binary and
// libraries): "comm KiB (anon KiB), ...". Read only at a new peak, not at
// every sample.
func describe(rss []memberRSS) string {
	parts := make([]string, len(rss))
	for i, m := range rss {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.pid))
		parts[i] = fmt.Sprintf("%s %d", strings.TrimSpace(string(comm)), m.kib)
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.pid))
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "RssAnon:" {
				parts[i] += " (anon " + f[1] + ")"
			}
		}
	}
	return strings.Join(parts, ", ")
}

// sample keeps the peak of usage until the solution is killed; cpu and
// peakRSS are read only after that (kill waits for sampled).
func (s *solution) sample() {
	defer close(s.sampled)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cpu, members := s.usageBy()
		rss := total(members)
		s.cpu = max(s.cpu, cpu)
		if rss > s.peakRSS {
			s.peakRSS, s.peakBy = rss, describe(members)
		}
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// kill stops the whole group (as systemd would) and waits for it.
func (s *solution) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	close(s.stop)
	<-s.sampled
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	w := make(chan struct{})
	go func() { s.cmd.Wait(); close(w) }()
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-w
	}
	// stragglers that left the script (rsync children)
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// killStage kill -9s the group member named comm (one pipeline stage).
func (s *solution) killStage(t testing.TB, comm string) {
	t.Helper()
	if pid := s.member(comm); pid != 0 {
		must(t, syscall.Kill(pid, syscall.SIGKILL))
		return
	}
	t.Fatalf("%s: no process %s in the group", s.name, comm)
}

// outcome of one (solution, workload) run.
type outcome struct {
	converged     bool
	converge, lag time.Duration
	cpu           float64
	recvCPU       float64 // the rsync daemon's children (the receivers), from the change to convergence
	rssKiB        int64
	rssBy         string // the members at the peak (describe)
	note          string
}

// workload prepares the source (before the solution starts) and then
// changes it; it may stop/start the daemon or the solution.
type workload struct {
	name    string
	prepare func(t testing.TB, src string, n int)
	run     func(t testing.TB, e *env, n int)
	small   int // size in make test
	full    int // size in make bench
	// queueLimit > 0: the solution runs as the user nobody and is started
	// with fs.inotify.max_queued_events lowered to this.
	queueLimit int
	// newTree: run writes a new tree into an empty source (and uses only
	// e.src): BenchmarkSolutions anchors it with one ideal rsync -r.
	newTree bool
}

// env is what a workload can act on.
type env struct {
	setup
	sol  *solution
	name string
}

// writeFile writes size pseudo-random bytes from seed: incompressible, as
// the images and archives of a real burst are (a repeating pattern made
// rsync -z nearly free and favoured the scripts that use it).
func writeFile(t testing.TB, p string, size int, seed int) {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(seed), uint64(size)))
	var w [8]byte
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, b, 0o644))
}

var workloads = []workload{
	{name: "burst of 100 KiB files", small: 300, full: 3000, newTree: true,
		run: func(t testing.TB, e *env, n int) {
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("burst/d%02d/f%05d", i%30, i)), 100<<10, i)
			}
		}},
	{name: "mkdir -p storm + writes", small: 100, full: 1000, newTree: true,
		run: func(t testing.TB, e *env, n int) {
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("storm/s%d/a/b/c/d/e/f", i)), 100, i)
			}
		}},
	{name: "tar x of a release", small: 2000, full: 20000, newTree: true,
		run: func(t testing.TB, e *env, n int) {
			// As tar x: 1–16 KiB files, ten per directory, in new nested
			// directories created as the archive goes.
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("release/m%02d/d%04d/f%05d", i/1000, i/10, i)), 1<<10+(i%16)<<10, i)
			}
		}},
	{name: "reads of the whole source", small: 2000, full: 20000,
		prepare: func(t testing.TB, src string, n int) {
			for i := range n {
				writeFile(t, filepath.Join(src, fmt.Sprintf("www/d%03d/f%05d", i%100, i)), 1000, i)
			}
		},
		run: func(t testing.TB, e *env, n int) {
			// A web server or a backup job reads everything; nothing
			// changes, so a solution should do (and cost) nothing.
			for i := range n {
				_, err := os.ReadFile(filepath.Join(e.src, fmt.Sprintf("www/d%03d/f%05d", i%100, i)))
				must(t, err)
			}
			// And one change, so that convergence is observed.
			writeFile(t, filepath.Join(e.src, "www/changed"), 100, 1)
		}},
	{name: "hostile names", small: 1, full: 1,
		run: func(t testing.TB, e *env, n int) {
			dir := filepath.Join(e.src, "hostile")
			must(t, os.Mkdir(dir, 0o755))
			for _, name := range hostileNames {
				must(t, os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644))
			}
			must(t, os.Symlink("with space", filepath.Join(dir, "link")))
			must(t, os.Mkdir(filepath.Join(dir, "sub dir $(touch PWNED)"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "sub dir $(touch PWNED)", "x"), nil, 0o644))
		}},
	{name: "editor saves", small: 30, full: 300,
		run: func(t testing.TB, e *env, n int) {
			for i := range n {
				page := filepath.Join(e.src, fmt.Sprintf("site/page%d.html", i%10))
				swp := filepath.Join(filepath.Dir(page), "."+filepath.Base(page)+".swp")
				writeFile(t, swp, 100, i)
				writeFile(t, page+".tmp", 1000+i, i)
				must(t, os.Rename(page+".tmp", page))
				must(t, os.Remove(swp))
			}
		}},
	{name: "mass delete", small: 1000, full: 10000,
		prepare: func(t testing.TB, src string, n int) {
			for i := range n {
				writeFile(t, filepath.Join(src, fmt.Sprintf("del/d%02d/f%05d", i%20, i)), 100, i)
			}
		},
		run: func(t testing.TB, e *env, n int) {
			for i := range n / 2 {
				must(t, os.Remove(filepath.Join(e.src, fmt.Sprintf("del/d%02d/f%05d", i%20, i))))
			}
			for d := range 10 {
				must(t, os.RemoveAll(filepath.Join(e.src, fmt.Sprintf("del/d%02d", d))))
			}
		}},
	{name: "big dir renames", small: 2000, full: 20000,
		prepare: func(t testing.TB, src string, n int) {
			for i := range n {
				writeFile(t, filepath.Join(src, fmt.Sprintf("big/sub%d/f%05d", i%10, i)), 100, i)
			}
		},
		run: func(t testing.TB, e *env, n int) {
			must(t, os.Rename(filepath.Join(e.src, "big"), filepath.Join(e.src, "big-renamed")))
			must(t, os.Rename(filepath.Join(e.src, "big-renamed/sub3"), filepath.Join(e.src, "moved-out")))
		}},
	{name: "rename of large data", small: 8, full: 150,
		prepare: func(t testing.TB, src string, n int) {
			// n MiB of files in a tree and one file of n MiB.
			for i := range 10 {
				writeFile(t, filepath.Join(src, fmt.Sprintf("media/album%d/track", i)), n<<20/10, i)
			}
			writeFile(t, filepath.Join(src, "disk.img"), n<<20, 99)
		},
		run: func(t testing.TB, e *env, n int) {
			must(t, os.Rename(filepath.Join(e.src, "media"), filepath.Join(e.src, "media-2026")))
			must(t, os.Mkdir(filepath.Join(e.src, "images"), 0o755))
			must(t, os.Rename(filepath.Join(e.src, "disk.img"), filepath.Join(e.src, "images/disk.img")))
		}},
	{name: "steady appends to a large log", small: 100, full: 500,
		prepare: func(t testing.TB, src string, n int) {
			writeFile(t, filepath.Join(src, "log/app.log"), n<<16, 1) // 6.25 MiB small, 31 MiB full
		},
		run: func(t testing.TB, e *env, n int) {
			// A service logging steadily: a line of 1 KiB every 10 ms,
			// for 1 s (small) or 5 s (full); each run of a solution
			// checksums the whole log again.
			f, err := os.OpenFile(filepath.Join(e.src, "log/app.log"), os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			defer f.Close()
			line := bytes.Repeat([]byte("x"), 1023)
			line = append(line, '\n')
			for range n {
				_, err := f.Write(line)
				must(t, err)
				time.Sleep(10 * time.Millisecond)
			}
		}},
	{name: "large tree, few changes", small: 5000, full: 50000,
		prepare: func(t testing.TB, src string, n int) {
			for i := range n {
				writeFile(t, filepath.Join(src, fmt.Sprintf("tree/d%03d/f%05d", i%100, i)), 64, i)
			}
		},
		run: func(t testing.TB, e *env, n int) {
			for i := range 5 {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("tree/d%03d/f%05d", i*17, i*17)), 80, -i)
			}
		}},
	{name: "queue overflow", small: 3000, full: 20000, queueLimit: 64,
		run: func(t testing.TB, e *env, n int) {
			// The solution was started with max_queued_events at 64 (see
			// queueLimit); thousands of creates overflow its queue.
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("ovf/d%02d/f%05d", i%50, i)), 10, i)
			}
		}},
	{name: "daemon down, back up", small: 50, full: 500,
		run: func(t testing.TB, e *env, n int) {
			e.d.stop()
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("down/f%04d", i)), 1000, i)
			}
			must(t, os.RemoveAll(filepath.Join(e.src, "down/f0000")))
			if e.name == "inopipe" {
				// down until rpush has spooled, so that the replay below
				// has something to deliver
				clitest.Eventually(t, "a spooled batch", func() bool {
					m, _ := filepath.Glob(filepath.Join(e.spool, "*.batch"))
					return len(m) > 0
				})
			} else {
				// the scripts leave no trace of a failed attempt to wait on
				time.Sleep(2 * window)
			}
			e.d.start(t)
			if e.name == "inopipe" {
				// what failreplay.timer does
				r := clitest.RunEnv(t, nil, "", bin("failreplay"), "--spool", e.spool, "--password-file", e.d.passFile)
				if r.Code != 0 && r.Code != 4 {
					t.Logf("failreplay: %d %s", r.Code, r.Stderr)
				}
			}
		}},
	{name: "kill -9 of a stage, restart", small: 50, full: 500,
		run: func(t testing.TB, e *env, n int) {
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("k9/a%04d", i)), 1000, i)
			}
			victim := map[string]string{"inopipe": "evbatch", "lsyncd": "lsyncd", "classic": "inotifywait", "perfile": "inotifywait"}[e.name]
			e.sol.killStage(t, victim)
			e.sol.kill() // the supervisor (systemd) stops what is left
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("k9/b%04d", i)), 1000, i)
			}
			cpu, rss := e.sol.cpu, e.sol.peakRSS
			e.sol = e.setup.start(t, e.name) // and restarts it
			e.sol.carriedCPU, e.sol.carriedRSS = cpu, rss
			for i := range n {
				writeFile(t, filepath.Join(e.src, fmt.Sprintf("k9/c%04d", i)), 1000, i)
			}
		}},
}

// runOne runs one (solution, workload) at size n in fresh dirs.
func runOne(t testing.TB, solName string, w workload, n int, limit time.Duration) outcome {
	t.Helper()
	s := setup{d: newDaemon(t), src: t.TempDir(), spool: t.TempDir(), cwd: t.TempDir(), jobs: 2}
	if w.prepare != nil {
		w.prepare(t, s.src, n)
	}
	// Both trees equal before the solution starts (an operator's initial
	// copy), so the run measures replication, not the first full sync.
	out, err := exec.Command("rsync", "-a", s.src+"/", s.d.module+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("initial copy: %v %s", err, out)
	}
	if w.queueLimit > 0 {
		// as the operator runs a watcher: not as root
		asNobody(t, &s)
		restore := setQueueLimit(t, w.queueLimit)
		e := &env{setup: s, name: solName, sol: s.start(t, solName)}
		restore()
		for _, pid := range e.sol.members() {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] != strconv.Itoa(int(s.user.cred.Uid)) {
					t.Fatalf("%s: pid %d runs as uid %s, not as nobody", solName, pid, f[1])
				}
			}
		}
		o := measure(t, e, w, n, limit)
		t.Logf("%s stderr:\n%s", solName, e.sol.stderr.String())
		return o
	}
	e := &env{setup: s, name: solName, sol: s.start(t, solName)}
	return measure(t, e, w, n, limit)
}

func measure(t testing.TB, e *env, w workload, n int, limit time.Duration) outcome {
	recv0 := e.d.childCPU()
	start := time.Now()
	w.run(t, e, n)
	end := time.Now()
	at, ok := waitConverged(e.src, e.d.module, limit)
	e.sol.kill()
	o := outcome{converged: ok, cpu: e.sol.cpu + e.sol.carriedCPU, rssKiB: max(e.sol.peakRSS, e.sol.carriedRSS), rssBy: e.sol.peakBy, recvCPU: max(0, e.d.childCPU()-recv0)}
	if ok {
		o.converge, o.lag = at.Sub(start), max(0, at.Sub(end))
	}
	for _, d := range []string{e.cwd, e.src, e.d.module, e.spool} {
		for _, p := range []string{"PWNED", "PWNED2"} {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				o.note = "a command in a file name RAN"
				t.Errorf("%s/%s: a command in a file name ran (%s)", e.name, w.name, filepath.Join(d, p))
			}
		}
	}
	return o
}

// setQueueLimit lowers fs.inotify.max_queued_events for the inotify
// instances created until restore is called (the limit is taken when an
// instance is created). Needs root; the test is skipped otherwise.
func setQueueLimit(t testing.TB, n int) (restore func()) {
	const p = "/proc/sys/fs/inotify/max_queued_events"
	old, err := os.ReadFile(p)
	must(t, err)
	if err := os.WriteFile(p, []byte(strconv.Itoa(n)), 0o644); err != nil {
		t.Skipf("cannot lower %s (needs root): %v", p, err)
	}
	done := false
	restore = func() {
		if !done {
			done = true
			os.WriteFile(p, old, 0o644)
		}
	}
	t.Cleanup(restore)
	return restore
}

// TestAcceptance (make test): inopipe converges on every workload at a
// small size; every solution script works on the burst.
func TestAcceptance(t *testing.T) {
	for _, w := range workloads {
		t.Run("inopipe/"+w.name, func(t *testing.T) {
			o := runOne(t, "inopipe", w, w.small, clitest.Timeout())
			if !o.converged {
				t.Fatalf("inopipe did not converge on %q", w.name)
			}
			t.Logf("converged in %v (lag %v), cpu %.2fs, peak rss %d KiB (%s)", o.converge.Round(time.Millisecond), o.lag.Round(time.Millisecond), o.cpu, o.rssKiB, o.rssBy)
		})
	}
	for _, sol := range solutions[1:] {
		t.Run(sol+"/"+workloads[0].name, func(t *testing.T) {
			o := runOne(t, sol, workloads[0], workloads[0].small, clitest.Timeout())
			if !o.converged {
				t.Fatalf("%s did not converge on the plain burst: its script is broken\n", sol)
			}
		})
	}
}

// BenchmarkSolutions (make bench; bench/solutions.sh): every solution on
// every workload, one run per iteration, with what each run measured as
// metrics (convergence, lag, CPU of the solution and of the receivers,
// peak RSS); -benchtime 1x -count N gives N runs, bench/table their
// medians. -short runs the small sizes of make test. "ideal" anchors the
// workloads that write a new tree: one rsync -r of it when the writes end.
func BenchmarkSolutions(b *testing.B) {
	for _, w := range workloads {
		n := benchSize(w.full, w.small)
		for _, sol := range solutions {
			b.Run(sol+"/"+w.name, func(b *testing.B) {
				for range b.N {
					o := runOne(b, sol, w, n, *benchLimit)
					converged := 0.0
					if o.converged {
						converged = 1
						b.ReportMetric(o.converge.Seconds(), "convergence-s")
						b.ReportMetric(o.lag.Seconds(), "lag-s")
					}
					b.ReportMetric(converged, "converged")
					b.ReportMetric(o.cpu, "cpu-s")
					b.ReportMetric(o.recvCPU, "receiver-cpu-s")
					b.ReportMetric(float64(o.rssKiB)/1024, "rss-MiB")
					if o.note != "" {
						b.Log(o.note)
					}
					b.Logf("peak rss by member: %s", o.rssBy)
				}
			})
		}
	}
	// The anchor of the new trees: the workload's writes, then one rsync
	// -r of the whole source started when they end (what a solution that
	// waited for the end and knew the tree would run). Its lag is what a
	// copy of the new tree costs; a solution that replicates while the
	// writes go on can do better.
	for _, w := range workloads {
		if !w.newTree {
			continue
		}
		b.Run("ideal/"+w.name, func(b *testing.B) {
			for range b.N {
				d := newDaemon(b)
				e := &env{setup: setup{d: d, src: b.TempDir()}, name: "ideal"}
				start := time.Now()
				w.run(b, e, benchSize(w.full, w.small))
				end := time.Now()
				cmd := exec.Command("rsync", "-a", "-r", "--sockopts=TCP_NODELAY", e.src+"/", d.target())
				cmd.Env = append(os.Environ(), "RSYNC_PASSWORD="+password)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				must(b, cmd.Start())
				// Convergence observed as for the solutions (the same
				// poller with its CPU).
				at, ok := waitConverged(e.src, d.module, *benchLimit)
				if err := cmd.Wait(); err != nil || !ok {
					b.Fatalf("ideal rsync: %v %s", err, out.String())
				}
				b.ReportMetric(at.Sub(start).Seconds(), "convergence-s")
				b.ReportMetric(at.Sub(end).Seconds(), "lag-s")
				b.ReportMetric(1, "converged")
			}
		})
	}
}
