package push

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// isDryRun tells the gate's counting runs from real ones.
func isDryRun(r rsync.Run) bool { return slices.Contains(r.Args, "--dry-run") }

// realRuns are the runs that could have deleted something.
func realRuns(f *fakeRunner) []rsync.Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rsync.Run
	for _, r := range f.runs {
		if !isDryRun(r) {
			out = append(out, r)
		}
	}
	return out
}

// Safety issue, case 1: a chmod of the root ({"sync":["."]}) with an empty
// (unmounted) source must not become a recursive --delete of the root.
func TestDotIsNeverARecursiveDelete(t *testing.T) {
	p, f, _ := setup(t, func(_ int, r rsync.Run) rsync.Outcome {
		if isDryRun(r) {
			return rsync.Outcome{Deleted: 7}
		}
		return rsync.Outcome{}
	})
	src := t.TempDir() + "/" // empty, as an unmounted mount point
	tg, _ := rsync.ParseTarget("h::m")
	for _, sync := range [][]string{{"."}, {"", "."}, {"./."}} {
		f.runs = nil
		r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: sync, Delete: []string{}})
		for _, run := range realRuns(f) {
			if slices.Contains(run.Args, "--delete") || slices.Contains(run.Args, "-r") {
				t.Fatalf("sync %q ran %q with stdin %q (%+v)", sync, run.Args, run.Stdin, r)
			}
		}
	}
	// "./" does ask for the root recursively: then the gate's empty-root
	// check holds it (the dry run finds 7 entries to delete).
	f.runs = nil
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: []string{"./"}, Delete: []string{}})
	if r.OK || r.Class != rsync.Dangerous || len(realRuns(f)) != 0 || !strings.Contains(r.Err, "is empty") {
		t.Fatalf("./ on an empty root: %+v, %d real runs", r, len(realRuns(f)))
	}
}

// Safety issue, case 2: the source is checked before every attempt, not
// only the first. The source empties during the back-off after a failed
// first attempt; the retry must not run.
func TestRetryPassesTheGateAgain(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "keep"), []byte("x"), 0o644)
	f := &fakeRunner{fn: func(n int, r rsync.Run) rsync.Outcome {
		switch {
		case isDryRun(r):
			return rsync.Outcome{Deleted: 100}
		case n == 1:
			return rsync.Outcome{Exit: rsync.ExitSocketIO, Stderr: "connection refused"}
		}
		return rsync.Outcome{}
	}}
	p := &Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true}, Runner: f, Retries: 3,
		Sleep: func(context.Context, time.Duration) error {
			os.Remove(filepath.Join(src, "keep")) // emptied (unmounted) during the back-off
			return nil
		}}
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src + "/", Full: true})
	if r.OK || r.Class != rsync.Dangerous || len(realRuns(f)) != 1 {
		t.Fatalf("%+v after %d real runs", r, len(realRuns(f)))
	}
}

// Safety issue, case 3: --max-delete counts what full and recursive runs
// would delete (a dry run), not only the listed missing paths.
func TestMaxDeleteCountsFullAndRecursiveRuns(t *testing.T) {
	for _, c := range []struct {
		name    string
		b       event.Batch
		deleted int64 // what the dry run reports
		ok      bool
	}{
		{"full over the limit", event.Batch{Full: true}, 99, false},
		{"full within", event.Batch{Full: true}, 5, true},
		{"recursive dir over the limit", event.Batch{Sync: []string{"d/"}}, 6, false},
		{"recursive dir within", event.Batch{Sync: []string{"d/"}}, 0, true},
		{"listed missing dir with a big subtree", event.Batch{Delete: []string{"gone"}}, 50, false},
		{"plain file: no dry run needed", event.Batch{Sync: []string{"f"}}, 1000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, f, src := setup(t, func(_ int, r rsync.Run) rsync.Outcome {
				if isDryRun(r) {
					return rsync.Outcome{Deleted: c.deleted}
				}
				return rsync.Outcome{}
			})
			os.Mkdir(filepath.Join(src, "d"), 0o755)
			p.MaxDelete = 5
			b := c.b
			b.Root = src
			tg, _ := rsync.ParseTarget("h::m")
			r := p.Push(context.Background(), tg, &b)
			real := realRuns(f)
			if r.OK != c.ok || (!c.ok && (len(real) != 0 || r.Exit != rsync.ExitDelLimit || !strings.Contains(r.Err, "--max-delete 5"))) {
				t.Fatalf("%+v, %d real runs", r, len(real))
			}
		})
	}
}

// -j slices share one --max-delete budget: three slices each within the
// limit but over it together are refused before any starts.
func TestMaxDeleteBudgetOverSlices(t *testing.T) {
	p, f, src := setup(t, func(_ int, r rsync.Run) rsync.Outcome {
		if isDryRun(r) {
			return rsync.Outcome{Deleted: 2}
		}
		return rsync.Outcome{}
	})
	p.MaxDelete, p.Jobs, p.SplitMin = 5, 3, 2
	var sync []string
	for _, d := range []string{"a", "b", "c", "d", "e", "f"} {
		os.Mkdir(filepath.Join(src, d), 0o755)
		sync = append(sync, d+"/")
	}
	tg, _ := rsync.ParseTarget("h::m")
	r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: sync})
	if r.OK || len(realRuns(f)) != 0 || !strings.Contains(r.Err, "would delete 6 entries") {
		t.Fatalf("%+v, %d real runs", r, len(realRuns(f)))
	}
}

// A root that is not absolute or not a directory root is refused for
// this batch only (it is spooled, and failreplay quarantines it).
func TestRootMustBeAbsoluteDir(t *testing.T) {
	p, f, _ := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{} })
	tg, _ := rsync.ParseTarget("h::m")
	for _, root := range []string{"data/", "/data", ""} {
		r := p.Push(context.Background(), tg, &event.Batch{Root: root, Full: true})
		if r.OK || r.Class != rsync.Spool || len(f.runs) != 0 {
			t.Errorf("root %q: %+v", root, r)
		}
	}
}

// Safety issue, case 11: a sub-mount that goes away is refused for runs
// that delete; a filesystem mounted over the root changes its device.
func TestGateMounts(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "media")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	clitest.MountTmpfs(t, sub, "1m")
	var g Gate
	if err := g.Check(root+"/", true); err != nil {
		t.Fatalf("first check: %v", err)
	}
	if err := unix.Unmount(sub, 0); err != nil {
		t.Fatal(err)
	}
	err := g.Check(root+"/", true)
	var se *SourceError
	if !errors.Is(err, ErrSubmountGone) || !errors.As(err, &se) || !strings.Contains(err.Error(), sub) {
		t.Fatalf("after umount of %s: %v", sub, err)
	}
	// A run that only adds is still allowed.
	if err := g.Check(root+"/", false); err != nil {
		t.Fatalf("non-deleting run after umount: %v", err)
	}

	// A filesystem mounted over the root: another device.
	root2 := t.TempDir()
	os.WriteFile(filepath.Join(root2, "f"), []byte("x"), 0o644)
	var g2 Gate
	if err := g2.Check(root2+"/", false); err != nil {
		t.Fatal(err)
	}
	clitest.MountTmpfs(t, root2, "1m")
	os.WriteFile(filepath.Join(root2, "other"), []byte("y"), 0o644)
	if err := g2.Check(root2+"/", false); !errors.Is(err, ErrDeviceChanged) {
		t.Fatalf("mounted over the root: %v", err)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/t\011x\134`: "/t\tx\\", `/plain`: "/plain", `/bad\9`: `/bad\9`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
