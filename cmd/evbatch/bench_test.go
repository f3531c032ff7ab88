package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/batch"
	"github.com/inopipe/inopipe/internal/event"
)

// BenchmarkStage: 200,000 event lines through the real binary.
func BenchmarkStage(b *testing.B) {
	clitest.BenchStage(b, 200000, bin(), "--max-delay", "1h", "1h")
}

// BenchmarkTrickle: events as a pipeline at work hands them over, three
// lines per read (a file's CREATE, MODIFY, CLOSE_WRITE), through run in
// this process: what evbatch allocates per event (its garbage is most of
// its peak RSS in a burst).
func BenchmarkTrickle(b *testing.B) {
	const n, per = 30000, 3
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = event.AppendEvent(nil, &event.Event{Time: time.Unix(0, 0).UTC(), Root: "/srv/data/",
			Watch: fmt.Sprintf("/srv/data/d%d/", i%30), Name: fmt.Sprintf("f%d", i/per),
			Path: fmt.Sprintf("/srv/data/d%d/f%d", i%30, i/per), Op: event.CloseWrite | event.Close})
	}
	b.ReportAllocs()
	for range b.N {
		r, w := io.Pipe()
		go func() {
			for i := 0; i < n; i += per {
				w.Write(bytes.Join(lines[i:i+per], nil))
			}
			w.Close()
		}()
		cfg := &Config{Batch: batch.Defaults}
		cfg.Batch.Window, cfg.Batch.MaxDelay = time.Hour, time.Hour
		if err := run(context.Background(), cfg, r, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/event")
}
