package spool

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

func TestPutReadRemove(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(s.Dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %o", st.Mode().Perm())
	}
	e := &Entry{Target: "h::m", Attempts: 2, LastError: "daemon down", Exit: 10,
		FirstFailure: time.Unix(100, 0).UTC(), LastFailure: time.Unix(200, 0).UTC(),
		Batch: event.Batch{Seq: 5, Root: "/data/", Sync: []string{"a\xff b", "d/"}, Delete: []string{"$(touch x)"}, Events: 3}}
	p, err := s.Put(e)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("entry mode %o", fi.Mode().Perm())
	}
	got, err := s.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("read back %+v\nwant %+v", got, e)
	}
	list, _ := s.List()
	if len(list) != 1 || list[0] != p {
		t.Fatalf("list %v", list)
	}
	if err := s.Remove(p); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("after remove: %v", list)
	}
}

// TestCrashLeftovers: a temp file left by a crash mid-write is never
// listed (and old ones are cleaned); a corrupt entry is quarantined.
func TestCrashLeftovers(t *testing.T) {
	s, _ := Open(t.TempDir())
	tmp := filepath.Join(s.Dir, ".tmp-123")
	os.WriteFile(tmp, []byte(`{"target":"h::m"`), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(tmp, old, old)
	bad := filepath.Join(s.Dir, "1-000001-abcd.batch")
	os.WriteFile(bad, []byte("{\"target\":\"x\"}\nnot a batch\n"), 0o600)
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temp file not cleaned")
	}
	if _, err := s.Read(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read corrupt: %v", err)
	}
	q, err := s.Quarantine(bad)
	if err != nil || filepath.Base(filepath.Dir(q)) != "quarantine" {
		t.Fatalf("quarantine %q %v", q, err)
	}
}

func TestLock(t *testing.T) {
	s, _ := Open(t.TempDir())
	unlock, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	u2, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestPairs(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, p := range []Pair{{"/a/", "h::m"}, {"/a/", "h::m"}, {"/b/", "/backup"}} {
		s.RecordPairs([]Pair{p})
	}
	got, err := s.Pairs()
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
}
