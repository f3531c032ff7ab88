package spool

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzEntry: a spool file either is refused as corrupt or decodes to an
// entry that encodes and decodes back to itself; failreplay never runs
// anything from an entry it could not read.
func FuzzEntry(f *testing.F) {
	f.Add([]byte(`{"target":"h::m","attempts":2,"first_failure":"2026-12-01T00:00:00Z","last_failure":"2026-12-01T00:00:00Z","last_error":"x","exit":10}` + "\n" +
		`{"seq":1,"root":"/data/","sync":["a\udcff"],"delete":["$(id)"]}` + "\n"))
	f.Add([]byte(`{"target":"h::m"}` + "\n" + `{"seq":1,"root":"rel/","full":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decode(b)
		if err != nil {
			return
		}
		enc, err := encode(e)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := decode(enc)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		norm := func(e *Entry) *Entry {
			c := *e
			c.Batch.Sync = append([]string{}, c.Batch.Sync...)
			c.Batch.Delete = append([]string{}, c.Batch.Delete...)
			return &c
		}
		if !reflect.DeepEqual(norm(again), norm(e)) {
			t.Fatalf("round trip:\n%+v\n%+v", again, e)
		}
	})
}

// FuzzPairs: targets.json is read without panicking, whatever it holds.
func FuzzPairs(f *testing.F) {
	f.Add([]byte(`[{"root":"/d/","target":"h::m"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Spool{Dir: t.TempDir()}
		if err := os.WriteFile(filepath.Join(s.Dir, stateFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s.Pairs()
	})
}
