package main

import (
	"reflect"
	"testing"

	"github.com/inopipe/inopipe/cmd/internal/runconfig"
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
