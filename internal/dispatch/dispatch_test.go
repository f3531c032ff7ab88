package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/push"
	"github.com/inopipe/inopipe/internal/rsync"
	"github.com/inopipe/inopipe/internal/spool"
	"github.com/inopipe/inopipe/internal/status"
)

// fakePusher answers Push with a func field, as litestream's fakes do.
type fakePusher struct {
	mu     sync.Mutex
	pushes []string // "target seq full"
	fn     func(ctx context.Context, t rsync.Target, b *event.Batch) push.Report
}

var _ Pusher = (*fakePusher)(nil)

func (f *fakePusher) Push(ctx context.Context, t rsync.Target, b *event.Batch) push.Report {
	f.mu.Lock()
	f.pushes = append(f.pushes, fmt.Sprintf("%s %d %v", t.Spec, b.Seq, b.Full))
	f.mu.Unlock()
	return f.fn(ctx, t, b)
}

func (f *fakePusher) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.pushes {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// fakeSpool keeps entries in memory; put decides each Put's fate.
type fakeSpool struct {
	mu      sync.Mutex
	entries []*spool.Entry
	put     func(e *spool.Entry) error
}

var _ Spooler = (*fakeSpool)(nil)

func (s *fakeSpool) Put(e *spool.Entry) (string, error) {
	if s.put != nil {
		if err := s.put(e); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	return fmt.Sprintf("/spool/%d.batch", len(s.entries)), nil
}

func (s *fakeSpool) RecordPairs([]spool.Pair) error { return nil }

func (s *fakeSpool) RecordRules(string, *event.Rules) error { return nil }

func (s *fakeSpool) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

type results struct {
	mu sync.Mutex
	rs []event.Result
}

func (r *results) emit(res *event.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rs = append(r.rs, *res)
}

func (r *results) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rs)
}

// byTarget counts results (ok, not ok) per target.
func (r *results) byTarget() map[string][2]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][2]int{}
	for _, x := range r.rs {
		c := m[x.Target]
		if x.OK {
			c[0]++
		} else {
			c[1]++
		}
		m[x.Target] = c
	}
	return m
}

func targets(t *testing.T, specs ...string) []rsync.Target {
	var out []rsync.Target
	for _, s := range specs {
		tg, err := rsync.ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tg)
	}
	return out
}

type rig struct {
	e   *Engine
	p   *fakePusher
	sp  *fakeSpool
	res *results
	log *bytes.Buffer
}

func newRig(t *testing.T, cfg Config, fn func(ctx context.Context, t rsync.Target, b *event.Batch) push.Report) *rig {
	r := &rig{p: &fakePusher{fn: fn}, sp: &fakeSpool{}, res: &results{}, log: &bytes.Buffer{}}
	var specs []string
	for _, tg := range cfg.Targets {
		specs = append(specs, tg.Spec)
	}
	cfg.SpoolBackoff = time.Millisecond
	r.e = New(cfg, r.p, r.sp, &base.Log{Prog: "rpush", W: &syncWriter{w: r.log}}, status.New(time.Now(), specs), r.res.emit)
	return r
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// settle lets the bubble's fake clock run until every worker is idle on
// its queue: spool retries and back-offs sleep on that clock, so a minute
// of it covers them, at no cost in real time.
func settle() {
	time.Sleep(time.Minute)
	synctest.Wait()
}

func batch(seq uint64) *event.Batch {
	return &event.Batch{Seq: seq, Root: "/data/", Sync: []string{fmt.Sprintf("f%d", seq)}, Delete: []string{}}
}

// Safety issue, case 4: one target failing in any way (rsync exit 3, a
// binary that will not start) never stops the others.
func TestTargetsAreIsolated(t *testing.T) {
	for _, c := range []struct {
		name string
		rep  push.Report
	}{
		{"exit 3 (destination is a file)", push.Report{Exit: rsync.ExitFileSelect, Class: rsync.Classify(rsync.ExitFileSelect, ""), Err: "rsync exit 3"}},
		{"config class", push.Report{Exit: rsync.ExitNotRun, Class: rsync.Config, Err: "run rsync: no such file"}},
		{"auth", push.Report{Exit: rsync.ExitStartClient, Class: rsync.Spool, Err: "auth failed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, Config{Targets: targets(t, "/bad", "/good"), Queue: 100}, func(_ context.Context, tg rsync.Target, b *event.Batch) push.Report {
				if tg.Spec == "/bad" {
					return c.rep
				}
				return push.Report{OK: true}
			})
			for i := uint64(1); i <= 10; i++ {
				r.e.Dispatch(batch(i))
			}
			s := r.e.Close()
			got := r.res.byTarget()
			if got["/good"] != [2]int{10, 0} || got["/bad"] != [2]int{0, 10} || len(s.Stopped) != 0 || s.Spooled != 10 {
				t.Fatalf("results %v, summary %+v\n%s", got, s, r.log)
			}
		})
	}
}

