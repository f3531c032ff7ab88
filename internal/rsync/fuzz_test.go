package rsync

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
)

// FuzzNormalize: whatever a batch lists, the list rsync gets has only
// relative, clean paths inside the root (never absolute, never "..", never
// a NUL), sorted, each once.
func FuzzNormalize(f *testing.F) {
	f.Add("a\x00b/\x00../x\x00/etc/passwd\x00.\x00./\x00a//b/../c")
	f.Add("d/\x00d/e\x00gone/x/y")
	f.Fuzz(func(t *testing.T, list string) {
		src := t.TempDir()
		paths := strings.Split(list, "\x00")
		l := Normalize(src+"/", &event.Batch{Root: src + "/", Sync: paths, Delete: paths})
		for _, p := range append(append([]string{}, l.Paths...), l.Dirs...) {
			c := strings.TrimSuffix(p, "/")
			if strings.HasPrefix(p, "/") || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsRune(p, 0) || (c != "." && path.Clean(c) != c) {
				t.Fatalf("unsafe entry %q from %q", p, paths)
			}
		}
		if !slices.IsSorted(l.Paths) || len(slices.Compact(slices.Clone(l.Paths))) != len(l.Paths) {
			t.Fatalf("not sorted or repeated: %q", l.Paths)
		}
	})
}

// FuzzSplitOpts: an accepted --rsync-opts never carries shell syntax or an
// option rpush refuses, whatever the quoting.
func FuzzSplitOpts(f *testing.F) {
	for _, s := range []string{"-az --bwlimit=100", "-f'- *'", "--exclude-from -", "'-e' sh", "-a\\ -n", `"--delete"`, "-T/tmp/f -z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := SplitOpts(s)
		if err != nil {
			return
		}
		if err := CheckOpts(args); err != nil {
			t.Fatalf("SplitOpts(%q) accepted %q, which CheckOpts refuses: %v", s, args, err)
		}
		for _, a := range args {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if strings.HasPrefix(a, "--") && deniedLong[name] != "" {
				t.Fatalf("SplitOpts(%q) accepted %q", s, a)
			}
		}
	})
}

// FuzzParseTarget: a target either fails cleanly or has a kind and a
// destination ending in "/".
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"h::m", "u@h::m/p", "rsync://h:873/m", "h:/p", "/local", "./rel:x", "::", "rsync://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if tg.Kind < Local || tg.Kind > SSH || !strings.HasSuffix(tg.Dest, "/") || tg.Spec != s {
			t.Fatalf("ParseTarget(%q) = %+v", s, tg)
		}
	})
}
