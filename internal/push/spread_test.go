package push

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// mkTree creates each path under root: "d/" a directory, anything else a
// file holding its own name.
func mkTree(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			must(t, os.MkdirAll(full, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(p), 0o644))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSpread(t *testing.T) {
	cases := []struct {
		name    string
		tree    []string
		paths   []string
		n, min  int
		others  [][]string
		exclude []string
	}{
		{name: "one new tree over two jobs", tree: []string{"new/a/", "new/b/", "new/c/", "new/d/", "new/f"},
			paths: []string{"new/"}, n: 2, min: 2,
			others: [][]string{{"new/b/", "new/d/"}}, exclude: []string{"/new/b", "/new/d"}},
		{name: "three jobs", tree: []string{"new/a/", "new/b/", "new/c/", "new/d/"},
			paths: []string{"new/"}, n: 3, min: 2,
			others: [][]string{{"new/b/"}, {"new/c/"}}, exclude: []string{"/new/b", "/new/c"}},
		{name: "the root", tree: []string{"a/", "b/", "c/", "x"},
			paths: []string{"."}, n: 2, min: 2,
			others: [][]string{{"b/"}}, exclude: []string{"/b"}},
		{name: "descends while there are too few", tree: []string{"r/only/a/", "r/only/b/", "r/only/c/"},
			paths: []string{"r/"}, n: 2, min: 2,
			others: [][]string{{"r/only/b/"}}, exclude: []string{"/r/only/b"}},
		{name: "names that are not literal patterns stay with job 0",
			tree:  []string{"n/a*/", "n/b?/", "n/[c]/", `n/d\/`, "n/ e/", "n/f /", "n/g\nh/", "n/i/", "n/j/", "n/k/"},
			paths: []string{"n/"}, n: 2, min: 2,
			others: [][]string{{"n/j/"}}, exclude: []string{"/n/j"}},
		{name: "symlinks are not descended", tree: []string{"s/a/", "s/b/"},
			paths: []string{"s/", "link/"}, n: 2, min: 2,
			others: [][]string{{"s/b/"}}, exclude: []string{"/s/b"}},
		{name: "too small", tree: []string{"new/a/", "new/b/"}, paths: []string{"new/"}, n: 2, min: 64},
		{name: "one subdirectory only", tree: []string{"new/a/x"}, paths: []string{"new/"}, n: 2, min: 1},
		{name: "no recursive entry", tree: []string{"a/", "b/"}, paths: []string{"a", "b"}, n: 2, min: 1},
		{name: "one job", tree: []string{"new/a/", "new/b/"}, paths: []string{"new/"}, n: 1, min: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir() + "/"
			mkTree(t, src, c.tree...)
			os.Symlink("s", src+"link")
			others, exclude := spread(src, c.paths, c.n, c.min)
			if fmt.Sprint(others) != fmt.Sprint(c.others) || fmt.Sprint(exclude) != fmt.Sprint(c.exclude) {
				t.Fatalf("got %q %q, want %q %q", others, exclude, c.others, c.exclude)
			}
		})
	}
}

// listTree maps each path under root to its content ("/" for a directory).
func listTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		must(t, err)
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			m[rel] = "/"
		} else {
			b, err := os.ReadFile(p)
			must(t, err)
			m[rel] = string(b)
		}
		return nil
	})
	return m
}

