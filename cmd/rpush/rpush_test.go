package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/base/pushflags"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/rsync"
)

// rpush in-process against local directory targets and the real rsync.
func TestRunLocal(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(tgt, "gone"), []byte("x"), 0o644)
	status := filepath.Join(t.TempDir(), "status.json")
	in := fmt.Sprintf(`{"seq":1,"root":"%s/","sync":["a"],"delete":["gone"]}`+"\n", src) +
		"not json\n" +
		fmt.Sprintf(`{"root":"%s/","watch":"%s/","name":"a","path":"%s/a","events":["CLOSE_WRITE","CLOSE"]}`+"\n", src, src, src)
	r := clitest.RunApp(t, newApp(), base.ExitUsage, in, "--spool", spool, "--status-file", status, tgt)
	if r.Code != 0 || strings.Count(r.Stdout, `"ok":true`) != 2 || !strings.Contains(r.Stderr, "rpush: error: line 2") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(tgt, "a")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(tgt, "gone")); err == nil {
		t.Error("gone was not deleted")
	}
	var doc struct {
		Targets []struct {
			BatchesOK int `json:"batches_ok"`
		} `json:"targets"`
	}
	b, _ := os.ReadFile(status)
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Targets) != 1 || doc.Targets[0].BatchesOK != 2 {
		t.Fatalf("status file %s (%v)", b, err)
	}
}

func TestRunUsageAndInput(t *testing.T) {
	tgt, spool := t.TempDir(), t.TempDir()
	for _, c := range []struct {
		name   string
		args   []string
		in     string
		code   int
		stderr string
	}{
		{"no target", []string{"--spool", spool}, "", base.ExitUsage, "no TARGET given"},
		{"strict", []string{"--spool", spool, "--strict", tgt}, "{}\n", base.ExitBadInput, "rpush: error: line 1"},
		{"result line", []string{"--spool", spool, tgt}, `{"seq":1,"root":"/d/","target":"x","ok":true}` + "\n", 0, "a result line is not input for rpush"},
		{"denied option", []string{"--spool", spool, "--rsync-opts", "-f'- *'", tgt}, "", base.ExitUsage, `is not allowed (-f)`},
		{"queue", []string{"--spool", spool, "--queue", "0", tgt}, "", base.ExitUsage, "--queue must be at least 1"},
		{"spool symlink", []string{"--spool", "/proc/self/cwd", tgt}, "", base.ExitError, "is a symlink"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := clitest.RunApp(t, newApp(), base.ExitUsage, c.in, c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.stderr) {
				t.Fatalf("exit %d, want %d\nstderr %s", r.Code, c.code, r.Stderr)
			}
		})
	}
}

// Issue 12: --log-files records every file a run changed, with rsync's
// itemized change, names exact (a newline, a byte that is not UTF-8).
func TestLogFiles(t *testing.T) {
	src, tgt, spool := t.TempDir(), t.TempDir(), t.TempDir()
	odd := "new\nline \xff"
	os.WriteFile(filepath.Join(src, odd), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "plain"), []byte("y"), 0o644)
	os.WriteFile(filepath.Join(tgt, "gone"), []byte("z"), 0o644)
	log := filepath.Join(t.TempDir(), "files.jsonl")
	b := event.Batch{Seq: 7, Root: src + "/", Sync: []string{odd, "plain"}, Delete: []string{"gone"}}
	r := clitest.RunApp(t, newApp(), base.ExitUsage, string(event.AppendBatch(nil, &b)), "--spool", spool, "--log-files", log, tgt)
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// the path field goes through the event codec (exact bytes)
		i := strings.Index(line, `"path":`)
		var rec event.Record
		if err := event.Unmarshal([]byte(`{"seq":1,"root":"/","sync":[`+line[i+len(`"path":`):len(line)-1]+`]}`), &rec); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		change := line[strings.Index(line, `"change":"`)+len(`"change":"`):]
		change = change[:strings.IndexByte(change, '"')]
		got[rec.Batch.Sync[0]] = change
		if !strings.Contains(line, `"seq":7`) || !strings.Contains(line, `"target":"`+tgt+`"`) {
			t.Errorf("record %s", line)
		}
	}
	if got[odd] != ">f+++++++++" || got["plain"] != ">f+++++++++" || got["gone"] != "*deleting" {
		t.Fatalf("records %q\n%s", got, data)
	}
}

// Progress of a long full sync: at most one line per period, none for the
// first period (a short sync says nothing).
func TestProgressLog(t *testing.T) {
	var b strings.Builder
	log := &base.Log{Prog: "rpush", W: &b}
	now := time.Unix(0, 0)
	f := pushflags.ProgressLog(log, false, func() time.Time { return now })
	tg, _ := rsync.ParseTarget("h::m")
	for i := 1; i <= 300; i++ {
		now = now.Add(100 * time.Millisecond) // 30 s in all
		f(tg, "/data/", i, int64(i)<<20)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "full sync of /data/ to h::m: 101 files, 101.0 MiB sent so far") {
		t.Fatalf("%q", lines)
	}
}
