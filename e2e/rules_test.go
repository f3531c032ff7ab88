//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/base/clitest"
)

// The README's recipe: every full sync must apply it as the live stream
// does (issue: one rule set for live events and every full sync).
var recipe = []string{"--temp", "-x", "^cache/"}

// rulesFixture makes a source with excluded files (cache/, a swap file)
// and a target with files of its own: excluded ones, which no run may
// delete, and stale.txt, which a full sync deletes (proof that it ran).
func rulesFixture(t testing.TB, src, tgt string) {
	t.Helper()
	for p, data := range map[string]string{
		"keep.txt": "keep", "www/index.html": "<html>", "cache/src-only.bin": "never sent", "www/.index.html.swp": "swap",
	} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(src, p), []byte(data), 0o644))
	}
	for p, data := range map[string]string{
		"cache/target-only.bin": "precious", "www/.old.swp": "target's swap", "stale.txt": "gone from the source",
	} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(tgt, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(tgt, p), []byte(data), 0o644))
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// fullSyncDone: the full sync ran (stale.txt deleted, keep.txt there).
func fullSyncDone(tgt string) bool {
	return !exists(filepath.Join(tgt, "stale.txt")) && exists(filepath.Join(tgt, "keep.txt")) && exists(filepath.Join(tgt, "www/index.html"))
}

// checkRules: after a full sync the target has what the source has but
// for the excluded paths, which were neither sent nor deleted.
func checkRules(t testing.TB, tgt, how string) {
	t.Helper()
	if !fullSyncDone(tgt) {
		t.Fatalf("%s: the full sync did not run (stale.txt still there, or keep.txt missing)", how)
	}
	for _, p := range []string{"cache/src-only.bin", "www/.index.html.swp"} {
		if exists(filepath.Join(tgt, p)) {
			t.Errorf("%s: excluded %s was sent to the target", how, p)
		}
	}
	for _, p := range []string{"cache/target-only.bin", "www/.old.swp"} {
		if !exists(filepath.Join(tgt, p)) {
			t.Errorf("%s: the target's excluded %s was deleted", how, p)
		}
	}
}

