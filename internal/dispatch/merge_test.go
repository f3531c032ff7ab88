package dispatch

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/status"
)

// heldRunner runs the real rsync; the first run waits for release, so
// that the next batches queue behind it and are merged.
type heldRunner struct {
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	runs    int
}

func (h *heldRunner) Run(ctx context.Context, r rsync.Run) rsync.Outcome {
	h.mu.Lock()
	h.runs++
	first := h.runs == 1
	h.mu.Unlock()
	if first {
		close(h.started)
		<-h.release
	}
	return rsync.ExecRunner{}.Run(ctx, r)
}

// Merged batches through real rsync must leave the target equal to the
// source, whatever the batches said on the way: a file deleted then
// created again, a directory deleted then made again with other content,
// a path the source really lost, and a file of the target's that a batch
// deletes but the source has again.
func TestMergedBatchesEndEqual(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed (make deps)")
	}
	src, dst := t.TempDir()+"/", t.TempDir()+"/"
	write := func(root, rel, data string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(root+rel), 0o755))
		must(t, os.WriteFile(root+rel, []byte(data), 0o644))
	}
	write(src, "a", "a")
	write(dst, "keep", "old")
	write(dst, "gone", "gone")
	h := &heldRunner{started: make(chan struct{}), release: make(chan struct{})}
	tg, err := rsync.ParseTarget(dst)
	must(t, err)
	p := &push.Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true}, Runner: h, Jobs: 1}
	res := &results{}
	e := New(Config{Targets: []rsync.Target{tg}, Queue: 100}, p, &fakeSpool{}, &base.Log{Prog: "rpush", W: &bytes.Buffer{}}, status.New(time.Now(), []string{tg.Spec}), res.emit)
	b := func(seq uint64, sync, del []string) *event.Batch {
		return &event.Batch{Seq: seq, Root: src, Sync: append([]string{}, sync...), Delete: append([]string{}, del...)}
	}
	e.Dispatch(b(1, []string{"a"}, nil))
	<-h.started // batch 1 runs; the next ones queue
	write(src, "x", "x1")
	e.Dispatch(b(2, []string{"x", "d/"}, nil))
	must(t, os.Remove(src+"x"))
	e.Dispatch(b(3, nil, []string{"x", "keep", "gone", "d"}))
	write(src, "x", "x2")
	write(src, "keep", "new")
	write(src, "d/f", "f2")
	e.Dispatch(b(4, []string{"x", "keep", "d/"}, nil))
	close(h.release)
	e.Close()
	for rel, want := range map[string]string{"a": "a", "x": "x2", "keep": "new", "d/f": "f2", "gone": ""} {
		got, err := os.ReadFile(dst + rel)
		if want == "" {
			if err == nil {
				t.Errorf("%s: still on the target", rel)
			}
			continue
		}
		if string(got) != want {
			t.Errorf("%s: target has %q (%v), want %q", rel, got, err, want)
		}
	}
	if h.runs != 2 || res.n() != 4 {
		t.Fatalf("%d rsync runs (want 2: batch 1, then 2–4 merged), %d results", h.runs, res.n())
	}
	for _, r := range res.rs {
		if !r.OK {
			t.Errorf("result %+v", r)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
