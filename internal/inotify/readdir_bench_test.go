package inotify

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// readDirStd is readDir with os.File.ReadDir (unsorted), for the
// comparison.
func readDirStd(dir string) ([]dirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil
	}
	out := make([]dirEntry, 0, len(des))
	for _, de := range des {
		typ := uint8(unix.DT_REG)
		switch {
		case de.IsDir():
			typ = unix.DT_DIR
		case de.Type()&os.ModeSymlink != 0:
			typ = unix.DT_LNK
		}
		out = append(out, dirEntry{de.Name(), typ})
	}
	return out, nil
}

// BenchmarkReadDir: the hand-written getdents against os.File.ReadDir on a
// directory of 10,000 entries (inowait reads every directory at start).
func BenchmarkReadDir(b *testing.B) {
	dir := b.TempDir()
	for i := range 10000 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%05d.html", i)), nil, 0o644)
	}
	scratch := make([]byte, 32*1024)
	b.Run("getdents", func(b *testing.B) {
		for b.Loop() {
			if es, _ := readDir(dir+"/", scratch, false); len(es) != 10000 {
				b.Fatal(len(es))
			}
		}
	})
	b.Run("os.File.ReadDir", func(b *testing.B) {
		for b.Loop() {
			if es, _ := readDirStd(dir); len(es) != 10000 {
				b.Fatal(len(es))
			}
		}
	})
}

func TestReadDirMatchesStd(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Symlink("f", filepath.Join(dir, "link"))
	got, _ := readDir(dir+"/", make([]byte, 4096), false)
	want, _ := readDirStd(dir)
	m := map[string]uint8{}
	for _, e := range got {
		m[e.name] = e.typ
	}
	for _, e := range want {
		if m[e.name] != e.typ {
			t.Errorf("%s: getdents type %d, os.ReadDir %d", e.name, m[e.name], e.typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d entries, want %d", len(got), len(want))
	}
}

// A walk that only sets up watches lists the subdirectories alone.
func TestReadDirDirsOnly(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"sub", "sub2"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Symlink("sub", filepath.Join(dir, "link-to-dir"))
	got, err := readDir(dir+"/", make([]byte, 4096), true)
	names := map[string]bool{}
	for _, e := range got {
		names[e.name] = true
	}
	if err != nil || len(got) != 2 || !names["sub"] || !names["sub2"] {
		t.Fatalf("dirs only: %v, %v; want sub and sub2", got, err)
	}
}
