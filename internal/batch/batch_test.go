package batch

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

const root = "/data/"

// e builds an event: "CREATE,ISDIR a/b" style.
func e(ops, rel string) event.Event {
	op, err := event.ParseOps(ops)
	if err != nil {
		panic(err)
	}
	watch, name := root, rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		watch, name = root+rel[:i+1], rel[i+1:]
	}
	return event.Event{Root: root, Watch: watch, Name: name, Path: watch + name, Op: op}
}

func TestCoalescingRules(t *testing.T) {
	cases := []struct {
		name       string
		evs        []event.Event
		sync, del  []string
		full, none bool
	}{
		{"reads only", []event.Event{e("open", "f"), e("access", "f"), e("close_nowrite", "f")}, nil, nil, false, true},
		{"create write close", []event.Event{e("create", "f"), e("modify", "f"), e("modify", "f"), e("close_write", "f")}, []string{"f"}, nil, false, false},
		{"many writes", []event.Event{e("modify", "f"), e("close_write", "f"), e("modify", "f"), e("close_write", "f")}, []string{"f"}, nil, false, false},
		{"attrib", []event.Event{e("attrib", "f")}, []string{"f"}, nil, false, false},
		{"symlink create", []event.Event{e("create", "link")}, []string{"link"}, nil, false, false},
		{"create then delete", []event.Event{e("create", "tmp"), e("modify", "tmp"), e("delete", "tmp")}, nil, []string{"tmp"}, false, false},
		{"delete then create", []event.Event{e("delete", "f"), e("create", "f"), e("close_write", "f")}, []string{"f"}, nil, false, false},
		{"dir deleted then recreated", []event.Event{e("create", "d/x"), e("delete,isdir", "d"), e("create,isdir", "d")}, []string{"d/"}, nil, false, false},
		{"rename pair", []event.Event{e("moved_from", "a"), e("moved_to", "b")}, []string{"b"}, []string{"a"}, false, false},
		{"rename dir", []event.Event{e("moved_from,isdir", "a"), e("moved_to,isdir", "b")}, []string{"b/"}, []string{"a"}, false, false},
		{"rename chain", []event.Event{e("moved_from", "A"), e("moved_to", "B"), e("moved_from", "B"), e("moved_to", "C")}, []string{"C"}, []string{"A", "B"}, false, false},
		{"editor save via temp", []event.Event{e("create", ".f.tmp"), e("close_write", ".f.tmp"), e("moved_from", ".f.tmp"), e("moved_to", "f")}, []string{"f"}, []string{".f.tmp"}, false, false},
		{"moved in from outside", []event.Event{e("moved_to,isdir", "pkg")}, []string{"pkg/"}, nil, false, false},
		{"moved out", []event.Event{e("moved_from", "x")}, nil, []string{"x"}, false, false},
		{"mkdir absorbs children", []event.Event{e("create", "d/a"), e("close_write", "d/a"), e("create,isdir", "d"), e("create", "d/b")}, []string{"d/"}, nil, false, false},
		{"rmdir absorbs children", []event.Event{e("modify", "d/a"), e("delete", "d/sub/x"), e("delete,isdir", "d")}, nil, []string{"d"}, false, false},
		{"dir attrib only", []event.Event{e("attrib,isdir", "d")}, []string{"d"}, nil, false, false},
		{"overflow", []event.Event{e("modify", "f"), {Root: root, Op: event.QOverflow}, e("modify", "g")}, nil, nil, true, false},
		{"resync", []event.Event{{Root: root, Watch: root, Path: root, Op: event.Resync}}, nil, nil, true, false},
		{"root delete_self is not a mass delete", []event.Event{{Root: root, Watch: root, Path: root, Op: event.DeleteSelf}}, nil, nil, false, true},
		{"self events of subdirs ignored", []event.Event{{Root: root, Watch: root + "d/", Path: root + "d/", Op: event.DeleteSelf}}, nil, nil, false, true},
		{"sorted", []event.Event{e("modify", "z"), e("modify", "a"), e("modify", "m/x")}, []string{"a", "m/x", "z"}, nil, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			co := New(Config{Window: time.Second, Rollup: 128})
			for i := range c.evs {
				co.Add(&c.evs[i], t0)
			}
			bs := co.Flush()
			if c.none {
				if len(bs) != 0 {
					t.Errorf("%s: got %+v, want no batch", c.name, bs)
				}
				return
			}
			if len(bs) != 1 {
				t.Errorf("%s: %d batches", c.name, len(bs))
				return
			}
			b := bs[0]
			if c.sync == nil {
				c.sync = []string{}
			}
			if c.del == nil {
				c.del = []string{}
			}
			if b.Full != c.full || !reflect.DeepEqual(b.Sync, c.sync) || !reflect.DeepEqual(b.Delete, c.del) {
				t.Errorf("%s: got full=%v sync=%q delete=%q; want full=%v sync=%q delete=%q", c.name, b.Full, b.Sync, b.Delete, c.full, c.sync, c.del)
			}
			if b.Events != len(c.evs) {
				t.Errorf("%s: events = %d, want %d", c.name, b.Events, len(c.evs))
			}
		})
	}
}

