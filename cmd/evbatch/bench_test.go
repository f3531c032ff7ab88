package main

import (
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
	reads := make([][]byte, 0, n/per) // what each read brings
	for i := 0; i < n; i += per {
		var r []byte
		for j := i; j < i+per; j++ {
			r = event.AppendEvent(r, &event.Event{Time: time.Unix(0, 0).UTC(), Root: "/srv/data/",
				Watch: fmt.Sprintf("/srv/data/d%d/", j%30), Name: fmt.Sprintf("f%d", j/per),
				Path: fmt.Sprintf("/srv/data/d%d/f%d", j%30, j/per), Op: event.CloseWrite | event.Close})
		}
		reads = append(reads, r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, w := io.Pipe()
		go func() {
			for _, p := range reads {
				w.Write(p)
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
