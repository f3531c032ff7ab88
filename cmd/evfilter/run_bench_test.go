package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"testing"

	"github.com/inopipe/inopipe/internal/filter"
)

// BenchmarkRun is the stage in-process (no pipes): decode, decide, write.
func BenchmarkRun(b *testing.B) {
	var in bytes.Buffer
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&in, `{"time":"2026-11-21T10:00:00.123456789Z","root":"/srv/data/","watch":"/srv/data/d%d/","name":"f%d.html","path":"/srv/data/d%d/f%d.html","events":["CLOSE_WRITE","CLOSE"]}`+"\n", i%500, i, i%500, i)
	}
	cfg := &Config{Set: filter.Set{Temp: true, Exclude: []*regexp.Regexp{regexp.MustCompile(`^cache/`)}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := run(context.Background(), cfg, bytes.NewReader(in.Bytes()), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "events/s")
}