// A MOVED_FROM whose MOVED_TO lands in the next batch still ends right.
func TestSplitRename(t *testing.T) {
	co := New(Config{Window: time.Second})
	a, b := e("moved_from", "a"), e("moved_to", "b")
	co.Add(&a, t0)
	first := co.Due(t0.Add(time.Second))
	co.Add(&b, t0.Add(2*time.Second))
	second := co.Flush()
	if len(first) != 1 || !reflect.DeepEqual(first[0].Delete, []string{"a"}) || len(second) != 1 || !reflect.DeepEqual(second[0].Sync, []string{"b"}) {
		t.Fatalf("first %+v second %+v", first, second)
	}
	if second[0].Seq <= first[0].Seq {
		t.Errorf("seq not increasing: %d then %d", first[0].Seq, second[0].Seq)
	}
}

func TestRollupAndFull(t *testing.T) {
	co := New(Config{Window: time.Second, Rollup: 3, FullThreshold: 100})
	for i := 0; i < 4; i++ {
		ev := e("close_write", fmt.Sprintf("www/img/%d.png", i))
		co.Add(&ev, t0)
	}
	other := e("modify", "www/index.html")
	co.Add(&other, t0)
	bs := co.Flush()
	if len(bs) != 1 || !reflect.DeepEqual(bs[0].Sync, []string{"www/img/", "www/index.html"}) {
		t.Fatalf("rollup: %+v", bs)
	}
	co = New(Config{Window: time.Second, Rollup: 1000, FullThreshold: 10})
	for i := 0; i < 11; i++ {
		ev := e("modify", fmt.Sprintf("d%d/f", i))
		co.Add(&ev, t0)
	}
	if bs := co.Flush(); len(bs) != 1 || !bs[0].Full || len(bs[0].Sync) != 0 {
		t.Fatalf("full threshold: %+v", bs)
	}
	co = New(Config{Window: time.Second, Rollup: 2})
	for _, n := range []string{"a", "b", "c"} {
		ev := e("modify", n)
		co.Add(&ev, t0)
	}
	if bs := co.Flush(); len(bs) != 1 || !bs[0].Full {
		t.Fatalf("rollup of the root must be a full sync: %+v", bs)
	}
}

// TestTriggers steps the clock by hand: quiet period, max delay, max paths.
func TestTriggers(t *testing.T) {
	co := New(Config{Window: 500 * time.Millisecond, MaxDelay: 2 * time.Second, MaxPaths: 3})
	f := e("modify", "f")
	co.Add(&f, t0)
	if next, ok := co.Next(); !ok || !next.Equal(t0.Add(500*time.Millisecond)) {
		t.Fatalf("Next = %v %v", next, ok)
	}
	if bs := co.Due(t0.Add(499 * time.Millisecond)); len(bs) != 0 {
		t.Fatal("due before the quiet period")
	}
	if bs := co.Due(t0.Add(500 * time.Millisecond)); len(bs) != 1 {
		t.Fatal("not due after the quiet period")
	}
	// A steady trickle (every 400ms < window) still flushes at MaxDelay.
	var flushedAt time.Duration
	for ms := 0; ms <= 3000; ms += 400 {
		now := t0.Add(10*time.Second + time.Duration(ms)*time.Millisecond)
		co.Add(&f, now)
		if bs := co.Due(now); len(bs) > 0 {
			flushedAt = time.Duration(ms) * time.Millisecond
			break
		}
	}
	if flushedAt != 2000*time.Millisecond {
		t.Fatalf("trickle flushed at %v, want 2s (max delay)", flushedAt)
	}
	for _, n := range []string{"a", "b", "c"} {
		ev := e("modify", n)
		co.Add(&ev, t0.Add(time.Minute))
	}
	if bs := co.Due(t0.Add(time.Minute)); len(bs) != 1 || len(bs[0].Sync) != 3 {
		t.Fatalf("max paths: %+v", bs)
	}
}

