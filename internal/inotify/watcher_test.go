//go:build linux

package inotify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
)

// chanSink collects events for a test.
type chanSink struct {
	mu  sync.Mutex
	evs []event.Event
	ch  chan struct{}
}

func newChanSink() *chanSink { return &chanSink{ch: make(chan struct{}, 1)} }

func (s *chanSink) Event(ev *event.Event) error {
	s.mu.Lock()
	s.evs = append(s.evs, *ev)
	s.mu.Unlock()
	return nil
}

func (s *chanSink) Flush() error {
	select {
	case s.ch <- struct{}{}:
	default:
	}
	return nil
}

func (s *chanSink) snapshot() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.evs...)
}

// waitFor waits until cond holds for the events seen so far, or fails.
func (s *chanSink) waitFor(t *testing.T, what string, cond func([]event.Event) bool) []event.Event {
	t.Helper()
	deadline := time.After(clitest.Timeout())
	for {
		evs := s.snapshot()
		if cond(evs) {
			return evs
		}
		select {
		case <-s.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d events:\n%s", what, len(evs), dump(evs))
		}
	}
}

func dump(evs []event.Event) string {
	var b strings.Builder
	for i, e := range evs {
		if i > 200 {
			b.WriteString("...\n")
			break
		}
		fmt.Fprintf(&b, "%s %s synthetic=%v\n", e.Path, e.Op, e.Synthetic)
	}
	return b.String()
}

func start(t *testing.T, cfg Config) (*chanSink, chan error, context.CancelFunc) {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newChanSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, s); w.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(clitest.Timeout()):
			t.Error("watcher did not stop")
		}
	})
	return s, done, cancel
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMkdirStorm is the race inotifywait lists under BUGS: 200 trees made
// with mkdir -p and written into at once. Every directory and file must be
// reported, by the kernel or by the watcher's scan.
func TestMkdirStorm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, _ := start(t, Config{Roots: []string{dir}, Recursive: true})
	script := `for i in $(seq 1 200); do mkdir -p a$i/b/c/d && echo x > a$i/b/c/d/f; done`
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]bool{}
	for i := 1; i <= 200; i++ {
		p := fmt.Sprintf("%s/a%d", dir, i)
		for _, q := range []string{p, p + "/b", p + "/b/c", p + "/b/c/d", p + "/b/c/d/f"} {
			want[q] = true
		}
	}
	s.waitFor(t, "every directory and file of the storm", func(evs []event.Event) bool {
		seen := map[string]bool{}
		for _, e := range evs {
			if e.Op.Has(event.Create) {
				seen[e.Path] = true
			}
		}
		for p := range want {
			if !seen[p] {
				return false
			}
		}
		return true
	})
}

// TestRenameKeepsPaths: a directory renamed inside the tree reports later
// events under its new name; one moved out reports nothing more.
func TestRenameKeepsPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outside := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "a/sub"), 0o755))
	s, _, _ := start(t, Config{Roots: []string{dir}, Recursive: true, Events: event.Create | event.Move | event.Delete})
	must(t, os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
	must(t, os.WriteFile(filepath.Join(dir, "b/sub/f1"), nil, 0o644))
	s.waitFor(t, "f1 under the new name", func(evs []event.Event) bool {
		for _, e := range evs {
			if e.Path == filepath.Join(dir, "b/sub/f1") && e.Op.Has(event.Create) {
				return true
			}
		}
		return false
	})
	must(t, os.Rename(filepath.Join(dir, "b"), filepath.Join(outside, "b")))
	must(t, os.WriteFile(filepath.Join(outside, "b/sub/stale"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644))
	evs := s.waitFor(t, "marker", func(evs []event.Event) bool {
		for _, e := range evs {
			if e.Name == "marker" {
				return true
			}
		}
		return false
	})
	for _, e := range evs {
		if strings.Contains(e.Path, "stale") {
			t.Errorf("event from a directory moved out of the tree: %s %s", e.Path, e.Op)
		}
		if e.Root != dir+"/" {
			t.Errorf("root = %q", e.Root)
		}
	}
}

// TestNoOwnScanEvents: with every event asked for, the watcher's reads of a
// new directory must not be reported as OPEN/ACCESS/CLOSE_NOWRITE.
func TestNoOwnScanEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, _ := start(t, Config{Roots: []string{dir}, Recursive: true})
	for i := 0; i < 20; i++ {
		must(t, os.Mkdir(filepath.Join(dir, fmt.Sprint("d", i)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprint("d", i), "f"), []byte("x"), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(dir, "end"), nil, 0o644))
	evs := s.waitFor(t, "end", func(evs []event.Event) bool {
		for _, e := range evs {
			if e.Name == "end" && e.Op.Has(event.CloseWrite) {
				return true
			}
		}
		return false
	})
	for _, e := range evs {
		if e.Op.Has(event.IsDir) && e.Op.Has(event.Open|event.Access|event.CloseNowrite) {
			t.Errorf("own scan leaked: %s %s", e.Path, e.Op)
		}
	}
}

// TestSyntheticForPrefilledDir: a directory moved in with content gets a
// synthetic CREATE for every entry, recursively, and CLOSE_WRITE for files.
func TestSyntheticForPrefilledDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staging := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(staging, "pkg/x/y"), 0o755))
	must(t, os.WriteFile(filepath.Join(staging, "pkg/x/y/f"), []byte("1"), 0o644))
	must(t, os.Symlink("x/y/f", filepath.Join(staging, "pkg/link")))
	s, _, _ := start(t, Config{Roots: []string{dir}, Recursive: true, Events: event.Create | event.CloseWrite | event.MovedTo})
	must(t, os.Rename(filepath.Join(staging, "pkg"), filepath.Join(dir, "pkg")))
	s.waitFor(t, "synthetic events for pkg", func(evs []event.Event) bool {
		got := map[string]event.Op{}
		for _, e := range evs {
			if e.Synthetic {
				got[strings.TrimPrefix(e.Path, dir+"/")] |= e.Op
			}
		}
		return got["pkg/x"] == event.Create|event.IsDir && got["pkg/x/y"] == event.Create|event.IsDir &&
			got["pkg/x/y/f"] == event.Create|event.CloseWrite && got["pkg/link"] == event.Create
	})
}

