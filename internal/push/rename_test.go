//go:build linux

package push

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// renameFixture: the source shows big renamed to moved; the target still
// has big (what the source's moved is, same size and mtime) and a file of
// its own at moved.
func renameFixture(t *testing.T) (src, dst string, p *Pusher, tg rsync.Target) {
	t.Helper()
	src, dst = t.TempDir()+"/", t.TempDir()+"/"
	stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []string{src + "moved", dst + "big"} {
		if err := os.WriteFile(f, []byte("the data"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(f, stamp, stamp)
	}
	if err := os.WriteFile(dst+"moved", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg, err := rsync.ParseTarget(dst)
	if err != nil {
		t.Fatal(err)
	}
	return src, dst, &Pusher{}, tg
}

func read(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// Each case tries to make a rename on a local target lose what the
// target holds; none may, and each renamed file not moved is sent as
// written by the batch's own runs.
func TestRenameLocalNeverLosesData(t *testing.T) {
	batch := func(r ...event.Rename) *event.Batch {
		return &event.Batch{Root: "", Sync: []string{"moved"}, Delete: []string{"big"}, Renames: r}
	}
	t.Run("applied when certain", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		written, n, _ := p.renames(context.Background(), tg, src, batch(event.Rename{From: "big", To: "moved"}))
		if n != 1 || len(written) != 0 || read(t, dst+"moved") != "the data" {
			t.Fatalf("applied %d, written %q, moved holds %q", n, written, read(t, dst+"moved"))
		}
	})
	t.Run("the target's old path holds other data", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		os.WriteFile(dst+"big", []byte("different"), 0o644)
		written, n, _ := p.renames(context.Background(), tg, src, batch(event.Rename{From: "big", To: "moved"}))
		if n != 0 || !slices.Equal(written, []string{"moved"}) || read(t, dst+"big") != "different" || read(t, dst+"moved") != "old" {
			t.Fatalf("applied %d, written %q; big %q moved %q", n, written, read(t, dst+"big"), read(t, dst+"moved"))
		}
	})
	t.Run("the source still has the old path", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		os.WriteFile(src+"big", []byte("the data"), 0o644)
		if _, n, _ := p.renames(context.Background(), tg, src, batch(event.Rename{From: "big", To: "moved"})); n != 0 || read(t, dst+"big") != "the data" {
			t.Fatalf("applied %d: the target's big was moved away while the source still has it", n)
		}
	})
	t.Run("a symlink on the target leads out of it", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		outside := t.TempDir()
		os.WriteFile(filepath.Join(outside, "precious"), []byte("keep"), 0o644)
		os.Symlink(outside, dst+"link")
		os.MkdirAll(src+"link", 0o755)
		os.WriteFile(src+"link/precious", []byte("the data"), 0o644)
		r := event.Rename{From: "big", To: "link/precious"}
		if _, n, _ := p.renames(context.Background(), tg, src, batch(r)); n != 0 || read(t, filepath.Join(outside, "precious")) != "keep" {
			t.Fatalf("applied %d through a symlink: outside holds %q", n, read(t, filepath.Join(outside, "precious")))
		}
	})
	t.Run("over a directory on the target", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		os.Remove(dst + "moved")
		os.MkdirAll(dst+"moved/inside", 0o755)
		if _, n, _ := p.renames(context.Background(), tg, src, batch(event.Rename{From: "big", To: "moved"})); n != 0 {
			t.Fatalf("applied %d over a directory", n)
		}
		if _, err := os.Stat(dst + "moved/inside"); err != nil {
			t.Fatalf("the target's directory is gone: %v", err)
		}
	})
	t.Run("paths that leave the root", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		for _, r := range []event.Rename{{From: "../x", To: "moved"}, {From: "big", To: "/tmp/x"}, {From: "big", To: "a/../../x"}} {
			if _, n, _ := p.renames(context.Background(), tg, src, batch(r)); n != 0 {
				t.Fatalf("%v applied", r)
			}
		}
		if read(t, dst+"big") != "the data" {
			t.Fatal("big moved")
		}
	})
	t.Run("something mounted over the source root", func(t *testing.T) {
		src, dst, p, tg := renameFixture(t)
		if err := p.Gate.Check(src, false); err != nil { // the root as first seen
			t.Fatal(err)
		}
		clitest.MountTmpfs(t, src, "1m")
		// another tree that shows the rename, the same file as the target's
		os.WriteFile(src+"moved", []byte("the data"), 0o644)
		stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		os.Chtimes(src+"moved", stamp, stamp)
		if _, n, _ := p.renames(context.Background(), tg, src, batch(event.Rename{From: "big", To: "moved"})); n != 0 || read(t, dst+"big") != "the data" {
			t.Fatalf("applied %d past the gate", n)
		}
	})
}
