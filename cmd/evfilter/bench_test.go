package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"
)

// BenchmarkStage pushes 200,000 event lines through the real binary
// (decode → process → encode, through pipes) and reports events/s.
func BenchmarkStage(b *testing.B) {
	var in bytes.Buffer
	const n = 200000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, `{"time":"2026-11-21T10:00:00.123456789Z","root":"/srv/data/","watch":"/srv/data/d%d/","name":"f%d.html","path":"/srv/data/d%d/f%d.html","events":["CLOSE_WRITE","CLOSE"]}`+"\n", i%500, i, i%500, i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin(), "--temp", "-x", `^cache/`)
		cmd.Stdin = bytes.NewReader(in.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
