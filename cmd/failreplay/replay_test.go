package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
)

// fakeRunner answers runs with a func field.
type fakeRunner struct {
	mu   sync.Mutex
	runs []rsync.Run
	fn   func(r rsync.Run) rsync.Outcome
}

var _ rsync.Runner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(_ context.Context, r rsync.Run) rsync.Outcome {
	f.mu.Lock()
	f.runs = append(f.runs, r)
	f.mu.Unlock()
	return f.fn(r)
}

func newReplay(t *testing.T, fn func(rsync.Run) rsync.Outcome) (*push.Pusher, *spool.Spool, string) {
	t.Helper()
	src := t.TempDir()
	for _, n := range []string{"a", "poison", "c"} {
		os.WriteFile(filepath.Join(src, n), []byte(n), 0o644)
	}
	sp, err := spool.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &push.Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true}, Runner: &fakeRunner{fn: fn},
		Sleep: func(context.Context, time.Duration) error { return nil }}
	return p, sp, src + "/"
}

func put(t *testing.T, sp *spool.Spool, root string, b event.Batch) {
	t.Helper()
	b.Root = root
	if b.Sync == nil {
		b.Sync = []string{}
	}
	if b.Delete == nil {
		b.Delete = []string{}
	}
	if _, err := sp.Put(&spool.Entry{Target: "h::m", FirstFailure: time.Now(), Batch: b}); err != nil {
		t.Fatal(err)
	}
}

// Safety issue, case 9: one path that always fails (rsync exit 23) holds
// back only its own entry, which is quarantined after --max-failures
// replays; the others are delivered on the first run.
func TestPoisonEntryIsolatedThenQuarantined(t *testing.T) {
	p, sp, src := newReplay(t, func(r rsync.Run) rsync.Outcome {
		if bytes.Contains(r.Stdin, []byte("poison")) {
			return rsync.Outcome{Exit: rsync.ExitPartial, Stderr: "rsync: [receiver] mkstemp \"poison\" failed: Permission denied (13)"}
		}
		return rsync.Outcome{}
	})
	put(t, sp, src, event.Batch{Seq: 1, Sync: []string{"a"}})
	put(t, sp, src, event.Batch{Seq: 2, Sync: []string{"poison"}})
	put(t, sp, src, event.Batch{Seq: 3, Sync: []string{"c"}})
	cfg := &Config{MaxFailures: 3}
	var stderr bytes.Buffer
	err := run(context.Background(), cfg, p, sp, &stderr)
	var be *base.Error
	if !errors.As(err, &be) || be.Code != base.ExitPartial || sp.Count() != 1 {
		t.Fatalf("first run: %v, %d entries left\n%s", err, sp.Count(), &stderr)
	}
	for i := 2; i <= 3; i++ {
		stderr.Reset()
		err = run(context.Background(), cfg, p, sp, &stderr)
	}
	if err != nil || sp.Count() != 0 || sp.Quarantined() != 1 {
		t.Fatalf("after 3 runs: %v, %d entries, %d quarantined\n%s", err, sp.Count(), sp.Quarantined(), &stderr)
	}
	if !strings.Contains(stderr.String(), "failed 3 replays in a row") || !strings.Contains(stderr.String(), "failreplay: hint:") {
		t.Fatalf("stderr:\n%s", &stderr)
	}
}

// A target that is down never counts towards quarantine.
func TestOutageNeverQuarantines(t *testing.T) {
	p, sp, src := newReplay(t, func(rsync.Run) rsync.Outcome {
		return rsync.Outcome{Exit: rsync.ExitSocketIO, Stderr: "connection refused"}
	})
	put(t, sp, src, event.Batch{Seq: 1, Sync: []string{"a"}})
	put(t, sp, src, event.Batch{Seq: 2, Sync: []string{"c"}})
	for i := 0; i < 6; i++ {
		run(context.Background(), &Config{MaxFailures: 2}, p, sp, &bytes.Buffer{})
	}
	if sp.Count() != 2 || sp.Quarantined() != 0 {
		t.Fatalf("%d entries, %d quarantined", sp.Count(), sp.Quarantined())
	}
}

