//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/rsync"
)

// TestBenchRpushJobs (make bench; INOPIPE_BENCH=1): one batch of 2,000
// files × 100 KiB in 20 dirs to an auth daemon on 127.0.0.1, by rpush -j 1,
// 2, 4, 8, against one ideal `rsync --files-from` of exactly that list and
// against 2,000 per-file rsync runs (the sersync way), medians of
// INOPIPE_BENCH_RUNS runs in the same test. Then the attribute-only dir
// case: a chmod on a dir above 50,000 files, synced with -r (what a plain
// --files-from list does) vs rpush's --no-r --dirs run.
func TestBenchRpushJobs(t *testing.T) {
	runs := benchRuns(t)
	d := newDaemon(t)
	src := t.TempDir()
	files, size := benchSize(2000, 20), 100<<10
	var list []string
	buf := make([]byte, size)
	for i := range files {
		rel := fmt.Sprintf("d%02d/f%04d", i%20, i)
		must(t, os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755))
		for j := range buf {
			buf[j] = byte(i*31 + j)
		}
		must(t, os.WriteFile(filepath.Join(src, rel), buf, 0o644))
		list = append(list, rel)
	}
	env := append(os.Environ(), "RSYNC_PASSWORD="+password)
	clear := func() {
		must(t, os.RemoveAll(d.module))
		must(t, os.Mkdir(d.module, 0o755))
	}
	run := func(stdin string, name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
	}
	batch := batchLine(1, src, list, nil)
	type variant struct {
		name string
		fn   func()
	}
	variants := []variant{{"ideal rsync --files-from", func() {
		run(string(rsync.Stdin(list)), "rsync", "-a", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
	}}}
	for _, j := range []int{1, 2, 4, 8} {
		variants = append(variants, variant{fmt.Sprintf("rpush -j %d", j), func() {
			run(batch, bin("rpush"), "--spool", t.TempDir(), "-j", fmt.Sprint(j), d.target())
		}})
	}
	variants = append(variants, variant{fmt.Sprintf("%d per-file rsync runs", files), func() {
		for _, rel := range list {
			cmd := exec.Command("rsync", "-a", "-R", "--sockopts=TCP_NODELAY", "./"+rel, d.target())
			cmd.Dir, cmd.Env = src, env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("per-file rsync: %v %s", err, out)
			}
		}
	}})
	times := map[string][]float64{}
	for range runs {
		for _, v := range variants {
			clear()
			start := time.Now()
			v.fn()
			times[v.name] = append(times[v.name], time.Since(start).Seconds())
			converge(t, src, d.module)
		}
	}
	ideal := median(times[variants[0].name])
	var rows [][]string
	for _, v := range variants {
		m := median(times[v.name])
		rows = append(rows, []string{v.name, fmt.Sprintf("%.2f s", m), fmt.Sprintf("%.2f×", m/ideal)})
	}
	report(t, fmt.Sprintf("rpush: one batch of %d × 100 KiB files in 20 dirs to an auth daemon on 127.0.0.1 (median of %d)", files, runs),
		[]string{"run", "time", "vs ideal"}, rows)

	// A chmod on a directory above many files.
	big := filepath.Join(src, "big")
	nbig := benchSize(50, 5)
	for i := range nbig {
		dir := filepath.Join(big, fmt.Sprintf("s%02d", i))
		must(t, os.MkdirAll(dir, 0o755))
		for j := range 1000 {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(j)))
			must(t, err)
			f.Close()
		}
	}
	run(string(rsync.Stdin([]string{"big/"})), "rsync", "-a", "-r", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
	times = map[string][]float64{}
	for i := range runs {
		for _, v := range []variant{
			{"-r over the subtree", func() {
				run(string(rsync.Stdin([]string{"big"})), "rsync", "-a", "-r", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
			}},
			{"rpush (--no-r --dirs)", func() { run(batchLine(1, src, []string{"big"}, nil), bin("rpush"), "--spool", t.TempDir(), d.target()) }},
		} {
			must(t, os.Chmod(big, os.FileMode(0o700+i%2*0o50)))
			start := time.Now()
			v.fn()
			times[v.name] = append(times[v.name], time.Since(start).Seconds())
			converge(t, big, filepath.Join(d.module, "big"))
		}
	}
	rows = nil
	for _, n := range []string{"-r over the subtree", "rpush (--no-r --dirs)"} {
		rows = append(rows, []string{n, fmt.Sprintf("%.3f s", median(times[n]))})
	}
	report(t, fmt.Sprintf("rpush: chmod of a directory above %d files (median of %d)", nbig*1000, runs), []string{"run", "time"}, rows)
}
