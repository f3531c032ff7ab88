package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// syslogLine is what log/syslog writes to a local socket.
var syslogLine = regexp.MustCompile(`^<27>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d inowait\[(\d+)\]: (.*)\n$`)

func checkSyslogLine(t *testing.T, got, want string) {
	t.Helper()
	m := syslogLine.FindStringSubmatch(got)
	if m == nil || m[1] != strconv.Itoa(os.Getpid()) || m[2] != want {
		t.Fatalf("message %q, want %q from pid %d", got, want, os.Getpid())
	}
}

func listenGram(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readGram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestSyslogDatagram: a real datagram listener (as journald's and
// rsyslog's /dev/log) gets one message per write, in log/syslog's local
// form; the first path that does not exist is skipped.
func TestSyslogDatagram(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	c := listenGram(t, sock)
	w, err := newSyslog(27, "inowait", []string{filepath.Join(dir, "none"), sock})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, msg := range []string{"inowait: no such file\n", "no newline", ""} {
		if n, err := w.Write([]byte(msg)); err != nil || n != len(msg) {
			t.Fatalf("Write(%q) = %d, %v", msg, n, err)
		}
		checkSyslogLine(t, readGram(t, c), strings.TrimSuffix(msg, "\n"))
	}
}

// TestSyslogReconnects: a syslog daemon restarted between two messages
// (a new socket at the same path) gets the second one.
func TestSyslogReconnects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	c := listenGram(t, sock)
	w, err := newSyslog(27, "inowait", []string{sock})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	checkSyslogLine(t, readGram(t, c), "one")
	c.Close()
	os.Remove(sock)
	c = listenGram(t, sock)
	if _, err := w.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	checkSyslogLine(t, readGram(t, c), "two")
}

// TestSyslogStream: where the daemon listens on a stream socket only,
// messages go there, newline-terminated.
func TestSyslogStream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w, err := newSyslog(27, "inowait", []string{sock})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, msg := range []string{"a", "b\n"} {
		if _, err := w.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for _, want := range []string{"a", "b"} {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		checkSyslogLine(t, line, want)
	}
}

// TestSyslogNone: with no daemon, an error names the path tried, and
// inowait falls back to stderr (TestSyslogGetsFatalErrors' second half).
func TestSyslogNone(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "log")
	_, err := newSyslog(27, "inowait", []string{missing})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err %v, want one naming %s", err, missing)
	}
}