// Repeated failing --full runs keep one entry per (root, target), not one
// more per run.
func TestFailingFullReplacesItsEntry(t *testing.T) {
	p, sp, src := newReplay(t, func(rsync.Run) rsync.Outcome {
		return rsync.Outcome{Exit: rsync.ExitSocketIO, Stderr: "connection refused"}
	})
	sp.RecordPairs([]spool.Pair{{Root: src, Target: "h::m"}})
	for i := 0; i < 4; i++ {
		run(context.Background(), &Config{Full: true, MaxFailures: 5}, p, sp, &bytes.Buffer{})
	}
	if sp.Count() != 1 {
		t.Fatalf("%d entries after 4 failing --full runs", sp.Count())
	}
}

// An entry whose root is not an absolute directory is quarantined at once.
func TestInvalidRootQuarantined(t *testing.T) {
	p, sp, _ := newReplay(t, func(rsync.Run) rsync.Outcome { return rsync.Outcome{} })
	put(t, sp, "relative/", event.Batch{Seq: 1, Full: true})
	var stderr bytes.Buffer
	if err := run(context.Background(), &Config{MaxFailures: 5}, p, sp, &stderr); err != nil || sp.Quarantined() != 1 {
		t.Fatalf("%v, %d quarantined\n%s", err, sp.Quarantined(), &stderr)
	}
}

// Safety issue, case 12: a failed --full whose spool write fails too is an
// error (exit 1), not a silent loss.
func TestFullSpoolWriteFailureIsAnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	must(t, os.Mkdir(dir, 0o700))
	clitest.MountTmpfs(t, dir, "64k")
	p, _, src := newReplay(t, func(rsync.Run) rsync.Outcome {
		return rsync.Outcome{Exit: rsync.ExitSocketIO, Stderr: "connection refused"}
	})
	sp, err := spool.Open(dir)
	must(t, err)
	must(t, sp.RecordPairs([]spool.Pair{{Root: src, Target: "h::m"}}))
	clitest.FillUp(t, dir)
	var stderr bytes.Buffer
	err = run(context.Background(), &Config{Full: true, MaxFailures: 5}, p, sp, &stderr)
	var be *base.Error
	if !errors.As(err, &be) || be.Code != base.ExitError || !strings.Contains(err.Error(), "could not be spooled") {
		t.Fatalf("%v\n%s", err, &stderr)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A spooled full sync replayed after the source was emptied (unmounted)
// passes the gate: no real run, the entry stays.
func TestReplayEmptiedSourceRefused(t *testing.T) {
	p, sp, _ := newReplay(t, func(r rsync.Run) rsync.Outcome {
		if slices.Contains(r.Args, "--dry-run") {
			return rsync.Outcome{Deleted: 40} // the target holds what the source lost
		}
		t.Errorf("a real run on an empty source: %q", r.Args)
		return rsync.Outcome{}
	})
	empty := t.TempDir() + "/"
	put(t, sp, empty, event.Batch{Seq: 1, Full: true})
	put(t, sp, empty, event.Batch{Seq: 2, Sync: []string{"./"}})
	var stderr bytes.Buffer
	err := run(context.Background(), &Config{MaxFailures: 1}, p, sp, &stderr)
	var be *base.Error
	if !errors.As(err, &be) || be.Code != base.ExitPartial || sp.Count() != 2 || sp.Quarantined() != 0 {
		t.Fatalf("%v, %d entries, %d quarantined\n%s", err, sp.Count(), sp.Quarantined(), &stderr)
	}
	if !strings.Contains(stderr.String(), "is empty and the run deletes") {
		t.Fatalf("stderr:\n%s", &stderr)
	}
}
