package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkEventLatency measures one event from write to a line on the
// pipe: inowait flushes as soon as the kernel queue is drained. The same
// loop runs against the installed inotifywait for comparison.
func BenchmarkEventLatency(b *testing.B) {
	for _, tool := range []string{"inowait", "inotifywait"} {
		b.Run(tool, func(b *testing.B) {
			path := inowait()
			args := []string{"-mq", "-e", "close_write", "--format", "%f"}
			if tool == "inotifywait" {
				p, err := exec.LookPath("inotifywait")
				if err != nil {
					b.Skip("inotifywait not installed")
				}
				path = p
			}
			dir := b.TempDir()
			cmd := exec.Command(path, append(args, dir)...)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			r := bufio.NewReader(out)
			// wait until watching: write until the first line arrives
			ready := make(chan struct{})
			go func() { r.ReadString('\n'); close(ready) }()
			for i := 0; ; i++ {
				os.WriteFile(filepath.Join(dir, "warm"+strconv.Itoa(i)), nil, 0o644)
				select {
				case <-ready:
				case <-time.After(50 * time.Millisecond):
					continue
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
			for r.Buffered() > 0 {
				r.ReadString('\n')
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				name := "f" + strconv.Itoa(i)
				os.WriteFile(filepath.Join(dir, name), nil, 0o644)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.TrimSpace(line) == name {
						break
					}
				}
			}
		})
	}
}
