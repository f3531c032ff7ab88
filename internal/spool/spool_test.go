package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
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

// Safety issue, case 6: a spool someone else could have written is
// refused with a clear error; a spool only others could read is closed.
func TestOpenRefusesForeignSpools(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(real, link)
	if _, err := Open(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("symlink: %v", err)
	}
	wide := filepath.Join(base, "wide")
	os.Mkdir(wide, 0o700)
	os.Chmod(wide, 0o777)
	if _, err := Open(wide); !errors.Is(err, ErrMode) {
		t.Errorf("mode 0777: %v", err)
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file); !errors.Is(err, ErrNotDir) {
		t.Errorf("file: %v", err)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		if _, err := Open(other); !errors.Is(err, ErrNotOwner) {
			t.Errorf("owned by nobody: %v", err)
		}
	}
	readable := filepath.Join(base, "readable")
	os.Mkdir(readable, 0o755)
	if _, err := Open(readable); err != nil {
		t.Fatalf("mode 0755: %v", err)
	}
	if fi, _ := os.Stat(readable); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode 0755 not tightened: %v", fi.Mode())
	}
}

// Safety issue, case 8: rpush processes sharing a spool never lose each
// other's (root, target) pairs.
func TestRecordPairsConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir) // one Spool per process, as rpush has
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.RecordPairs([]Pair{{Root: fmt.Sprintf("/r%d/", i), Target: "h::m"}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, _ := Open(dir)
	pairs, err := s.Pairs()
	if err != nil || len(pairs) != n {
		t.Fatalf("%d pairs recorded of %d (%v)", len(pairs), n, err)
	}
}

// Safety issue, case 9: an entry whose root is not an absolute directory
// is corrupt (quarantined), not a failure replayed on every run.
func TestInvalidRootIsCorrupt(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, root := range []string{"data/", "/data", "."} {
		p, err := s.Put(&Entry{Target: "h::m", Batch: event.Batch{Root: root, Full: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("root %q: %v", root, err)
		}
		s.Remove(p)
	}
}

func TestWaitingPerTarget(t *testing.T) {
	s, _ := Open(t.TempDir())
	t0 := time.Unix(1000, 0)
	now := t0
	s.Now = func() time.Time { return now }
	for i, tg := range []string{"a::m", "b::m", "a::m"} {
		now = t0.Add(time.Duration(i) * time.Second)
		if _, err := s.Put(&Entry{Target: tg, Batch: event.Batch{Seq: uint64(i), Root: "/d/", Full: true}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, oldest := s.Waiting("a::m"); n != 2 || !oldest.Equal(t0) {
		t.Fatalf("a::m: %d, %v", n, oldest)
	}
	if n, oldest := s.Waiting("b::m"); n != 1 || !oldest.Equal(t0.Add(time.Second)) {
		t.Fatalf("b::m: %d, %v", n, oldest)
	}
	if n, _ := s.Waiting("c::m"); n != 0 {
		t.Fatalf("c::m: %d", n)
	}
}

// rules.json keeps each root's rules as rpush last saw them: includes
// given but empty stay given, nil removes the root's entry.
func TestRecordRules(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &event.Rules{Exclude: []string{"/cache/"}}
	b := &event.Rules{Exclude: []string{"*.swp"}, Include: []string{}}
	for _, step := range []struct {
		root string
		r    *event.Rules
	}{{"/a/", a}, {"/b/", b}, {"/a/", nil}} {
		if err := s.RecordRules(step.root, step.r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Rules()
	if err != nil || len(got) != 1 || !got["/b/"].Equal(b) || got["/b/"].Include == nil {
		t.Fatalf("%v %v", got, err)
	}
}