// The gate's refusal (source-side danger) stops that root for every
// target, and says why.
func TestDangerStopsTheRoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Targets: targets(t, "/a", "/b"), Queue: 100}, func(_ context.Context, tg rsync.Target, b *event.Batch) push.Report {
			if b.Seq == 2 {
				return push.Report{Exit: rsync.ExitFileSelect, Class: rsync.Dangerous, Err: "source root /data/ is empty and the run deletes; refusing to sync"}
			}
			return push.Report{OK: true}
		})
		r.e.Dispatch(batch(1))
		settle() // batch 2 on its own, not merged into 1's push
		r.e.Dispatch(batch(2))
		// Let both workers finish batch 2 before 3 arrives.
		settle()
		r.e.Dispatch(batch(3))
		s := r.e.Close()
		got := r.res.byTarget()
		oks := got["/a"][0] + got["/b"][0]
		if s.Stopped["/data/"] == "" || r.p.count("/a 3") != 0 || r.p.count("/b 3") != 0 || r.res.n() != 6 || s.Spooled != 6-oks {
			t.Fatalf("summary %+v pushes %v", s, r.p.pushes)
		}
		if !strings.Contains(r.log.String(), "rpush: error: source root /data/ is empty") || !strings.Contains(r.log.String(), "rpush: hint: check the source") {
			t.Fatalf("stderr:\n%s", r.log)
		}
	})
}

// Safety issue, case 5: a batch that can be neither delivered nor spooled
// is never lost in silence. The (target, root) owes a full sync, tried
// before its next batch; what is still owed at the end is reported.
func TestSpoolFailureOwesAFullSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		full := errors.New("no space left on device")
		down := true
		var mu sync.Mutex
		r := newRig(t, Config{Targets: targets(t, "/a", "/b"), Queue: 100}, func(_ context.Context, tg rsync.Target, b *event.Batch) push.Report {
			mu.Lock()
			defer mu.Unlock()
			if tg.Spec == "/a" && down {
				return push.Report{Exit: rsync.ExitSocketIO, Class: rsync.Retry, Err: "connection refused"}
			}
			return push.Report{OK: true}
		})
		r.sp.put = func(*spool.Entry) error { return full }
		r.e.Dispatch(batch(1))
		settle() // one push per batch, not merged
		r.e.Dispatch(batch(2))
		settle()
		// The target comes back: its next batch becomes the owed full sync.
		mu.Lock()
		down = false
		mu.Unlock()
		r.e.Dispatch(batch(3))
		s := r.e.Close()
		if len(s.Owed) != 0 || r.p.count("/a 3 true") != 1 || r.p.count("/b") != 3 {
			t.Fatalf("summary %+v pushes %v", s, r.p.pushes)
		}
		if !strings.Contains(r.log.String(), "could be neither delivered nor spooled") {
			t.Fatalf("stderr:\n%s", r.log)
		}

		// Still down at the end: Close reports what is owed.
		r = newRig(t, Config{Targets: targets(t, "/a"), Queue: 100}, func(context.Context, rsync.Target, *event.Batch) push.Report {
			return push.Report{Exit: rsync.ExitSocketIO, Class: rsync.Retry, Err: "connection refused"}
		})
		r.sp.put = func(*spool.Entry) error { return full }
		r.e.Dispatch(batch(1))
		r.e.Dispatch(batch(2))
		s = r.e.Close()
		if len(s.Owed) != 1 || s.Owed[0].Target != "/a" || s.Owed[0].Batches != 2 {
			t.Fatalf("summary %+v", s)
		}
	})
}