// chain runs evfilter (the recipe), evbatch and rpush one after the other
// on a finite stream, each reading the previous one's output: the
// pipeline without inowait, for control records that are hard to cause.
func chain(t testing.TB, in string, rpushArgs ...string) clitest.Result {
	t.Helper()
	r := clitest.Run(t, in, bin("evfilter"), recipe...)
	if r.Code != 0 {
		t.Fatalf("evfilter: %d %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, r.Stdout, bin("evbatch"), "10ms")
	if r.Code != 0 {
		t.Fatalf("evbatch: %d %s", r.Code, r.Stderr)
	}
	return clitest.Run(t, r.Stdout, bin("rpush"), rpushArgs...)
}

func eventLine(root, rel, events string) string {
	return fmt.Sprintf(`{"root":"%s/","watch":"%s/","name":"%s","path":"%s/%s","events":[%s]}`+"\n", root, root, rel, root, rel, events)
}

func overflowLine(root string) string {
	return fmt.Sprintf(`{"root":"%s/","watch":"","name":"","path":"","events":["Q_OVERFLOW"]}`+"\n", root)
}

// The start-up full sync (inowait --resync) of the README's pipeline.
func TestRulesStartupResync(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	rulesFixture(t, src, tgt)
	startPipeline(t, nil,
		[]string{bin("inowait"), "-mr", "--resync", src},
		append([]string{bin("evfilter")}, recipe...),
		[]string{bin("evbatch"), "100ms"},
		[]string{bin("rpush"), "--spool", spool, tgt},
	)
	clitest.Eventually(t, "the start-up full sync", func() bool { return fullSyncDone(tgt) })
	checkRules(t, tgt, "start-up resync")
}

// The full syncs rpush makes on its own: a queue overflow's, and
// --init's before the first batch.
func TestRulesRpushFullSyncs(t *testing.T) {
	for _, c := range []struct {
		name string
		in   func(src string) string
		args []string
	}{
		{"overflow", overflowLine, nil},
		{"rpush --init", func(src string) string { return eventLine(src, "keep.txt", `"CLOSE_WRITE","CLOSE"`) }, []string{"--init"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
			rulesFixture(t, src, tgt)
			r := chain(t, c.in(src), append(append([]string{"--spool", spool}, c.args...), tgt)...)
			if r.Code != 0 {
				t.Fatalf("rpush: %d %s", r.Code, r.Stderr)
			}
			checkRules(t, tgt, c.name)
		})
	}
}

// failreplay --full applies the rules rpush recorded in the spool.
func TestRulesFailreplayFull(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	rulesFixture(t, src, tgt)
	r := chain(t, eventLine(src, "keep.txt", `"CLOSE_WRITE","CLOSE"`), "--spool", spool, tgt)
	if r.Code != 0 || fullSyncDone(tgt) {
		t.Fatalf("rpush: %d %s (or it ran a full sync)", r.Code, r.Stderr)
	}
	r = clitest.Run(t, "", bin("failreplay"), "--spool", spool, "--full")
	if r.Code != 0 {
		t.Fatalf("failreplay --full: %d %s", r.Code, r.Stderr)
	}
	checkRules(t, tgt, "failreplay --full")
}

// inopipe-run --full on a fresh install: the rules come from the config.
func TestRulesInopipeRunFull(t *testing.T) {
	src, tgt, dir := t.TempDir(), t.TempDir(), t.TempDir()
	rulesFixture(t, src, tgt)
	env := filepath.Join(dir, "www.env")
	must(t, os.WriteFile(env, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nSPOOL=%s/spool\nEVFILTER_OPTS=%s\nBIN=%s\n",
		src, tgt, dir, strings.Join(recipe, " "), binDir)), 0o600))
	r := clitest.Run(t, "", bin("inopipe-run"), "--full", env)
	if r.Code != 0 {
		t.Fatalf("inopipe-run --full: %d %s", r.Code, r.Stderr)
	}
	checkRules(t, tgt, "inopipe-run --full")
}

