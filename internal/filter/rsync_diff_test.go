package filter

import (
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/rsync"
)

// TestRulesDifferential runs real rsync: for each rule set, a source tree
// and a target that also holds files of its own, one full sync
// ("rsync -a --delete" with the rules, as rpush runs it). What the target
// holds after it must be what the live stream leaves there, as Decide
// says: every path the rules pass, as in the source; every path they
// exclude, as it was on the target (rsync neither sends nor deletes it);
// the directories that still hold something; nothing else.
func TestRulesDifferential(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed (make deps)")
	}
	rng := rand.New(rand.NewSource(3))
	for i, rs := range ruleSets {
		s := set(t, rs.exclude, rs.include, rs.temp, rs.icase)
		rules, errs := s.Rules()
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		all := corpus(rng, 400)
		src, dst := t.TempDir(), t.TempDir()
		source, target := map[string]bool{}, map[string]bool{}
		for p, dir := range all {
			switch rng.Intn(3) {
			case 0:
				source[p] = dir
			case 1:
				target[p] = dir
			default:
				source[p], target[p] = dir, dir
			}
		}
		// Ancestors must exist where their children do.
		for _, m := range []map[string]bool{source, target} {
			for p := range m {
				for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
					m[d] = true
				}
			}
		}
		build(t, src, source, "source")
		build(t, dst, target, "dst")

		args := append([]string{"-a", "--delete", "--force"}, rsync.RuleArgs(&rules, true)...)
		args = append(args, src+"/", dst+"/")
		if out, err := exec.Command("rsync", args...).CombinedOutput(); err != nil {
			t.Fatalf("rules %d: rsync: %v\n%s", i, err, out)
		}

		want := map[string]string{}
		tag := func(dir bool, s string) string {
			if dir {
				return "dir"
			}
			return s
		}
		for p, dir := range source {
			if decide(s, p, dir) {
				want[p] = tag(dir, "source")
			}
		}
		for p, dir := range target {
			if !decide(s, p, dir) {
				want[p] = tag(dir, "dst")
			}
		}
		// A directory stays where something under it stays (rsync cannot
		// delete a directory that holds an excluded file).
		for p := range want {
			for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
				if _, ok := want[d]; !ok {
					want[d] = "dir"
				}
			}
		}
		got := read(t, dst)
		for p, w := range want {
			g, ok := got[p]
			switch {
			case !ok:
				t.Errorf("rules %q %q: %q (%s) missing on the target", rules.Exclude, rules.Include, p, w)
			case g != w:
				t.Errorf("rules %q %q: %q holds %q, want %q", rules.Exclude, rules.Include, p, g, w)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("rules %q %q: %q is on the target, the live stream would not leave it there", rules.Exclude, rules.Include, p)
			}
		}
	}
}

// build makes the tree: directories, and files holding tag.
func build(t *testing.T, root string, paths map[string]bool, tag string) {
	t.Helper()
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	for _, p := range keys {
		full := filepath.Join(root, p)
		if paths[p] {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(tag), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// read maps each path under root to its file's content, or "dir".
func read(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