// A spool write that fails once is tried again: nothing is owed.
func TestSpoolWriteRetried(t *testing.T) {
	r := newRig(t, Config{Targets: targets(t, "/a"), Queue: 100}, func(context.Context, rsync.Target, *event.Batch) push.Report {
		return push.Report{Exit: rsync.ExitSocketIO, Class: rsync.Retry, Err: "connection refused"}
	})
	var mu sync.Mutex
	fails := 1
	r.sp.put = func(*spool.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return errors.New("EIO")
		}
		return nil
	}
	r.e.Dispatch(batch(1))
	if s := r.e.Close(); len(s.Owed) != 0 || s.Spooled != 1 {
		t.Fatalf("summary %+v", s)
	}
}

// Safety issue, case 7 (the engine's half): after Stop every batch handed
// in gets a result — run if it was running, spooled otherwise — and the
// rsync in flight gets the grace period, then its context ends.
func TestStopRunsOrSpoolsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		var once sync.Once
		r := newRig(t, Config{Targets: targets(t, "/a", "/b"), Queue: 1000, Grace: 30 * time.Second}, func(ctx context.Context, tg rsync.Target, b *event.Batch) push.Report {
			if b.Seq == 1 && tg.Spec == "/a" {
				once.Do(func() { close(started) })
				<-ctx.Done() // a hung rsync: stopped at the end of the grace
				return push.Report{Exit: rsync.ExitSignal, Class: rsync.Spool, Err: "killed"}
			}
			return push.Report{OK: true}
		})
		r.e.Dispatch(batch(1))
		<-started
		r.e.Stop()
		start := time.Now()
		for i := uint64(2); i <= 500; i++ {
			r.e.Dispatch(batch(i)) // read before the signal, handed in after it
		}
		s := r.e.Close()
		if el := time.Since(start); el != 30*time.Second {
			t.Errorf("the hung rsync was stopped after %v, want the 30s grace", el)
		}
		got := r.res.byTarget()
		if n := got["/a"][0] + got["/a"][1]; n != 500 {
			t.Errorf("/a: %d results of 500", n)
		}
		if n := got["/b"][0] + got["/b"][1]; n != 500 {
			t.Errorf("/b: %d results of 500", n)
		}
		if s.Spooled != got["/a"][1]+got["/b"][1] || r.sp.n() != s.Spooled {
			t.Errorf("spooled %d, failures %v, entries %d", s.Spooled, got, r.sp.n())
		}
	})
}

// --init: one full sync of each root per target before its first batch.
func TestInitFullSyncOncePerRoot(t *testing.T) {
	r := newRig(t, Config{Targets: targets(t, "/a"), Queue: 100, Init: true}, func(context.Context, rsync.Target, *event.Batch) push.Report {
		return push.Report{OK: true}
	})
	for i := uint64(1); i <= 3; i++ {
		r.e.Dispatch(batch(i))
	}
	r.e.Close()
	// one full sync, first; the batches after it (maybe merged: see
	// TestQueuedBatchesMerge), each with a result
	if r.p.count("/a 1 true") != 1 || len(r.p.pushes) < 2 || r.p.pushes[0] != "/a 1 true" || r.res.n() != 3 {
		t.Fatalf("pushes %v, %d results", r.p.pushes, r.res.n())
	}
	for _, p := range r.p.pushes[1:] {
		if strings.HasSuffix(p, "true") {
			t.Fatalf("a second full sync: %v", r.p.pushes)
		}
	}
}

