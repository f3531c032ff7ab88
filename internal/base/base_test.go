package base

import (
	"bytes"
	"os"
	"regexp"
	"testing"
)

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) || IsTerminal(&bytes.Buffer{}) {
		t.Error("a pipe or a buffer taken for a terminal")
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	defer pty.Close()
	if !IsTerminal(pty) {
		t.Error("a pty not taken for a terminal")
	}
}

// Timestamps: on the process's stderr unless it is the journal or
// INOPIPE_NO_TIMESTAMPS is set; never on a buffer (tests, goldens).
func TestLogStamps(t *testing.T) {
	var b bytes.Buffer
	if NewLog("x", &b).Stamp {
		t.Error("a buffer gets timestamps")
	}
	t.Setenv("JOURNAL_STREAM", "")
	t.Setenv("INOPIPE_NO_TIMESTAMPS", "")
	if !NewLog("x", os.Stderr).Stamp {
		t.Error("stderr gets no timestamps")
	}
	t.Setenv("JOURNAL_STREAM", "8:1234")
	if NewLog("x", os.Stderr).Stamp {
		t.Error("the journal gets timestamps")
	}
	t.Setenv("JOURNAL_STREAM", "")
	t.Setenv("INOPIPE_NO_TIMESTAMPS", "1")
	if NewLog("x", os.Stderr).Stamp {
		t.Error("--no-timestamps ignored")
	}
	l := &Log{Prog: "rpush", W: &b, Stamp: true}
	l.Errorf("x %d", 1)
	if !regexp.MustCompile(`^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z rpush: error: x 1\n$`).MatchString(b.String()) {
		t.Errorf("%q", b.String())
	}
}
