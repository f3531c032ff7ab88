//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
)

// renameTargets are the three kinds of target, each given to one rpush.
type renameTarget struct {
	name string
	spec string   // the target as given to rpush
	dir  string   // where its files land on this machine
	args []string // rpush options it needs
	// fuzzyElsewhere: a file renamed to another name in another
	// directory is found by rsync's fuzzy basis in the old directory.
	// rsync (3.2.7 to 3.5.0) does not manage it for a daemon without
	// chroot (its sanitized path) nor over --secluded-args: there the
	// file is sent the plain way.
	fuzzyElsewhere bool
}

func renameTargets(t testing.TB) []renameTarget {
	d := newDaemon(t)
	s := newSSHD(t)
	sshDir := t.TempDir()
	local := t.TempDir()
	ts := []renameTarget{
		{"local", local, local, nil, true},
		{"daemon", d.target(), d.module, []string{"--password-file", d.passFile}, false},
		{"ssh", s.login + "@127.0.0.1:" + sshDir, sshDir, []string{"-e", s.rsh()}, false},
	}
	if os.Geteuid() == 0 { // the daemon setting rpush(1) recommends
		c := newDaemonWith(t, "rsync", "use chroot = yes")
		ts = append(ts, renameTarget{"daemon with chroot", c.target(), c.module, []string{"--password-file", c.passFile}, true})
	}
	return ts
}

// sentBytes sums the "bytes" of rpush's result lines from line from on.
func sentBytes(t testing.TB, out string, from int) (int64, int) {
	var total int64
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[min(from, len(lines)):] {
		var rec event.Record
		if err := event.Unmarshal([]byte(l), &rec); err == nil && rec.Kind == event.KindResult {
			total += rec.Result.Bytes
		}
	}
	return total, len(lines)
}

// TestRenames: renaming a directory of 24 MiB, a 16 MiB file into another
// directory under another name, and a chain a → b → c reach every kind of
// target with their data taken from the target itself: the bytes rpush
// reports sending stay under 1 % of the data renamed. Then the release
// swap (cp -a cur new; edit new; mv cur old; mv new cur; rm -rf old),
// three times, converges with the right content.
func TestRenames(t *testing.T) {
	src := t.TempDir()
	for i := range 6 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("tree/sub%d/f", i)), 4<<20, i)
	}
	writeFile(t, filepath.Join(src, "big.iso"), 16<<20, 99)
	writeFile(t, filepath.Join(src, "movie.mkv"), 8<<20, 98)
	writeFile(t, filepath.Join(src, "a"), 1<<20, 7)
	writeFile(t, filepath.Join(src, "cur/index.html"), 1000, 1)
	writeFile(t, filepath.Join(src, "cur/app.js"), 2<<20, 2)
	must(t, os.Mkdir(filepath.Join(src, "archive"), 0o755))

	for _, tg := range renameTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s := t.TempDir() // each target gets its own copy of the source
			must(t, exec.Command("cp", "-a", src+"/.", s).Run())
			p := startPipeline(t, nil,
				[]string{bin("inowait"), "-mr", "--resync", s},
				[]string{bin("evfilter"), "--temp"},
				[]string{bin("evbatch"), "300ms"},
				append(append([]string{bin("rpush"), "--spool", t.TempDir()}, tg.args...), tg.spec),
			)
			converge(t, s, tg.dir)
			_, seen := sentBytes(t, p.out.String(), 0)

			renamed := int64(24<<20 + 16<<20 + 1<<20)
			must(t, os.Rename(filepath.Join(s, "tree"), filepath.Join(s, "tree-2026")))          // a directory
			must(t, os.Rename(filepath.Join(s, "big.iso"), filepath.Join(s, "archive/big.iso"))) // a file, to another directory
			must(t, os.Rename(filepath.Join(s, "a"), filepath.Join(s, "b")))                     // a chain, in one directory
			must(t, os.Rename(filepath.Join(s, "b"), filepath.Join(s, "c")))
			if tg.fuzzyElsewhere {
				renamed += 8 << 20
				must(t, os.Rename(filepath.Join(s, "movie.mkv"), filepath.Join(s, "archive/film.mkv")))
			}
			converge(t, s, tg.dir)
			sent, n := sentBytes(t, p.out.String(), seen)
			if sent > renamed/100 {
				t.Errorf("renames sent %d bytes over %d result lines, more than 1%% of the %d renamed\nrpush: %s", sent, n-seen, renamed, p.stderr[3].String())
			}
			t.Logf("%s: renaming %d MiB sent %d bytes (%.3f%%)", tg.name, renamed>>20, sent, 100*float64(sent)/float64(renamed))

			for round := range 3 {
				cur, nw, old := filepath.Join(s, "cur"), filepath.Join(s, "new"), filepath.Join(s, "old")
				must(t, exec.Command("cp", "-a", cur, nw).Run())
				must(t, os.WriteFile(filepath.Join(nw, "index.html"), []byte(fmt.Sprintf("release %d", round)), 0o644))
				converge(t, s, tg.dir) // the new release reaches the target first, as in a deploy
				must(t, os.Rename(cur, old))
				must(t, os.Rename(nw, cur))
				must(t, os.RemoveAll(old))
				converge(t, s, tg.dir)
				if b, _ := os.ReadFile(filepath.Join(tg.dir, "cur/index.html")); !bytes.Equal(b, []byte(fmt.Sprintf("release %d", round))) {
					t.Fatalf("round %d: cur/index.html is %q on the target", round, b)
				}
			}
		})
	}
}
