package push

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// fakeRunner is a Runner made of a func field, as litestream does.
type fakeRunner struct {
	mu   sync.Mutex
	runs []rsync.Run
	fn   func(n int, r rsync.Run) rsync.Outcome
}

var _ rsync.Runner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(_ context.Context, r rsync.Run) rsync.Outcome {
	f.mu.Lock()
	f.runs = append(f.runs, r)
	n := len(f.runs)
	f.mu.Unlock()
	return f.fn(n, r)
}

func setup(t *testing.T, fn func(int, rsync.Run) rsync.Outcome) (*Pusher, *fakeRunner, string) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	f := &fakeRunner{fn: fn}
	p := &Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true}, Runner: f, Retries: 2, Backoff: time.Millisecond,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	return p, f, src + "/"
}

func TestRetryThenSpool(t *testing.T) {
	p, f, src := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{Exit: 10, Stderr: "connection refused"} })
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"f"}})
	if r.OK || r.Class != rsync.Retry || r.Attempts != 3 || len(f.runs) != 3 || !strings.Contains(r.Err, "connection refused") {
		t.Fatalf("%+v after %d runs", r, len(f.runs))
	}
}

func TestAuthNotRetried(t *testing.T) {
	p, f, src := setup(t, func(int, rsync.Run) rsync.Outcome {
		return rsync.Outcome{Exit: 5, Stderr: "@ERROR: auth failed on module m"}
	})
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"f"}})
	if r.OK || r.Class != rsync.Spool || len(f.runs) != 1 {
		t.Fatalf("%+v after %d runs", r, len(f.runs))
	}
}

func TestFilterModeSwitch(t *testing.T) {
	p, f, src := setup(t, func(n int, r rsync.Run) rsync.Outcome {
		if n == 1 {
			return rsync.Outcome{Exit: 2, Stderr: "invalid file mode 00"}
		}
		return rsync.Outcome{}
	})
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"f"}, Delete: []string{"gone"}})
	if !r.OK || len(f.runs) != 2 || !contains(f.runs[1].Args, "--filter=merge -") || !strings.Contains(string(f.runs[1].Stdin), "+ /gone\x00") {
		t.Fatalf("%+v runs %+v", r, f.runs)
	}
	// the target stays in filter mode
	p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"f"}})
	if !contains(f.runs[2].Args, "--filter=merge -") {
		t.Fatalf("third run not in filter mode: %q", f.runs[2].Args)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestSafetyChecks(t *testing.T) {
	p, f, _ := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{} })
	tg, _ := rsync.ParseTarget("/tmp/x")
	r := p.Push(context.Background(), tg, &event.Batch{Root: "/nonexistent/root/", Sync: []string{"a"}, Delete: []string{"b"}})
	if r.OK || r.Class != rsync.Dangerous || len(f.runs) != 0 {
		t.Fatalf("missing root: %+v", r)
	}
	p.MaxDelete = 1
	_, _, src := setup(t, nil)
	r = p.Push(context.Background(), tg, &event.Batch{Root: src, Delete: []string{"a", "b"}})
	if r.OK || !strings.Contains(r.Err, "--max-delete") {
		t.Fatalf("max-delete: %+v", r)
	}
}

// An empty source root with a batch that deletes: a dry run decides.
func TestEmptySource(t *testing.T) {
	for _, c := range []struct {
		name    string
		dry     rsync.Outcome // what the dry run reports
		ok      bool
		class   rsync.Class
		runs    int
		errPart string
	}{
		{"target empty too (a new data dir)", rsync.Outcome{Deleted: 0}, true, rsync.Done, 2, ""},
		{"target has files (unmounted source?)", rsync.Outcome{Deleted: 5}, false, rsync.Dangerous, 1, "5 entries on the target would be deleted"},
		{"no count printed", rsync.Outcome{Deleted: -1}, false, rsync.Dangerous, 1, "no deletion count"},
		{"target down: retried, then spooled, source not stopped", rsync.Outcome{Exit: 10, Deleted: -1, Stderr: "connection refused"}, false, rsync.Retry, 3, "dry run for an empty source: rsync exit 10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, f, _ := setup(t, func(n int, r rsync.Run) rsync.Outcome {
				if contains(r.Args, "--dry-run") {
					return c.dry
				}
				return rsync.Outcome{}
			})
			tg, _ := rsync.ParseTarget("h::m")
			for _, b := range []*event.Batch{
				{Root: t.TempDir() + "/", Full: true},
				{Root: t.TempDir() + "/", Sync: []string{"a"}, Delete: []string{"b"}},
			} {
				f.runs = nil
				r := p.Push(context.Background(), tg, b)
				if r.OK != c.ok || r.Class != c.class || len(f.runs) != c.runs || !strings.Contains(r.Err, c.errPart) {
					t.Fatalf("full=%v: %+v after %d runs", b.Full, r, len(f.runs))
				}
				if !contains(f.runs[0].Args, "--dry-run") || (c.ok && contains(f.runs[1].Args, "--dry-run")) {
					t.Fatalf("runs: %v", f.runs)
				}
			}
		})
	}
}

