package batch

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// FuzzConverges checks the coalescer against the pipeline's invariant: for
// any sequence of changes a real filesystem can make (a small model of one
// emits the events inotify would), the batches it writes, applied to a
// replica the way rpush applies them (each listed path made as it is in the
// source now), leave the replica equal to the source. The fuzzer picks the
// changes, the paths, the timing and the settings (windows, rollup, full
// threshold, max paths).
func FuzzConverges(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 1, 0, 2, 0}, uint8(0))
	f.Add([]byte{3, 0, 0, 2, 0, 2, 4, 0, 1, 3, 1, 6}, uint8(3))
	f.Add([]byte{3, 0, 3, 2, 0, 5, 4, 0, 1, 2, 1, 0, 6, 0}, uint8(7))
	f.Add([]byte{3, 1, 0, 3, 5, 1, 4, 1, 0, 2, 0, 0, 3, 0, 0, 2}, uint8(255))
	f.Fuzz(func(t *testing.T, ops []byte, knobs uint8) {
		if len(ops) > 400 {
			return
		}
		cfg := Config{Window: 500 * time.Millisecond, MaxDelay: 2 * time.Second}
		if knobs&1 != 0 {
			cfg.Rollup = 2
		}
		if knobs&2 != 0 {
			cfg.FullThreshold = 5
		}
		if knobs&4 != 0 {
			cfg.MaxPaths = 3
		}
		if knobs&8 != 0 {
			cfg.MaxDelay = 0
		}
		c := New(cfg)
		src := newModel()
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		var batches []event.Batch
		cookie := uint32(0)
		for i := 0; i+1 < len(ops); i += 2 {
			now = now.Add(time.Duration(ops[i+1]%8) * 100 * time.Millisecond)
			for _, ev := range src.apply(ops[i], ops[i+1], &cookie) {
				ev.Root, ev.Watch = root, root+parentOf(ev.Name)
				if ev.Watch != root {
					ev.Watch += "/"
				}
				ev.Name = ev.Name[strings.LastIndexByte(ev.Name, '/')+1:]
				ev.Path = ev.Watch + ev.Name
				c.Add(&ev, now)
			}
			batches = append(batches, c.Due(now)...)
		}
		batches = append(batches, c.Flush()...)
		replica := newModel()
		for _, b := range batches {
			if dup := duplicates(b); dup != "" {
				t.Fatalf("batch %d names %q twice: %+v", b.Seq, dup, b)
			}
			replica.sync(src, b)
		}
		if d := replica.diff(src); d != "" {
			t.Fatalf("replica differs from the source: %s\nbatches: %+v", d, batches)
		}
	})
}

// paths the model may touch: a small tree, so that sequences collide.
var modelPaths = []string{"a", "b", "a/c", "a/d", "b/c", "a/c/e"}

type node struct {
	dir     bool
	content int // version of a file's data
	attr    int // version of its mode/owner/times
}

type model map[string]node

func newModel() model { return model{} }

func (m model) exists(p string) bool { _, ok := m[p]; return ok }

func (m model) parentOK(p string) bool {
	par := parentOf(p)
	if par == "" {
		return true
	}
	n, ok := m[par]
	return ok && n.dir
}

// under lists p and everything below it, deepest first (as rm -r goes).
func (m model) under(p string) []string {
	var out []string
	for q := range m {
		if q == p || strings.HasPrefix(q, p+"/") {
			out = append(out, q)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/") || (strings.Count(out[i], "/") == strings.Count(out[j], "/") && out[i] < out[j])
	})
	return out
}

// apply makes one change chosen by op on the path chosen by arg and returns
// the events inotify reports for it (Name holds the path relative to the
// root; the caller splits it).
func (m model) apply(op, arg byte, cookie *uint32) []event.Event {
	p := modelPaths[int(arg)%len(modelPaths)]
	n, ok := m[p]
	isDir := func(d bool) event.Op {
		if d {
			return event.IsDir
		}
		return 0
	}
	switch op % 7 {
	case 0: // create a file and write it
		if ok || !m.parentOK(p) {
			return nil
		}
		m[p] = node{content: 1}
		return []event.Event{{Name: p, Op: event.Create}, {Name: p, Op: event.CloseWrite}}
	case 1: // rewrite a file
		if !ok || n.dir {
			return nil
		}
		n.content++
		m[p] = n
		return []event.Event{{Name: p, Op: event.Modify}, {Name: p, Op: event.CloseWrite}}
	case 2: // rm -r
		if !ok {
			return nil
		}
		var evs []event.Event
		for _, q := range m.under(p) {
			evs = append(evs, event.Event{Name: q, Op: event.Delete | isDir(m[q].dir)})
			delete(m, q)
		}
		return evs
	case 3: // mkdir
		if ok || !m.parentOK(p) {
			return nil
		}
		m[p] = node{dir: true}
		return []event.Event{{Name: p, Op: event.Create | event.IsDir}}
	case 4: // mv p to the next path, whole subtree
		to := modelPaths[(int(arg)+1+int(arg>>4))%len(modelPaths)]
		if !ok || m.exists(to) || !m.parentOK(to) || to == p || strings.HasPrefix(to, p+"/") {
			return nil
		}
		*cookie++
		for _, q := range m.under(p) {
			m[to+strings.TrimPrefix(q, p)] = m[q]
			delete(m, q)
		}
		return []event.Event{{Name: p, Op: event.MovedFrom | isDir(n.dir), Cookie: *cookie}, {Name: to, Op: event.MovedTo | isDir(n.dir), Cookie: *cookie}}
	case 5: // chmod
		if !ok {
			return nil
		}
		n.attr++
		m[p] = n
		return []event.Event{{Name: p, Op: event.Attrib | isDir(n.dir)}}
	default: // the kernel queue overflowed
		return []event.Event{{Op: event.QOverflow}}
	}
}

// sync applies batch b to m as rpush does, from the source as it is now.
func (m model) sync(src model, b event.Batch) {
	if b.Full {
		for q := range m {
			delete(m, q)
		}
		for q, n := range src {
			m[q] = n
		}
		return
	}
	for _, e := range append(append([]string{}, b.Sync...), b.Delete...) {
		rec := strings.HasSuffix(e, "/")
		p := strings.TrimSuffix(e, "/")
		if p == "." {
			continue // the root's own attributes: not modelled
		}
		n, ok := src[p]
		if !ok || rec {
			for _, q := range m.under(p) {
				delete(m, q)
			}
		}
		if !ok {
			continue
		}
		for par := parentOf(p); par != ""; par = parentOf(par) {
			if _, have := m[par]; !have {
				m[par] = src[par] // rsync -R makes the implied directories
			}
		}
		if rec {
			for _, q := range src.under(p) {
				m[q] = src[q]
			}
			continue
		}
		if !n.dir {
			for _, q := range m.under(p) { // a directory replaced by a file (--force)
				delete(m, q)
			}
		}
		m[p] = n
	}
}

func (m model) diff(src model) string {
	var d []string
	for q, n := range src {
		if r, ok := m[q]; !ok || r != n {
			d = append(d, fmt.Sprintf("%s: replica %+v (present %v), source %+v", q, r, ok, n))
		}
	}
	for q := range m {
		if !src.exists(q) {
			d = append(d, q+": only on the replica")
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

func duplicates(b event.Batch) string {
	seen := map[string]bool{}
	for _, e := range append(append([]string{}, b.Sync...), b.Delete...) {
		k := strings.TrimSuffix(e, "/")
		if seen[k] {
			return k
		}
		seen[k] = true
	}
	return ""
}
