package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%q %v", b, fi.Mode())
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 {
		t.Fatalf("left behind: %v", des)
	}
}

// A write that fails leaves the old file and no temporary file (the
// status file's old writer renamed a partial file into place).
func TestWriteFailureKeepsOld(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	Write(p, []byte("old"), 0o600)
	// A directory that cannot take a new file: the write fails early.
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	err := Write(p, []byte("new"), 0o600)
	if os.Geteuid() == 0 {
		// root ignores the mode; make the failure a rename onto a directory
		os.Chmod(dir, 0o700)
		os.Remove(p)
		os.Mkdir(p, 0o700)
		os.WriteFile(filepath.Join(p, "x"), nil, 0o600)
		err = Write(p, []byte("new"), 0o600)
	}
	if err == nil {
		t.Fatal("no error")
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), TempPrefix) {
			t.Fatalf("temporary file left: %s", de.Name())
		}
	}
}