func TestOneBatchPerRoot(t *testing.T) {
	co := New(Config{Window: time.Second})
	a := event.Event{Root: "/a/", Watch: "/a/", Name: "x", Path: "/a/x", Op: event.Modify}
	b := event.Event{Root: "/b/", Watch: "/b/", Name: "y", Path: "/b/y", Op: event.Modify}
	co.Add(&a, t0)
	co.Add(&b, t0)
	co.Add(&a, t0)
	bs := co.Flush()
	if len(bs) != 2 || bs[0].Root != "/a/" || bs[1].Root != "/b/" || bs[0].Seq != 1 || bs[1].Seq != 2 {
		t.Fatalf("%+v", bs)
	}
	// A flush with nothing pending must not forget the roots.
	if bs := co.Flush(); len(bs) != 0 {
		t.Fatalf("empty flush: %+v", bs)
	}
	// Overflow with no root: every known root resyncs.
	ov := event.Event{Op: event.QOverflow}
	co.Add(&ov, t0)
	bs = co.Flush()
	if len(bs) != 2 || !bs[0].Full || !bs[1].Full {
		t.Fatalf("overflow for all roots: %+v", bs)
	}
}

// TestLoop runs the driver under synctest: a fake clock, no sleeps.
func TestLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		co := New(Config{Window: 500 * time.Millisecond, MaxDelay: 5 * time.Second})
		in := make(chan []event.Event)
		var mu sync.Mutex
		var got []event.Batch
		snapshot := func() []event.Batch {
			mu.Lock()
			defer mu.Unlock()
			return append([]event.Batch(nil), got...)
		}
		done := make(chan error)
		go func() {
			done <- Loop(co, in, func(b *event.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, *b)
				return nil
			})
		}()
		start := time.Now()
		in <- []event.Event{e("create", "f"), e("close_write", "f")}
		time.Sleep(400 * time.Millisecond)
		synctest.Wait()
		if len(snapshot()) != 0 {
			t.Fatal("emitted inside the quiet period")
		}
		in <- []event.Event{e("modify", "g")} // restarts the quiet period
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		if len(snapshot()) != 0 {
			t.Fatal("emitted before the quiet period after the last event")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got := snapshot(); len(got) != 1 || !reflect.DeepEqual(got[0].Sync, []string{"f", "g"}) {
			t.Fatalf("after quiet period: %+v", got)
		}
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Fatalf("elapsed %v", el)
		}
		in <- []event.Event{e("modify", "h")}
		close(in) // EOF flushes at once
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := snapshot(); len(got) != 2 || got[1].Sync[0] != "h" {
			t.Fatalf("EOF flush: %+v", got)
		}
	})
}

// TestLoopStopFlushes: a stop (the reader closes in after SIGTERM) emits
// what is pending and what was still queued on in, at once.
func TestLoopStopFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		co := New(Config{Window: time.Hour})
		in := make(chan []event.Event, 2)
		var got []event.Batch
		done := make(chan error)
		go func() {
			done <- Loop(co, in, func(b *event.Batch) error { got = append(got, *b); return nil })
		}()
		in <- []event.Event{e("modify", "f")}
		synctest.Wait()
		in <- []event.Event{e("modify", "g")} // read before the stop, still queued
		close(in)
		if err := <-done; err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Sync, []string{"f", "g"}) {
			t.Fatalf("err %v got %+v", err, got)
		}
	})
}

// Loop keeps nothing of a received slice once it receives the next
// (evbatch refills its buffers on that promise): a slice overwritten
// after the following send must not change what is emitted, nor lose a
// path it carried.
func TestLoopSliceReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		co := New(Config{Window: time.Hour})
		in := make(chan []event.Event)
		var got []event.Batch
		done := make(chan error)
		go func() {
			done <- Loop(co, in, func(b *event.Batch) error { got = append(got, *b); return nil })
		}()
		a := []event.Event{e("close_write", "a1"), e("delete", "a2")}
		b := []event.Event{e("close_write", "b1")}
		in <- a
		in <- b                                                     // received: Loop is done with a
		a[0], a[1] = e("close_write", "x1"), e("close_write", "x2") // refilled, as evbatch does
		in <- a                                                     // received: Loop is done with b
		b[0] = e("close_write", "y1")                               // refilled
		in <- b
		close(in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0].Sync, []string{"a1", "b1", "x1", "x2", "y1"}) || !reflect.DeepEqual(got[0].Delete, []string{"a2"}) {
			t.Fatalf("got %+v", got)
		}
	})
}