// A tree shared over -j jobs must end exactly as one run would leave it:
// every file copied, everything the source no longer has deleted (inside
// the units, beside them, at every level), what the pipeline's rules
// exclude kept on the target and not sent, with real rsync, for a new
// tree, the root copied recursively, and in filter mode.
func TestSpreadNeverLosesData(t *testing.T) {
	var src []string
	for i := range 12 {
		for j := range 3 {
			src = append(src, fmt.Sprintf("new/d%02d/s%d/f", i, j))
		}
		src = append(src, fmt.Sprintf("new/d%02d/top", i))
	}
	src = append(src, "new/file", "new/with space/f", "new/star*/f", "new/nl\nx/f", "new/d03/.git/objects/o", "other")
	// on the target: stale content in every place a run could miss
	dst := []string{
		"new/d00/s0/f",          // same name, old content
		"new/d01/stale",         // inside a unit
		"new/d02/s1/stale/deep", // deep inside a unit
		"new/d05/",              // an empty dir where the source has a tree
		"new/gone/x",            // a directory the source does not have
		"new/stale",             // beside the units
		"new/star*/stale",       // in a directory that is not a unit
		"new/d04/.git/keep",     // excluded by the rules: kept
		"new/d07/s2/x.swp",      // excluded by the rules: kept
		"new/.git/keep",         // excluded, at job 0's level
		"unrelated",             // outside the entry (only the root's recursive copy deletes it)
	}
	rules := &event.Rules{Exclude: []string{".git", "*.swp"}}
	for _, c := range []struct {
		name      string
		batch     event.Batch
		filter    bool
		maxDelete int
	}{
		{name: "new tree", batch: event.Batch{Sync: []string{"new/"}}},
		{name: "new tree, --max-delete within", batch: event.Batch{Sync: []string{"new/"}}, maxDelete: 100},
		{name: "new tree, filter mode", batch: event.Batch{Sync: []string{"new/"}}, filter: true},
		{name: "the root recursively", batch: event.Batch{Sync: []string{"./"}}},
	} {
		for _, jobs := range []int{2, 3, 4} {
			t.Run(fmt.Sprintf("%s -j%d", c.name, jobs), func(t *testing.T) {
				s, d := t.TempDir()+"/", t.TempDir()+"/"
				mkTree(t, s, src...)
				mkTree(t, d, dst...)
				tg, err := rsync.ParseTarget(d)
				must(t, err)
				f := &countingRunner{}
				p := &Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true}, Runner: f, Jobs: jobs, SplitMin: 8, MaxDelete: c.maxDelete}
				if c.filter {
					p.setFilter(tg.Spec)
				}
				b := c.batch
				b.Root, b.Rules = s, rules
				if r := p.Push(context.Background(), tg, &b); !r.OK {
					t.Fatalf("%+v", r)
				}
				if f.n < 2 {
					t.Fatalf("%d rsync runs: the tree was not shared", f.n)
				}
				want := listTree(t, s)
				for _, keep := range []string{"new/d04/.git", "new/d04/.git/keep", "new/d07/s2/x.swp", "new/.git", "new/.git/keep"} {
					want[keep] = "/"
					if strings.HasSuffix(keep, "keep") || strings.HasSuffix(keep, ".swp") {
						want[keep] = keep
					}
				}
				delete(want, "new/d03/.git")
				delete(want, "new/d03/.git/objects")
				delete(want, "new/d03/.git/objects/o")
				if c.batch.Sync[0] != "./" {
					want["unrelated"] = "unrelated"
					delete(want, "other") // not in the batch
				}
				got := listTree(t, d)
				var diff []string
				for k, v := range want {
					if got[k] != v {
						diff = append(diff, fmt.Sprintf("%q: target %q, want %q", k, got[k], v))
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						diff = append(diff, fmt.Sprintf("%q: on the target only", k))
					}
				}
				slices.Sort(diff)
				if len(diff) > 0 {
					t.Fatalf("target differs:\n%s", strings.Join(diff, "\n"))
				}
			})
		}
	}
}

