package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/runconfig"
	"github.com/inopipe/inopipe/internal/status"
)

// The stages' command lines come from the config alone.
func TestStageArgs(t *testing.T) {
	cfg, err := runconfig.Parse("x.env", []byte("SOURCE=/data\nTARGETS=h::m /copy\nWINDOW=2s\nMAX_DELAY=10s\nSPOOL=/s\nJOBS=4\nPASSWORD_FILE=/p\nRSYNC_OPTS=-z\nSTATUS_FILE=/st.prom\nINOWAIT_OPTS=--exclude x\nEVFILTER_OPTS=--temp\nRPUSH_OPTS=--delete=false --timeout 100 --queue 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := stageArgs(cfg)
	want := [][]string{
		{"-mr", "--resync", "--exclude", "x", "--", "/data"},
		{"--temp"},
		{"--max-delay", "10s", "2s"},
		{"--stop-on-refusal", "--delete=false", "--timeout", "100", "--queue", "10", "--spool", "/s", "--password-file", "/p", "--rsync-opts", "-z", "--jobs", "4", "--status-file", "/st.prom", "--instance", "x", "--", "h::m", "/copy"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// failreplay gets the options it shares with rpush, not --queue.
	if got, want := sharedFromRpush(cfg.RpushOpts), []string{"--delete=false", "--timeout", "100"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("shared %q, want %q", got, want)
	}
}

func TestShowStatus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "st.json")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ok := t0.Add(-time.Minute)
	tr := status.New(t0, []string{"web2::www"})
	tr.Done(&event.Result{Target: "web2::www", Seq: 1, OK: true}, ok)
	tr.Done(&event.Result{Target: "web2::www", Seq: 2, Error: "rsync exit 10: connection refused", Spooled: "/s/x.batch"}, t0)
	os.WriteFile(file, status.JSON(tr.Snapshot(t0, "/s", 1, 0, nil)), 0o644)
	cfg, err := runconfig.Parse("www.env", []byte("SOURCE=/data\nTARGETS=web2::www\nSTATUS_FILE="+file+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := showStatus(cfg, t0.Add(5*time.Second), &b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/data: updated 2026-12-01T10:00:00Z (5s ago)", "spool /s: 1 entries waiting", "web2::www", "rsync exit 10: connection refused", "(1m5s ago)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}
