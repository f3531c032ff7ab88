package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// gate is a writer that blocks until opened, then writes to b.
type gate struct {
	open    chan struct{}
	b       bytes.Buffer
	writes  atomic.Int32
	failErr error
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.writes.Add(1)
	if g.failErr != nil {
		return 0, g.failErr
	}
	return g.b.Write(p)
}

// Writes return at once while the reader is stopped, up to the limit;
// everything comes out in order once it reads again.
func TestOutputHoldsWhileReaderStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{open: make(chan struct{})}
		o := newOutput(g, 1000)
		var want strings.Builder
		for i := range 9 { // 9 × 100 bytes: under the limit, none waits
			line := strings.Repeat(string(rune('a'+i)), 99) + "\n"
			want.WriteString(line)
			if n, err := o.Write([]byte(line)); n != 100 || err != nil {
				t.Fatalf("write %d: %d %v", i, n, err)
			}
		}
		// one more would pass the limit: it waits until the reader reads
		wrote := make(chan struct{})
		go func() {
			o.Write([]byte(strings.Repeat("z", 199) + "\n"))
			close(wrote)
		}()
		synctest.Wait() // the writer is blocked on the reader, the write on the limit
		select {
		case <-wrote:
			t.Fatal("a write past the limit did not wait for the reader")
		default:
		}
		want.WriteString(strings.Repeat("z", 199) + "\n")
		close(g.open)
		<-wrote
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		if g.b.String() != want.String() {
			t.Fatalf("got %d bytes, out of order or lost", g.b.Len())
		}
	})
}

// A chunk larger than the limit still goes out (alone).
func TestOutputLargerThanLimit(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	o := newOutput(g, 10)
	big := bytes.Repeat([]byte("x"), 1000)
	for range 3 {
		if _, err := o.Write(big); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(); err != nil || g.b.Len() != 3000 {
		t.Fatalf("%d bytes, %v", g.b.Len(), err)
	}
}

// A write error (EPIPE: the reader is gone) is returned by the next
// Write and by Close; nothing more is written.
func TestOutputWriteError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{open: make(chan struct{}), failErr: io.ErrClosedPipe}
		close(g.open)
		o := newOutput(g, 1<<20)
		o.Write([]byte("first\n"))
		synctest.Wait() // the failed write is done
		if _, err := o.Write([]byte("more\n")); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Write after a failed write: %v", err)
		}
		if err := o.Close(); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Close: %v", err)
		}
		if n := g.writes.Load(); n != 1 {
			t.Fatalf("%d writes after the first failed", n-1)
		}
	})
}
