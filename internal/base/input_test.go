package base

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// StopReader on a pipe: what was written before the stop is read; a read
// blocked when the stop comes returns io.EOF at once having consumed
// nothing; what is written after stays in the pipe for whoever reads next.
func TestStopReaderPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	rd, closeIn := StopReader(ctx, r)
	w.Write([]byte("before\n"))
	buf := make([]byte, 64)
	n, err := rd.Read(buf)
	if err != nil || string(buf[:n]) != "before\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := rd.Read(buf) // blocks: nothing to read
		got <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the read block (a stop before it is checked too)
	cancel()
	select {
	case err := <-got:
		if err != io.EOF {
			t.Fatalf("blocked read ended with %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked read did not end at the stop")
	}
	closeIn()
	w.Write([]byte("after\n"))
	w.Close()
	rest, _ := io.ReadAll(r)
	if string(rest) != "after\n" {
		t.Fatalf("left in the pipe: %q", rest)
	}
}

// Any other reader ends at the first read after the stop.
func TestStopReaderOther(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rd, closeIn := StopReader(ctx, strings.NewReader("abc"))
	defer closeIn()
	var b bytes.Buffer
	one := make([]byte, 1)
	n, _ := rd.Read(one)
	b.Write(one[:n])
	cancel()
	if n, err := rd.Read(one); n != 0 || err != io.EOF {
		t.Fatalf("after stop: %d, %v", n, err)
	}
	if b.String() != "a" {
		t.Fatalf("%q", b.String())
	}
}
