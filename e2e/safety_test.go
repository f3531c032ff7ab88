//go:build e2e

package e2e

// The safety issue's numbered cases against the real binaries and the
// real rsync: each tries to make a target lose data the source still has,
// or to drop something a stage has read.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
)

// fillTarget puts n files in dir and returns how many entries it holds.
func fillTarget(t testing.TB, dir string, n int) int {
	t.Helper()
	for i := range n {
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("precious%03d", i)), []byte("keep"), 0o644))
	}
	return countEntries(t, dir)
}

func countEntries(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			n++
		}
		return nil
	})
	return n
}

// Case 1: a chmod of the root ({"sync":["."]}) with an empty (unmounted)
// source must not wipe the target.
func TestSafetyDotSyncEmptySource(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	before := fillTarget(t, tgt, 3)
	in := fmt.Sprintf(`{"seq":1,"root":"%s/","sync":["."],"delete":[]}`+"\n", src)
	r := clitest.Run(t, in, bin("rpush"), "--spool", spool, tgt)
	if n := countEntries(t, tgt); n != before {
		t.Fatalf("target went from %d entries to %d (exit %d)\n%s", before, n, r.Code, r.Stderr)
	}
}

// Case 2: the source empties (is unmounted) during the back-off after a
// failed first attempt; the retry must pass the gate again and not run.
// A stand-in for rsync fails the first real run with exit 10 (daemon down)
// after emptying the source, then hands over to the real rsync.
func TestSafetyRetryRechecksSource(t *testing.T) {
	src, tgt, spool, state := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "data"), []byte("x"), 0o644))
	before := fillTarget(t, tgt, 20)
	wrapper := filepath.Join(state, "rsync")
	must(t, os.WriteFile(wrapper, []byte(`#!/bin/sh
case " $* " in *" --dry-run "*) exec rsync "$@";; esac
if [ ! -e "$INOPIPE_TEST_STATE/first" ]; then
	: > "$INOPIPE_TEST_STATE/first"
	rm -f "$INOPIPE_TEST_SRC/data"
	exit 10
fi
exec rsync "$@"
`), 0o755))
	in := fmt.Sprintf(`{"seq":1,"root":"%s/","full":true,"sync":[],"delete":[]}`+"\n", src)
	r := clitest.RunEnv(t, []string{"INOPIPE_TEST_STATE=" + state, "INOPIPE_TEST_SRC=" + src}, in,
		bin("rpush"), "--spool", spool, "--rsync", wrapper, "--retries", "2", "--backoff", "10ms", tgt)
	if n := countEntries(t, tgt); n != before {
		t.Fatalf("target went from %d entries to %d (exit %d)\n%s", before, n, r.Code, r.Stderr)
	}
	if r.Code != 1 || !strings.Contains(r.Stderr, "is empty and the run deletes") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
}

