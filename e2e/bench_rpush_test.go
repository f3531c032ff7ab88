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

// BenchmarkRpushJobs (make bench): one batch of 2,000 files × 100 KiB in
// 20 dirs to an auth daemon on 127.0.0.1, by rpush -j 1, 2, 4, 8, against
// one ideal `rsync --files-from` of exactly that list and against 2,000
// per-file rsync runs (the sersync way); the same files as one new tree
// (a batch of one recursive entry, what cp -r or tar x into the source
// gives) by rpush -j 1, 2, 4 against one ideal `rsync -r` of the tree;
// then the attribute-only dir
// case: a chmod on a dir above 50,000 files, synced with -r (what a plain
// --files-from list does) vs rpush's --no-r --dirs run. Each iteration
// is one run, reported as the metric "s" (seconds).
func BenchmarkRpushJobs(b *testing.B) {
	d := newDaemon(b)
	src := b.TempDir()
	files, size := benchSize(2000, 20), 100<<10
	var list []string
	buf := make([]byte, size)
	for i := range files {
		rel := fmt.Sprintf("tree/d%02d/f%04d", i%20, i)
		must(b, os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755))
		for j := range buf {
			buf[j] = byte(i*31 + j)
		}
		must(b, os.WriteFile(filepath.Join(src, rel), buf, 0o644))
		list = append(list, rel)
	}
	env := append(os.Environ(), "RSYNC_PASSWORD="+password)
	run := func(b *testing.B, stdin string, name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
	}
	batch := batchLine(1, src, list, nil)
	type variant struct {
		name string
		fn   func(b *testing.B)
	}
	variants := []variant{{"ideal", func(b *testing.B) {
		run(b, string(rsync.Stdin(list)), "rsync", "-a", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
	}}}
	for _, j := range []int{1, 2, 4, 8} {
		variants = append(variants, variant{fmt.Sprintf("rpush-j%d", j), func(b *testing.B) {
			run(b, batch, bin("rpush"), "--spool", b.TempDir(), "-j", fmt.Sprint(j), d.target())
		}})
	}
	variants = append(variants, variant{"per-file-rsync", func(b *testing.B) {
		for _, rel := range list {
			cmd := exec.Command("rsync", "-a", "-R", "--sockopts=TCP_NODELAY", "./"+rel, d.target())
			cmd.Dir, cmd.Env = src, env
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("per-file rsync: %v %s", err, out)
			}
		}
	}})
	tree := []string{"tree/"}
	variants = append(variants, variant{"tree/ideal-r", func(b *testing.B) {
		run(b, string(rsync.Stdin(tree)), "rsync", "-a", "-r", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
	}})
	for _, j := range []int{1, 2, 4} {
		variants = append(variants, variant{fmt.Sprintf("tree/rpush-j%d", j), func(b *testing.B) {
			run(b, batchLine(1, src, tree, nil), bin("rpush"), "--spool", b.TempDir(), "-j", fmt.Sprint(j), d.target())
		}})
	}
	for _, v := range variants {
		b.Run("batch/"+v.name, func(b *testing.B) {
			for range b.N {
				must(b, os.RemoveAll(d.module))
				must(b, os.Mkdir(d.module, 0o755))
				start := time.Now()
				v.fn(b)
				b.ReportMetric(time.Since(start).Seconds(), "s")
				converge(b, src, d.module)
			}
		})
	}

	// A chmod on a directory above many files.
	big := filepath.Join(src, "big")
	nbig := benchSize(50, 5)
	for i := range nbig {
		dir := filepath.Join(big, fmt.Sprintf("s%02d", i))
		must(b, os.MkdirAll(dir, 0o755))
		for j := range 1000 {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(j)))
			must(b, err)
			f.Close()
		}
	}
	run(b, string(rsync.Stdin([]string{"big/"})), "rsync", "-a", "-r", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
	mode := 0
	for _, v := range []variant{
		{"-r", func(b *testing.B) {
			run(b, string(rsync.Stdin([]string{"big"})), "rsync", "-a", "-r", "--from0", "--files-from=-", "--sockopts=TCP_NODELAY", src+"/", d.target())
		}},
		{"rpush", func(b *testing.B) {
			run(b, batchLine(1, src, []string{"big"}, nil), bin("rpush"), "--spool", b.TempDir(), d.target())
		}},
	} {
		b.Run("chmod/"+v.name, func(b *testing.B) {
			for range b.N {
				mode++
				must(b, os.Chmod(big, os.FileMode(0o700+mode%2*0o50)))
				start := time.Now()
				v.fn(b)
				b.ReportMetric(time.Since(start).Seconds(), "s")
				converge(b, big, filepath.Join(d.module, "big"))
			}
		})
	}
}