func TestJobsSplit(t *testing.T) {
	p, f, src := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{Bytes: 10} })
	p.Jobs, p.SplitMin = 4, 2
	var paths []string
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		os.WriteFile(filepath.Join(src, n), nil, 0o644)
		paths = append(paths, n)
	}
	tg, _ := rsync.ParseTarget("/tmp/x")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: paths})
	if !r.OK || len(f.runs) != 4 || r.Bytes != 40 || r.Paths != 8 {
		t.Fatalf("%+v runs %d", r, len(f.runs))
	}
}

func TestFromEvent(t *testing.T) {
	cases := []struct {
		ev   event.Event
		sync []string
		del  []string
		full bool
		ok   bool
	}{
		{event.Event{Root: "/d/", Watch: "/d/", Name: "x", Path: "/d/x", Op: event.CloseWrite}, []string{"x"}, []string{}, false, true},
		{event.Event{Root: "/d/", Watch: "/d/", Name: "x", Path: "/d/x", Op: event.Create | event.IsDir}, []string{"x/"}, []string{}, false, true},
		{event.Event{Root: "/d/", Watch: "/d/", Name: "x", Path: "/d/x", Op: event.MovedFrom}, []string{}, []string{"x"}, false, true},
		{event.Event{Root: "/d/", Watch: "/d/", Name: "x", Path: "/d/x", Op: event.Open}, nil, nil, false, false},
		{event.Event{Root: "/d/", Watch: "/d/", Path: "/d/", Op: event.Resync}, []string{}, []string{}, true, true},
	}
	for _, c := range cases {
		t.Run(c.ev.Op.String(), func(t *testing.T) {
			b, ok := FromEvent(&c.ev, 1)
			if ok != c.ok || (ok && (b.Full != c.full || strings.Join(b.Sync, ",") != strings.Join(c.sync, ",") || strings.Join(b.Delete, ",") != strings.Join(c.del, ","))) {
				t.Errorf("%v: %+v %v", c.ev.Op, b, ok)
			}
		})
	}
}

// A batch with a file and a directory whose mode changed runs the file
// with -r and the directory in a second run without recursion.
func TestAttributeDirsRunWithoutRecursion(t *testing.T) {
	p, f, src := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{} })
	os.MkdirAll(filepath.Join(src, "big"), 0o755)
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"f", "big"}})
	if !r.OK || r.Paths != 2 || len(f.runs) != 2 {
		t.Fatalf("%+v after %d runs", r, len(f.runs))
	}
	byStdin := map[string][]string{}
	for _, run := range f.runs {
		byStdin[string(run.Stdin)] = run.Args
	}
	if a := byStdin["./f\x00"]; slices.Index(a, "-r") < 0 {
		t.Errorf("file run: %q", a)
	}
	if a := byStdin["./big\x00"]; slices.Index(a, "--no-r") < 0 || slices.Index(a, "--dirs") < 0 {
		t.Errorf("dir run: %q", a)
	}
}

// Issue 13: files the kernel reported written run with --ignore-times (a
// same-size rewrite with the same mtime is still sent); the others keep
// rsync's quick check.
func TestWrittenRunWithIgnoreTimes(t *testing.T) {
	p, f, src := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{} })
	for _, n := range []string{"w1", "w2", "chmodded"} {
		os.WriteFile(filepath.Join(src, n), []byte(n), 0o644)
	}
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"w1", "w2", "chmodded", "d/"}, Written: []string{"w1", "./w2"}})
	if !r.OK || len(f.runs) != 2 {
		t.Fatalf("%+v, %d runs", r, len(f.runs))
	}
	byStdin := map[string][]string{}
	for _, run := range f.runs {
		byStdin[string(run.Stdin)] = run.Args
	}
	if a := byStdin["./w1\x00./w2\x00"]; !slices.Contains(a, "--ignore-times") {
		t.Errorf("written files: %q (runs %q)", a, byStdin)
	}
	if a := byStdin["./chmodded\x00./d/\x00"]; a == nil || slices.Contains(a, "--ignore-times") {
		t.Errorf("the rest: %q (runs %q)", a, byStdin)
	}
}