// Case 3: --max-delete counts what full and recursive runs delete.
func TestSafetyMaxDeleteFullAndRecursive(t *testing.T) {
	for _, c := range []struct{ name, batch string }{
		{"full", `{"seq":1,"root":"%s/","full":true,"sync":[],"delete":[]}`},
		{"recursive dir", `{"seq":1,"root":"%s/","sync":["d/"],"delete":[]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
			must(t, os.Mkdir(filepath.Join(src, "d"), 0o755))
			must(t, os.WriteFile(filepath.Join(src, "d", "one"), []byte("x"), 0o644))
			must(t, os.Mkdir(filepath.Join(tgt, "d"), 0o755))
			before := fillTarget(t, filepath.Join(tgt, "d"), 100) + 1
			r := clitest.Run(t, fmt.Sprintf(c.batch, src)+"\n", bin("rpush"), "--spool", spool, "--max-delete", "5", tgt)
			if n := countEntries(t, tgt); n != before {
				t.Fatalf("target went from %d entries to %d (exit %d)\n%s", before, n, r.Code, r.Stderr)
			}
			if r.Code != 4 || !strings.Contains(r.Stdout, "more than --max-delete 5") {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
			}
			// Within the limit, the same batch runs.
			r = clitest.Run(t, fmt.Sprintf(c.batch, src)+"\n", bin("rpush"), "--spool", t.TempDir(), "--max-delete", "200", tgt)
			if r.Code != 0 || countEntries(t, tgt) != 2 {
				t.Fatalf("within the limit: exit %d, %d entries\n%s", r.Code, countEntries(t, tgt), r.Stderr)
			}
		})
	}
}

// Case 4: a target that answers rsync exit 3 (its destination is a file)
// must not stop the others.
func TestSafetyBadTargetIsolated(t *testing.T) {
	src, good, spool := t.TempDir(), t.TempDir(), t.TempDir()
	bad := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(bad, []byte("not a dir"), 0o644))
	var in strings.Builder
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("f%d", i)
		must(t, os.WriteFile(filepath.Join(src, name), []byte(name), 0o644))
		in.WriteString(batchLine(uint64(i), src, []string{name}, nil))
	}
	r := clitest.Run(t, in.String(), bin("rpush"), "--spool", spool, bad, good)
	for i := 1; i <= 5; i++ {
		if _, err := os.Stat(filepath.Join(good, fmt.Sprintf("f%d", i))); err != nil {
			t.Errorf("healthy target missed f%d (exit %d)\n%s", i, r.Code, r.Stderr)
		}
	}
	if r.Code != 4 {
		t.Errorf("exit %d, want 4 (spooled for the bad target)\n%s", r.Code, r.Stderr)
	}
}

// Case 5: a spool whose filesystem is full. The batches can be neither
// delivered (the daemon is down) nor spooled: rpush says so and exits 1.
func TestSafetySpoolFull(t *testing.T) {
	src := t.TempDir()
	spool := filepath.Join(t.TempDir(), "spool")
	must(t, os.Mkdir(spool, 0o700))
	clitest.MountTmpfs(t, spool, "64k")
	clitest.FillUp(t, spool)
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644))
	d := newDaemon(t)
	d.stop() // down
	in := batchLine(1, src, []string{"a"}, nil) + batchLine(2, src, []string{"a"}, nil)
	r := clitest.RunEnv(t, []string{"RSYNC_PASSWORD=" + password}, in, bin("rpush"), "--spool", spool, "--retries", "0", "--contimeout", "2", d.target())
	if r.Code != 1 || !strings.Contains(r.Stderr, "neither delivered nor spooled") || !strings.Contains(r.Stderr, "--resync") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
}

// Case 6: a spool that is a symlink, or that others can write, is refused.
func TestSafetySpoolRefused(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	must(t, os.Mkdir(real, 0o700))
	link := filepath.Join(base, "link")
	must(t, os.Symlink(real, link))
	wide := filepath.Join(base, "wide")
	must(t, os.Mkdir(wide, 0o700))
	must(t, os.Chmod(wide, 0o777))
	for dir, want := range map[string]string{link: "is a symlink", wide: "writable by group or others"} {
		r := clitest.Run(t, "", bin("rpush"), "--spool", dir, t.TempDir())
		if r.Code != 1 || !strings.Contains(r.Stderr, "rpush: error: spool "+dir) || !strings.Contains(r.Stderr, want) {
			t.Errorf("spool %s: exit %d\n%s", dir, r.Code, r.Stderr)
		}
	}
}

// streamThenTerm feeds cmd an endless stream of lines (line(i), i from 1)
// through a pipe, sends SIGTERM once at least min lines went in, waits for
// the process, and returns which line numbers it consumed: those not left
// in the pipe (the test holds the read end too). A line the process got
// only part of is reported as split.
func streamThenTerm(t testing.TB, cmd *exec.Cmd, line func(i int) string, min int) (consumed map[int]bool, split int, code int) {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	cmd.Stdin = r
	must(t, cmd.Start())
	var written atomic.Int64
	var stop atomic.Bool
	var lines sync.Map // line text -> i
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; !stop.Load(); i++ {
			l := line(i)
			lines.Store(l, i)
			if _, err := w.Write([]byte(l)); err != nil {
				return
			}
			written.Store(int64(i))
		}
	}()
	clitest.Eventually(t, fmt.Sprintf("%d lines written", min), func() bool { return written.Load() >= int64(min) })
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()
	select {
	case <-werr:
	case <-time.After(clitest.Timeout()):
		cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
	code = cmd.ProcessState.ExitCode()
	// Drain what the process left: stop the writer, then read to EOF.
	stop.Store(true)
	var rest bytes.Buffer
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 64*1024)
		for {
			n, err := r.Read(buf)
			rest.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	<-done
	w.Close()
	<-drained
	left := map[int]bool{}
	text := rest.String()
	if first, after, ok := strings.Cut(text, "\n"); ok && first != "" && !strings.HasPrefix(first, "{") {
		// the tail of a line the process read the head of
		text = after
		lines.Range(func(k, v any) bool {
			if strings.HasSuffix(strings.TrimSuffix(k.(string), "\n"), first) {
				split = v.(int)
			}
			return true
		})
	}
	for _, l := range strings.SplitAfter(text, "\n") {
		if v, ok := lines.Load(l); ok {
			left[v.(int)] = true
		}
	}
	consumed = map[int]bool{}
	for i := 1; i <= int(written.Load()); i++ {
		if !left[i] && i != split {
			consumed[i] = true
		}
	}
	return consumed, split, code
}

// missing counts the line numbers consumed that are not in got.
func missing(consumed, got map[int]bool) int {
	n := 0
	for i := range consumed {
		if !got[i] {
			n++
		}
	}
	return n
}

// Case 7: SIGTERM to evbatch while events stream in: every event it read
// is in the batches it writes before exiting.
func TestSafetySigtermEvbatchKeepsWhatItRead(t *testing.T) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(bin("evbatch"), "--max-delay", "1h", "--full-threshold", "0", "--rollup", "0", "--max-paths", "0", "1h")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	consumed, split, code := streamThenTerm(t, cmd, func(i int) string {
		return fmt.Sprintf(`{"time":"2026-12-01T00:00:00Z","root":"/data/","watch":"/data/","name":"f%07d","path":"/data/f%07d","events":["CLOSE_WRITE","CLOSE"]}`+"\n", i, i)
	}, 5000)
	got := map[int]bool{}
	d := event.NewDecoder(&out)
	var rec event.Record
	for d.Next(&rec) == nil {
		for _, p := range rec.Batch.Sync {
			var i int
			fmt.Sscanf(p, "f%07d", &i)
			got[i] = true
		}
	}
	if missing := missing(consumed, got); missing > 0 || code != 0 {
		t.Fatalf("exit %d; %d of %d events read were not written (split line %d)\n%s", code, missing, len(consumed), split, &stderr)
	}
	t.Logf("%d events read before SIGTERM, all written", len(consumed))
}

// Case 7, rpush: every batch it read gets a result (run or spooled).
func TestSafetySigtermRpushKeepsWhatItRead(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	var out, stderr bytes.Buffer
	cmd := exec.Command(bin("rpush"), "--spool", spool, "--queue", "1000000", "--grace", "0s", tgt)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	consumed, split, code := streamThenTerm(t, cmd, func(i int) string {
		return batchLine(uint64(i), src, []string{"f"}, nil)
	}, 5000)
	got := map[int]bool{}
	d := event.NewDecoder(&out)
	var rec event.Record
	for d.Next(&rec) == nil {
		got[int(rec.Result.Seq)] = true
	}
	if missing := missing(consumed, got); missing > 0 || code != 0 {
		t.Fatalf("exit %d; %d of %d batches read got no result (split line %d)\n%s", code, missing, len(consumed), split, &stderr)
	}
	t.Logf("%d batches read before SIGTERM, all run or spooled", len(consumed))
}

// Case 11: a sub-mount inside the source is unmounted; the next full sync
// must not delete its files on the target.
func TestSafetySubmountGone(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	media := filepath.Join(src, "media")
	must(t, os.Mkdir(media, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "top"), []byte("x"), 0o644))
	clitest.MountTmpfs(t, media, "1m")
	must(t, os.WriteFile(filepath.Join(media, "photo"), []byte("jpeg"), 0o644))
	full := fmt.Sprintf(`{"seq":%%d,"root":"%s/","full":true,"sync":[],"delete":[]}`+"\n", src)
	// rpush reads the first batch, then the test unmounts, then the second.
	cmd := exec.Command(bin("rpush"), "--spool", spool, tgt)
	stdin, err := cmd.StdinPipe()
	must(t, err)
	var out, stderr clitest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	must(t, cmd.Start())
	fmt.Fprintf(stdin, full, 1)
	clitest.Eventually(t, "the first full sync", func() bool { return strings.Contains(out.String(), `"seq":1`) })
	if _, err := os.Stat(filepath.Join(tgt, "media", "photo")); err != nil {
		t.Fatalf("first full sync: %v\n%s", err, stderr.String())
	}
	must(t, unix.Unmount(media, 0))
	fmt.Fprintf(stdin, full, 2)
	stdin.Close()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(tgt, "media", "photo")); err != nil {
		t.Fatalf("the sub-mount's files were deleted on the target: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), media+" is no longer mounted") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

// Case 7, evfilter: every event it read is written before it exits.
func TestSafetySigtermEvfilterKeepsWhatItRead(t *testing.T) {
	var out, stderr bytes.Buffer
	cmd := exec.Command(bin("evfilter"))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	consumed, split, code := streamThenTerm(t, cmd, func(i int) string {
		return fmt.Sprintf(`{"root":"/data/","watch":"/data/","name":"f%07d","path":"/data/f%07d","events":["CLOSE_WRITE","CLOSE"]}`+"\n", i, i)
	}, 5000)
	got := map[int]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		_, name, ok := strings.Cut(l, `"name":"f`)
		var i int
		if _, err := fmt.Sscanf(name, "%07d", &i); ok && err == nil {
			got[i] = true
		}
	}
	if missing := missing(consumed, got); missing > 0 || code != 0 {
		t.Fatalf("exit %d; %d of %d events read were not written (split line %d)\n%s", code, missing, len(consumed), split, &stderr)
	}
}

// Found in review: --rsync-opts --no-relative turned a recursive "dir/"
// entry into a copy of dir into the target's root, and --delete wiped the
// rest. It is refused; this runs it against the real rsync to show why.
func TestSafetyNoRelativeRefused(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "www"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "www", "a"), []byte("a"), 0o644))
	before := fillTarget(t, tgt, 5)
	for _, opt := range []string{"--no-relative", "--no-R"} {
		r := clitest.Run(t, batchLine(1, src, []string{"www/"}, nil), bin("rpush"), "--spool", spool, "--rsync-opts", opt, tgt)
		if r.Code != 2 || !strings.Contains(r.Stderr, "is not allowed") {
			t.Errorf("%s: exit %d\n%s", opt, r.Code, r.Stderr)
		}
	}
	if n := countEntries(t, tgt); n != before {
		t.Fatalf("target went from %d entries to %d", before, n)
	}
}

// --init's full sync passes the gate too: an empty (unmounted) source
// never empties the target before the first batch.
func TestSafetyInitEmptySource(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	before := fillTarget(t, tgt, 7)
	r := clitest.Run(t, batchLine(1, src, []string{"new"}, nil), bin("rpush"), "--spool", spool, "--init", tgt)
	if n := countEntries(t, tgt); n != before {
		t.Fatalf("target went from %d entries to %d (exit %d)\n%s", before, n, r.Code, r.Stderr)
	}
	if r.Code != 1 || !strings.Contains(r.Stderr, "is empty and the run deletes") {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
}