func ExampleCoalescer() {
	c := New(Config{Window: 500 * time.Millisecond})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, ev := range []event.Event{
		e("create", "www/.index.html.swp"), e("create", "www/index.html"), e("close_write", "www/index.html"),
		e("delete", "www/.index.html.swp"), e("moved_from,isdir", "old"), e("moved_to,isdir", "new"),
	} {
		c.Add(&ev, now)
	}
	for _, b := range c.Due(now.Add(500 * time.Millisecond)) {
		fmt.Printf("sync %q delete %q\n", b.Sync, b.Delete)
	}
	// Output:
	// sync ["new/" "www/index.html"] delete ["old" "www/.index.html.swp"]
}

// A failing emit (stdout closed) reports what was not written: the batch
// that failed, the ones after it, and what is still pending (the issue saw
// "0 pending paths not written" after losing batches).
func TestLoopEmitErrorCountsLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		co := New(Config{Window: time.Second, Rollup: 0, FullThreshold: 0})
		in := make(chan []event.Event, 1)
		done := make(chan error)
		go func() {
			done <- Loop(co, in, func(*event.Batch) error { return errors.New("broken pipe") })
		}()
		in <- []event.Event{e("modify", "a"), e("modify", "b"), e("delete", "c")}
		close(in)
		err := <-done
		var ee *EmitError
		if !errors.As(err, &ee) || ee.Paths != 3 || !strings.Contains(err.Error(), "3 paths not written") {
			t.Fatalf("%v", err)
		}
	})
}

// Issue 13: the batch says which synced files the kernel reported written,
// so that rpush sends them even when size and mtime match the target's.
func TestWrittenPaths(t *testing.T) {
	for _, c := range []struct {
		name    string
		evs     []event.Event
		written []string
	}{
		{"close_write", []event.Event{e("close_write", "f")}, []string{"f"}},
		{"modify only", []event.Event{e("modify", "f")}, []string{"f"}},
		{"created", []event.Event{e("create", "f")}, []string{"f"}},
		{"moved in", []event.Event{e("moved_to", "f")}, []string{"f"}},
		{"attrib only: quick check", []event.Event{e("attrib", "f")}, nil},
		{"written then chmod", []event.Event{e("close_write", "f"), e("attrib", "f")}, []string{"f"}},
		{"chmod then written", []event.Event{e("attrib", "f"), e("close_write", "f")}, []string{"f"}},
		{"deleted then recreated", []event.Event{e("delete", "f"), e("create", "f"), e("close_write", "f")}, []string{"f"}},
		{"written then deleted", []event.Event{e("close_write", "f"), e("delete", "f")}, nil},
		{"directory: recursive, quick check", []event.Event{e("create,isdir", "d"), e("close_write", "d/f")}, nil},
		{"dir chmod", []event.Event{e("attrib,isdir", "d")}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			co := New(Config{Window: time.Second})
			for i := range c.evs {
				co.Add(&c.evs[i], t0)
			}
			bs := co.Flush()
			var got []string
			for _, b := range bs {
				got = append(got, b.Written...)
				for _, w := range b.Written {
					if !slices.Contains(b.Sync, w) {
						t.Errorf("written %q not in sync %q", w, b.Sync)
					}
				}
			}
			if !reflect.DeepEqual(got, c.written) {
				t.Fatalf("written %q, want %q", got, c.written)
			}
		})
	}
}

// mv is the MOVED_FROM/MOVED_TO pair of one rename (a directory with dir).
func mv(cookie uint32, from, to string, dir bool) []event.Event {
	suffix := ""
	if dir {
		suffix = ",isdir"
	}
	f, t := e("moved_from"+suffix, from), e("moved_to"+suffix, to)
	f.Cookie, t.Cookie = cookie, cookie
	return []event.Event{f, t}
}