// TestRootGone: deleting the watched root ends Run with ErrRootGone after
// the DELETE_SELF record.
func TestRootGone(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "root")
	must(t, os.Mkdir(dir, 0o755))
	s, done, _ := start(t, Config{Roots: []string{dir}, Recursive: true})
	must(t, os.RemoveAll(dir))
	select {
	case err := <-done:
		done <- err // for the cleanup
		if !errors.Is(err, ErrRootGone) {
			t.Fatalf("Run = %v, want ErrRootGone", err)
		}
	case <-time.After(clitest.Timeout()):
		t.Fatal("Run did not stop")
	}
	found := false
	for _, e := range s.snapshot() {
		if e.Op.Has(event.DeleteSelf) && e.Path == dir+"/" {
			found = true
		}
	}
	if !found {
		t.Errorf("no DELETE_SELF for the root:\n%s", dump(s.snapshot()))
	}
}

func TestExcludedDirNotWatched(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "cache/deep"), 0o755))
	w, err := New(Config{Roots: []string{dir}, Recursive: true, SkipDir: func(d string) bool { return strings.HasSuffix(d, "/cache/") }})
	must(t, err)
	defer w.Close()
	if n := w.Watches(); n != 1 {
		t.Fatalf("%d watches, want 1 (root only)", n)
	}
}

func TestResyncRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, _ := start(t, Config{Roots: []string{dir}, Recursive: true, Resync: true})
	s.waitFor(t, "RESYNC", func(evs []event.Event) bool {
		return len(evs) > 0 && evs[0].Op == event.Resync && evs[0].Root == dir+"/" && evs[0].Synthetic
	})
}

func TestMaskTable(t *testing.T) {
	cases := []struct {
		mask uint32
		want event.Op
	}{
		{0x00000100 | 0x40000000, event.Create | event.IsDir},
		{0x00004000, event.QOverflow},
		{0x00000008, event.CloseWrite},
		{0x80000000 | 0x00000002, event.Modify}, // IN_ONESHOT never reported
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%#x", c.mask), func(t *testing.T) {
			if got := opFromMask(c.mask); got != c.want {
				t.Errorf("opFromMask(%#x) = %v, want %v", c.mask, got, c.want)
			}
		})
	}
	if m := watchMask(event.CloseWrite, true); event.Op(m)&(event.Create|event.MovedTo|event.MovedFrom|event.DeleteSelf) != event.Create|event.MovedTo|event.MovedFrom|event.DeleteSelf {
		t.Errorf("recursive mask %#x lacks what recursion needs", m)
	}
}

// mkdirDeep nests n directories of 250-byte names under dir with
// mkdirat, below the kernel's PATH_MAX for every call, and returns an open
// descriptor of the deepest (closed at cleanup).
func mkdirDeep(t *testing.T, dir string, n int) int {
	t.Helper()
	name := strings.Repeat("d", 250)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	for range n {
		must(t, unix.Mkdirat(fd, name, 0o755))
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd = next
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// Safety issue, case 10: a path deeper than PATH_MAX is skipped with a
// warning naming it, at start and when it appears; the watcher keeps
// running and reports the rest.
func TestPathTooLongSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	deepest := mkdirDeep(t, dir, 20) // about 5,000 bytes
	var mu sync.Mutex
	var warnings []string
	warn := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, fmt.Sprintf(format, a...))
	}
	s, done, _ := start(t, Config{Roots: []string{dir}, Recursive: true, Warn: warn, Events: event.Create | event.CloseWrite})
	mu.Lock()
	n := len(warnings)
	ok := n == 1 && strings.Contains(warnings[0], "longer than the kernel's PATH_MAX") && strings.Contains(warnings[0], dir+"/ddd")
	mu.Unlock()
	if !ok {
		t.Fatalf("warnings at start: %q", warnings)
	}
	// A new directory beyond the limit, while running.
	must(t, unix.Mkdirat(deepest, "more", 0o755))
	// The rest of the tree is still watched.
	must(t, os.WriteFile(filepath.Join(dir, "after"), []byte("x"), 0o644))
	s.waitFor(t, "an event after the deep tree", func(evs []event.Event) bool {
		for _, e := range evs {
			if e.Path == dir+"/after" && e.Op.Has(event.CloseWrite) {
				return true
			}
		}
		return false
	})
	select {
	case err := <-done:
		t.Fatalf("watcher stopped: %v", err)
	default:
	}
}

// A root's own DELETE_SELF is reported even when -e did not ask for it:
// the stream says why it ends (inowait(1), the -e option).
func TestRootGoneReportedWhateverEvents(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "root")
	must(t, os.Mkdir(dir, 0o755))
	s, _, _ := start(t, Config{Roots: []string{dir}, Events: event.Create})
	must(t, os.Remove(dir))
	s.waitFor(t, "DELETE_SELF of the root", func(evs []event.Event) bool {
		for _, e := range evs {
			if e.Op.Has(event.DeleteSelf) && e.Name == "" {
				return true
			}
		}
		return false
	})
	// (Run then ends with ErrRootGone: TestRootGone; the cleanup waits.)
}
