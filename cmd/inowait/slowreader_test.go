package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
)

// A reader that stops reading inowait's output (a stage busy with a large
// batch, a full pipe) must not make the kernel queue overflow: inowait
// keeps draining inotify and holds its output until the reader is back.
// Each case runs while nobody reads inowait's stdout, then reads it all:
// every change must be there and no Q_OVERFLOW.
func TestSlowReaderNoOverflow(t *testing.T) {
	maxq := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		fmt.Sscan(string(b), &maxq)
	}
	if maxq > 100000 {
		t.Skipf("max_queued_events is %d: a storm that overflows it takes too long", maxq)
	}
	cases := []struct {
		name  string
		storm func(t *testing.T, dir string) (want []string)
	}{
		// Twice the kernel queue's worth of events in directories already
		// watched (CREATE and CLOSE_WRITE each).
		{"files", func(t *testing.T, dir string) (want []string) {
			for i := range maxq {
				p := filepath.Join(dir, fmt.Sprintf("d%02d", i%16), fmt.Sprintf("f%05d", i))
				must(t, os.WriteFile(p, nil, 0o644))
				want = append(want, p)
			}
			return want
		}},
		// The storm: 1,000 mkdir -p six deep and a file in each,
		// 7,000 directories, every one of them must be watched and found.
		{"mkdir -p storm", func(t *testing.T, dir string) (want []string) {
			for i := range 1000 {
				d := filepath.Join(dir, fmt.Sprintf("m%04d/a/b/c/d/e", i))
				must(t, os.MkdirAll(d, 0o755))
				must(t, os.WriteFile(filepath.Join(d, "f"), nil, 0o644))
				want = append(want, filepath.Join(d, "f"))
			}
			return want
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for i := range 16 {
				must(t, os.Mkdir(filepath.Join(dir, fmt.Sprintf("d%02d", i)), 0o755))
			}
			pr, pw, err := os.Pipe()
			must(t, err)
			defer pr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), clitest.Timeout())
			defer cancel()
			cmd := exec.CommandContext(ctx, inowait(), "-mr", dir)
			var errb clitest.Buffer
			cmd.Stdout, cmd.Stderr = pw, &errb
			must(t, cmd.Start())
			pw.Close()
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			clitest.Eventually(t, "watches established", func() bool { return strings.Contains(errb.String(), "watches established") })

			want := c.storm(t, dir)
			// nobody read stdout during the storm; now read it all
			missing := map[string]bool{}
			for _, p := range want {
				missing[p] = true
			}
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(pr)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			deadline := time.After(clitest.Timeout())
			for len(missing) > 0 {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("stream ended with %d files not reported; stderr %s", len(missing), errb.String())
					}
					var rec event.Record
					must(t, event.Unmarshal([]byte(l), &rec))
					if rec.Event.Op.Has(event.QOverflow) {
						t.Fatalf("the kernel queue overflowed while the reader was slow: %s\nstderr %s", l, errb.String())
					}
					delete(missing, rec.Event.Path)
				case <-deadline:
					t.Fatalf("timed out with %d of %d files not reported", len(missing), len(want))
				}
			}
		})
	}
}