// A full sync spooled while the daemon was down replays with the rules it
// was made with.
func TestRulesSpooledReplay(t *testing.T) {
	d := newDaemon(t)
	d.stop()
	src, spool := t.TempDir(), t.TempDir()
	rulesFixture(t, src, d.module)
	common := []string{"--spool", spool, "--password-file", d.passFile, "--retries", "0", "--contimeout", "2"}
	r := chain(t, overflowLine(src), append(common, d.target())...)
	if r.Code != 4 || !strings.Contains(r.Stdout, `"spooled":`) {
		t.Fatalf("daemon down: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	entries, _ := filepath.Glob(filepath.Join(spool, "*.batch"))
	if len(entries) != 1 {
		t.Fatalf("spool: %v", entries)
	}
	if b, _ := os.ReadFile(entries[0]); !strings.Contains(string(b), `"rules":{"exclude":["/cache/"`) {
		t.Fatalf("the spooled batch does not carry the rules:\n%s", b)
	}
	d.start(t)
	r = clitest.Run(t, "", bin("failreplay"), common...)
	if r.Code != 0 {
		t.Fatalf("failreplay: %d %s", r.Code, r.Stderr)
	}
	checkRules(t, d.module, "spooled replay")
}

// TestSymlinksByteForByte: with the daemon setting rpush(1) gives ("use
// chroot = yes", rsync's default, for a daemon started as root), every
// symlink arrives exactly as in the source: absolute, "../", dangling,
// odd bytes. Without chroot the daemon rewrites them whatever "munge
// symlinks" says (sanitized, or munged): the setting is what keeps them.
func TestSymlinksByteForByte(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("rsync's daemon chroots only as root (CI runs as root)")
	}
	links := map[string]string{
		"abs": "/etc/hostname", "up": "../../outside/file", "dotdot": "a/../../b", "dangling": "nowhere",
		"odd": "sp ace/\xff\xfe/new\nline", "self": ".",
	}
	src := t.TempDir()
	for name, to := range links {
		must(t, os.Symlink(to, filepath.Join(src, name)))
	}
	for _, c := range []struct {
		extra string
		exact bool
	}{{"use chroot = yes", true}, {"use chroot = no\nmunge symlinks = no", false}, {"use chroot = no\nmunge symlinks = yes", false}} {
		d := newDaemonWith(t, "rsync", c.extra)
		r := clitest.Run(t, overflowLine(src), bin("rpush"), "--spool", t.TempDir(), "--password-file", d.passFile, d.target())
		if r.Code != 0 {
			t.Fatalf("rpush (%q): %d %s", c.extra, r.Code, r.Stderr)
		}
		same := true
		for name, to := range links {
			got, err := os.Readlink(filepath.Join(d.module, name))
			if err != nil || got != to {
				same = false
				if c.exact {
					t.Errorf("%q: %s: target link %q (%v), source %q", c.extra, name, got, err, to)
				}
			}
		}
		if !c.exact && same {
			t.Errorf("with %q every link arrived as it is: then rpush(1) need not ask for chroot", c.extra)
		}
	}
}

// TestRunFullHonoursRpushOpts: the config's RPUSH_OPTS reach the full
// sync and the replays of inopipe-run (sersync's <delete start=false>
// becomes --delete=false): a target-only file survives --full.
func TestRunFullHonoursRpushOpts(t *testing.T) {
	src, tgt, dir := t.TempDir(), t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "new"), []byte("n"), 0o644))
	must(t, os.WriteFile(filepath.Join(tgt, "target-only"), []byte("keep me"), 0o644))
	env := filepath.Join(dir, "nodel.env")
	must(t, os.WriteFile(env, []byte(fmt.Sprintf("SOURCE=%s\nTARGETS=%s\nSPOOL=%s/spool\nRPUSH_OPTS=--delete=false --timeout 30\nBIN=%s\n",
		src, tgt, dir, binDir)), 0o600))
	for _, mode := range []string{"--full", "--replay"} {
		r := clitest.Run(t, "", bin("inopipe-run"), mode, env)
		if r.Code != 0 {
			t.Fatalf("inopipe-run %s: %d %s", mode, r.Code, r.Stderr)
		}
	}
	if !exists(filepath.Join(tgt, "new")) || !exists(filepath.Join(tgt, "target-only")) {
		t.Fatalf("--full with RPUSH_OPTS=--delete=false: new %v, target-only %v", exists(filepath.Join(tgt, "new")), exists(filepath.Join(tgt, "target-only")))
	}
}

// failreplay --full with a rules.json it cannot read runs no full sync
// (one without the rules would delete the target's excluded files): it
// says so and exits 4, the target untouched.
func TestRulesUnreadableNoFullSync(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	rulesFixture(t, src, tgt)
	r := chain(t, eventLine(src, "keep.txt", `"CLOSE_WRITE","CLOSE"`), "--spool", spool, tgt)
	if r.Code != 0 {
		t.Fatalf("rpush: %d %s", r.Code, r.Stderr)
	}
	must(t, os.WriteFile(filepath.Join(spool, "rules.json"), []byte("{not json"), 0o600))
	r = clitest.Run(t, "", bin("failreplay"), "--spool", spool, "--full")
	if r.Code != 4 || !strings.Contains(r.Stderr, "no full sync without the pipeline's rules") {
		t.Fatalf("failreplay --full: exit %d %s", r.Code, r.Stderr)
	}
	if !exists(filepath.Join(tgt, "cache/target-only.bin")) || !exists(filepath.Join(tgt, "stale.txt")) {
		t.Fatal("a full sync ran without the rules")
	}
}