func evs(groups ...[]event.Event) []event.Event {
	var out []event.Event
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// Issue 16: renames inside the root are kept as renames (a hint rpush
// applies first); Sync and Delete still say the whole change, so the
// batch ends right without them.
func TestRenames(t *testing.T) {
	r := func(from, to string, dir bool) event.Rename { return event.Rename{From: from, To: to, Dir: dir} }
	for _, c := range []struct {
		name      string
		evs       []event.Event
		renames   []event.Rename
		sync, del []string
		written   []string
	}{
		{"file", mv(1, "a", "b", false), []event.Rename{r("a", "b", false)}, []string{"b"}, []string{"a"}, nil},
		{"directory", mv(1, "d", "e", true), []event.Rename{r("d", "e", true)}, []string{"e/"}, []string{"d"}, nil},
		{"chain a→b→c is one rename", evs(mv(1, "a", "b", false), mv(2, "b", "c", false)), []event.Rename{r("a", "c", false)}, []string{"c"}, []string{"a", "b"}, nil},
		{"and back: no rename", evs(mv(1, "a", "b", false), mv(2, "b", "a", false)), nil, []string{"a"}, []string{"b"}, []string{"a"}},
		{"rename then write: rename, then a written sync", evs(mv(1, "a", "b", false), []event.Event{e("close_write", "b")}), []event.Rename{r("a", "b", false)}, []string{"b"}, []string{"a"}, []string{"b"}},
		{"write then rename: no rename (the target's copy is old)", evs([]event.Event{e("close_write", "a")}, mv(1, "a", "b", false)), nil, []string{"b"}, []string{"a"}, []string{"b"}},
		{"write under a directory then its rename: no rename", evs([]event.Event{e("close_write", "d/f")}, mv(1, "d", "e", true)), nil, []string{"e/"}, []string{"d"}, nil},
		{"into a new directory: renamed, under its recursive sync", evs([]event.Event{e("create,isdir", "new")}, mv(1, "big", "new/big", false)), []event.Rename{r("big", "new/big", false)}, []string{"new/"}, []string{"big"}, nil},
		{"editor's save in a new directory: no rename (the target has no f.tmp)", evs([]event.Event{e("create,isdir", "site"), e("create", "site/f.tmp"), e("close_write", "site/f.tmp")}, mv(1, "site/f.tmp", "site/f", false)),
			nil, []string{"site/"}, nil, nil},
		{"out of a new directory: no rename", evs([]event.Event{e("create,isdir", "new"), e("close_write", "new/x")}, mv(1, "new/x", "x", false)), nil, []string{"new/", "x"}, nil, []string{"x"}},
		{"moved out of the root: a delete", []event.Event{{Root: root, Watch: root, Name: "a", Path: root + "a", Op: event.MovedFrom, Cookie: 7}}, nil, nil, []string{"a"}, nil},
		{"moved in from outside: a written sync", []event.Event{{Root: root, Watch: root, Name: "b", Path: root + "b", Op: event.MovedTo, Cookie: 7}}, nil, []string{"b"}, nil, []string{"b"}},
		{"renamed then deleted: nothing to move", evs(mv(1, "a", "b", false), []event.Event{e("delete", "b")}), nil, nil, []string{"a", "b"}, nil},
		{"vim's save (backup rename, new file, backup deleted)", evs(mv(1, "f", "f~", false), []event.Event{e("create", "f"), e("close_write", "f"), e("delete", "f~")}), nil, []string{"f"}, []string{"f~"}, []string{"f"}},
		{"release swap (mv cur old; mv new cur; rm -rf old)", evs([]event.Event{e("create,isdir", "new")}, mv(1, "cur", "old", true), mv(2, "new", "cur", true), []event.Event{e("delete,isdir", "old")}),
			[]event.Rename{r("cur", "old", true), r("new", "cur", true)}, []string{"cur/"}, []string{"new", "old"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			co := New(Config{Window: time.Second})
			for i := range c.evs {
				co.Add(&c.evs[i], t0)
			}
			bs := co.Flush()
			if len(bs) != 1 {
				t.Fatalf("%d batches", len(bs))
			}
			b := bs[0]
			if !reflect.DeepEqual(b.Renames, c.renames) || !reflect.DeepEqual(nilIfEmpty(b.Sync), c.sync) || !reflect.DeepEqual(nilIfEmpty(b.Delete), c.del) || !reflect.DeepEqual(b.Written, c.written) {
				t.Fatalf("renames %v sync %q delete %q written %q\nwant    %v sync %q delete %q written %q", b.Renames, b.Sync, b.Delete, b.Written, c.renames, c.sync, c.del, c.written)
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