// --max-delete counts over the shared runs (dry runs, each with its own
// part): the tree's 9 stale entries, spread over the parts, are more than
// 5 together, so nothing runs.
func TestSpreadMaxDelete(t *testing.T) {
	s, d := t.TempDir()+"/", t.TempDir()+"/"
	for i := range 8 {
		mkTree(t, s, fmt.Sprintf("new/d%d/f", i))
		mkTree(t, d, fmt.Sprintf("new/d%d/stale", i))
	}
	mkTree(t, d, "new/stale")
	tg, err := rsync.ParseTarget(d)
	must(t, err)
	f := &countingRunner{}
	p := &Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true}, Runner: f, Jobs: 4, SplitMin: 4, MaxDelete: 5}
	r := p.Push(context.Background(), tg, &event.Batch{Root: s, Sync: []string{"new/"}})
	if r.OK || r.Exit != rsync.ExitDelLimit || !strings.Contains(r.Err, "more than --max-delete 5") {
		t.Fatalf("%+v", r)
	}
	if got := listTree(t, d); got["new/stale"] == "" || got["new/d3/stale"] == "" || got["new/d0/f"] != "" {
		t.Fatalf("the target changed: %q", got)
	}
	if f.n < 2 {
		t.Fatalf("%d runs: the tree was not shared", f.n)
	}
}

// countingRunner runs the real rsync and counts the runs.
type countingRunner struct {
	mu sync.Mutex
	n  int
}

func (c *countingRunner) Run(ctx context.Context, r rsync.Run) rsync.Outcome {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return rsync.ExecRunner{}.Run(ctx, r)
}

// With -H (as the documented full sync that restores hard links runs) a
// tree is never split: links between files of different parts would arrive as
// separate copies.
func TestSpreadKeepsHardLinks(t *testing.T) {
	s, d := t.TempDir()+"/", t.TempDir()+"/"
	for i := range 8 {
		mkTree(t, s, fmt.Sprintf("d%d/f", i))
	}
	must(t, os.Link(s+"d0/f", s+"d7/link"))
	tg, err := rsync.ParseTarget(d)
	must(t, err)
	f := &countingRunner{}
	p := &Pusher{Binary: "rsync", Opts: rsync.Options{Delete: true, Extra: []string{"-H"}}, Runner: f, Jobs: 4, SplitMin: 2}
	if r := p.Push(context.Background(), tg, &event.Batch{Root: s, Sync: []string{"./"}}); !r.OK {
		t.Fatalf("%+v", r)
	}
	a, err1 := os.Stat(d + "d0/f")
	b, err2 := os.Stat(d + "d7/link")
	if err1 != nil || err2 != nil || !os.SameFile(a, b) || f.n != 1 {
		t.Fatalf("hard link not kept (%v %v) after %d runs", err1, err2, f.n)
	}
}

// How a batch of fewer paths than SplitMin with recursive entries is
// shared: trees at least as many as the jobs go round-robin, fewer are
// spread below, one small tree stays one run, and -H keeps everything in
// one run.
func TestTreeJobs(t *testing.T) {
	cases := []struct {
		name  string
		tree  []string
		sync  []string
		extra []string
		runs  int
	}{
		{"leaf trees round-robin", []string{"a/f", "b/f", "c/f", "d/f", "e/f"}, []string{"a/", "b/", "c/", "d/", "e/", "x"}, nil, 2},
		{"one tree spread below", []string{"t/a/f", "t/b/f", "t/c/f", "t/d/f"}, []string{"t/"}, nil, 2},
		{"one leaf tree", []string{"t/f", "t/g"}, []string{"t/"}, nil, 1},
		{"trees with -H", []string{"a/f", "b/f", "c/f"}, []string{"a/", "b/", "c/"}, []string{"-aH"}, 1},
		{"no recursive entry, few paths", []string{"a/f", "b/f"}, []string{"a/f", "b/f"}, nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, f, src := setup(t, func(int, rsync.Run) rsync.Outcome { return rsync.Outcome{} })
			mkTree(t, src, c.tree...)
			p.Jobs, p.SplitMin, p.Opts.Extra = 2, 4, c.extra
			tg, _ := rsync.ParseTarget("h::m")
			if r := p.Push(context.Background(), tg, &event.Batch{Root: src, Sync: c.sync}); !r.OK {
				t.Fatalf("%+v", r)
			}
			if len(f.runs) != c.runs {
				t.Fatalf("%d runs, want %d", len(f.runs), c.runs)
			}
		})
	}
}
