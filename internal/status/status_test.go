package status

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
)

func TestTrackerAndRender(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tr := New(t0, []string{"backup::data", `odd"name\`})
	tr.Queued("backup::data", 1, t0)
	tr.Queued("backup::data", 2, t0.Add(2*time.Second))
	tr.Done(&event.Result{Target: "backup::data", Seq: 1, OK: true, Paths: 10, Bytes: 4096, Attempts: 1}, t0.Add(3*time.Second))
	tr.Queued(`odd"name\`, 1, t0)
	tr.Done(&event.Result{Target: `odd"name\`, Seq: 1, Paths: 10, Attempts: 4, Error: "rsync exit 10: connection refused", Spooled: "/spool/x.batch"}, t0.Add(4*time.Second))
	tr.Queued("unknown", 9, t0) // ignored, never panics
	d := tr.Snapshot(t0.Add(5*time.Second), "/var/spool/inopipe", 1, 2, nil)

	a, b := d.Targets[0], d.Targets[1]
	if a.BatchesOK != 1 || a.Pending != 1 || a.LagSeconds != 3 || a.Bytes != 4096 || a.LastSuccess == nil || a.LastFailure != nil {
		t.Errorf("backup::data: %+v", a)
	}
	if b.BatchesFailed != 1 || b.BatchesSpooled != 1 || b.Retries != 3 || b.Pending != 0 || b.LagSeconds != 0 || b.LastError == "" {
		t.Errorf("odd: %+v", b)
	}
	j := string(JSON(d))
	for _, want := range []string{`"lag_seconds": 3`, `"last_success": "2026-11-21T10:00:03Z"`, `"last_failure": null`, `"spool_entries": 1`, `"spool_quarantined": 2`} {
		if !strings.Contains(j, want) {
			t.Errorf("JSON lacks %s:\n%s", want, j)
		}
	}
	p := string(Prometheus(d))
	for _, want := range []string{
		`inopipe_batches_ok_total{target="backup::data"} 1`,
		`inopipe_retries_total{target="odd\"name\\"} 3`,
		`inopipe_last_success_timestamp_seconds{target="backup::data"} 1795255203`,
		`inopipe_lag_seconds{target="backup::data"} 3`,
		`inopipe_spool_entries{spool="/var/spool/inopipe"} 1`,
		`inopipe_spool_quarantined{spool="/var/spool/inopipe"} 2`,
		"# TYPE inopipe_bytes_total counter",
	} {
		if !strings.Contains(p, want+"\n") {
			t.Errorf("Prometheus lacks %s:\n%s", want, p)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rpush.prom")
	for _, body := range []string{"one\n", "two\n"} {
		if err := WriteFile(path, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != body {
			t.Errorf("got %q", b)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("temp files left: %v", des)
	}
	if err := WriteFile(filepath.Join(dir, "no/such/dir/x"), nil); err == nil || !strings.Contains(err.Error(), "status file") {
		t.Errorf("err = %v", err)
	}
}

// Safety issue, case 12: a status file whose write fails (a full
// filesystem) is not replaced by a partial one; the error is returned.
func TestWriteFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	clitest.MountTmpfs(t, dir, "16k")
	p := filepath.Join(dir, "status.json")
	if err := WriteFile(p, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	clitest.FillUp(t, dir)
	if err := WriteFile(p, bytes.Repeat([]byte("x"), 64*1024)); err == nil {
		t.Fatal("no error writing to a full filesystem")
	}
	if b, _ := os.ReadFile(p); string(b) != `{"ok":true}` {
		t.Fatalf("status file now %d bytes: %.40q", len(b), b)
	}
}

// Issue 12: two instances in one textfile directory never produce the
// same series: every sample carries instance=.
func TestPrometheusInstanceLabel(t *testing.T) {
	tr := New(time.Unix(0, 0), []string{"h::m"})
	tr.Instance = "www"
	out := string(Prometheus(tr.Snapshot(time.Unix(10, 0), "/s", 0, 0, nil)))
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, `{instance="www",`) {
			t.Errorf("sample without the instance label: %s", line)
		}
	}
}

// TestTwoInstancesMetrics: two pipelines' status files in one textfile
// collector directory never give the same series twice, and each file
// passes promtool check metrics when promtool is installed (Debian's
// prometheus package; not installed by make deps: 96 MB).
func TestTwoInstancesMetrics(t *testing.T) {
	series := map[string]string{}
	for _, inst := range []string{"www", "media"} {
		tr := New(time.Unix(0, 0), []string{"h::m", "/srv/copy"})
		tr.Instance = inst
		out := Prometheus(tr.Snapshot(time.Unix(10, 0), "/s", 2, 0, nil))
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			key := line[:strings.LastIndexByte(line, ' ')]
			if prev, ok := series[key]; ok {
				t.Errorf("series %s in both %s and %s", key, prev, inst)
			}
			series[key] = inst
		}
		if _, err := exec.LookPath("promtool"); err != nil {
			continue
		}
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = bytes.NewReader(out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics (%s): %v\n%s\n%s", inst, err, msg, out)
		}
	}
}