// Issue 12: a target that comes back gets its spooled batches at once
// (catch-up), not at the next failreplay timer; once, not per batch.
func TestCatchUpWhenTargetReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		down := true
		var catchUps []string
		r := newRig(t, Config{Targets: targets(t, "/a", "/b"), Queue: 100}, func(_ context.Context, tg rsync.Target, b *event.Batch) push.Report {
			mu.Lock()
			defer mu.Unlock()
			if tg.Spec == "/a" && down {
				return push.Report{Exit: rsync.ExitSocketIO, Class: rsync.Retry, Err: "connection refused"}
			}
			return push.Report{OK: true}
		})
		r.e.cfg.CatchUp = func(_ context.Context, tg rsync.Target) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			catchUps = append(catchUps, tg.Spec)
			return 0, nil
		}
		r.e.Dispatch(batch(1))
		r.e.Dispatch(batch(2))
		settle()
		mu.Lock()
		down = false
		mu.Unlock()
		r.e.Dispatch(batch(3))
		r.e.Dispatch(batch(4))
		r.e.Close()
		if strings.Join(catchUps, ",") != "/a" {
			t.Fatalf("catch-ups %v, want one for /a", catchUps)
		}
		if !strings.Contains(r.log.String(), "/a is back") {
			t.Fatalf("stderr:\n%s", r.log)
		}
	})
}

// A refusal (wrong password after start) is reported once, to OnRefusal.
func TestRefusalReportedOnce(t *testing.T) {
	var mu sync.Mutex
	var got []string
	r := newRig(t, Config{Targets: targets(t, "/a"), Queue: 100, OnRefusal: func(tg rsync.Target, why string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, tg.Spec+" "+why)
	}}, func(context.Context, rsync.Target, *event.Batch) push.Report {
		return push.Report{Exit: rsync.ExitStartClient, Class: rsync.Spool, Refusal: true, Err: "@ERROR: auth failed on module data"}
	})
	r.e.Dispatch(batch(1))
	r.e.Dispatch(batch(2))
	if s := r.e.Close(); s.Spooled != 2 || len(got) != 1 || !strings.Contains(got[0], "auth failed") {
		t.Fatalf("summary %+v, refusals %q", s, got)
	}
}

// A target slower than the stream: the batches queued behind the one it
// runs, same root and rules, go in one push (the union of their paths);
// one of another root ends the merge and runs on its own; every batch
// gets its result, in order. When the merged push fails, each batch is
// spooled as it came.
func TestQueuedBatchesMerge(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var mu sync.Mutex
				var got [][]string
				r := newRig(t, Config{Targets: targets(t, "/a"), Queue: 100}, func(_ context.Context, _ rsync.Target, b *event.Batch) push.Report {
					if b.Seq == 1 {
						<-release // the target is slow: the next batches queue
					}
					mu.Lock()
					got = append(got, append(append([]string{b.Root}, b.Sync...), b.Delete...))
					mu.Unlock()
					if fail && b.Seq == 2 {
						return push.Report{Exit: rsync.ExitSocketIO, Class: rsync.Spool, Err: "connection refused"}
					}
					return push.Report{OK: true, Bytes: 10}
				})
				other := batch(4)
				other.Root = "/other/"
				del := batch(3)
				del.Sync, del.Delete = []string{}, []string{"f2"} // written, then deleted
				r.e.Dispatch(batch(1))
				synctest.Wait() // 1 is running
				for _, b := range []*event.Batch{batch(2), del, other, batch(5)} {
					r.e.Dispatch(b)
				}
				synctest.Wait()
				close(release)
				r.e.Close()
				want := "[[/data/ f1] [/data/ f2 f2] [/other/ f4] [/data/ f5]]"
				if fmt.Sprint(got) != want {
					t.Fatalf("pushes %v, want %s", got, want)
				}
				var seqs []uint64
				for _, x := range r.res.rs {
					seqs = append(seqs, x.Seq)
					if x.OK == (fail && (x.Seq == 2 || x.Seq == 3)) {
						t.Errorf("result %+v", x)
					}
				}
				if fmt.Sprint(seqs) != "[1 2 3 4 5]" {
					t.Fatalf("results for %v", seqs)
				}
				if fail && (r.sp.n() != 2 || r.sp.entries[0].Batch.Seq != 2 || r.sp.entries[1].Batch.Seq != 3 || len(r.sp.entries[1].Batch.Sync) != 0) {
					t.Fatalf("spooled %+v", r.sp.entries)
				}
			})
		})
	}
}
