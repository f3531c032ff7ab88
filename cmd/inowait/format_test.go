package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/inotify"
)

func TestTextFormat(t *testing.T) {
	ev := &event.Event{Watch: "/abs/d/", Name: "a,b", Op: event.CloseWrite, Cookie: 0x14a,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)}
	disp := func(w string) string { return "d/" }
	cases := []struct {
		f    textFormat
		want string
	}{
		{textFormat{parts: parseFormat("%w %,e %f"), display: disp}, "d/ CLOSE_WRITE,CLOSE a,b\n"},
		{textFormat{csv: true, display: disp}, "d/,\"CLOSE_WRITE,CLOSE\",\"a,b\"\n"},
		{textFormat{parts: parseFormat("%w%f%0"), noNewline: true}, "/abs/d/a,b\x00"},
		{textFormat{parts: parseFormat("%:e|%c|%%|%n|%q")}, "CLOSE_WRITE:CLOSE|14a|%|\n|%q\n"},
		{textFormat{parts: parseFormat("%T"), timefmt: "%F %T %j %a %b %e %I%p %s %%"}, "2026-01-02 03:04:05 002 Fri Jan  2 03AM " + itoa(ev.Time.Unix()) + " %\n"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := string(c.f.append(nil, ev)); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// itoa is the expected %s: computed by strconv, not by the strftime under
// test.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCSVQuoting(t *testing.T) {
	cases := map[string]string{
		"plain": "plain", "a b": "a b", " lead": `" lead"`, "trail ": `"trail "`,
		`q"x`: `"q""x"`, "c,d": `"c,d"`, "n\nl": "\"n\nl\"", "": "",
	}
	for in, want := range cases {
		if got := string(appendCSV(nil, in)); got != want {
			t.Errorf("appendCSV(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestManPageCoversFlags(t *testing.T) {
	clitest.CheckManPage(t, newApp(), "../../man/inowait.1")
}

// A kernel limit reaches the operator as an error naming the sysctl and a
// hint with a value to raise it to (the voice STYLE.md asks for).
func TestLimitErrorVoice(t *testing.T) {
	for _, c := range []struct {
		le   *inotify.LimitError
		want []string
	}{
		{&inotify.LimitError{Op: "watch /srv/data/x", Sysctl: "fs.inotify.max_user_watches", Value: "8192", Raise: 524288, Dirs: 8100, Err: unix.ENOSPC},
			[]string{"inowait: error: watch /srv/data/x: no space left on device (fs.inotify.max_user_watches is 8192; 8100 directories watched so far)",
				"inowait: hint: raise fs.inotify.max_user_watches, e.g. sysctl fs.inotify.max_user_watches=524288 (see inowait(1), LIMITS)"}},
		{&inotify.LimitError{Op: "inotify_init1", Sysctl: "fs.inotify.max_user_instances", Value: "128", Raise: 1024, Err: unix.EMFILE},
			[]string{"inowait: error: inotify_init1: too many open files (fs.inotify.max_user_instances is 128)",
				"inowait: hint: raise fs.inotify.max_user_instances, e.g. sysctl fs.inotify.max_user_instances=1024"}},
	} {
		t.Run(c.want[0], func(t *testing.T) {
			var b strings.Builder
			code := base.Report(&b, "inowait", voice(fmt.Errorf("setup: %w", c.le)), 1)
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("missing %q in:\n%s", w, b.String())
				}
			}
			if code != exitError || !errors.Is(c.le, c.le.Err) {
				t.Errorf("exit %d", code)
			}
		})
	}
}

// -e as inotifywait 3.22.6 reads it (checked side by side, TestSideBySide):
// an empty name anywhere means every event, a blank makes the value
// invalid, oneshot accepted.
func TestParseEvents(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want event.Op
		err  string
	}{
		{[]string{""}, event.AllEvents, ""},
		{[]string{"create,"}, event.AllEvents, ""},
		{[]string{"create,,delete"}, event.AllEvents, ""},
		{[]string{"CREATE", "close_write"}, event.Create | event.CloseWrite, ""},
		{[]string{"oneshot"}, 0, ""},
		{[]string{"create, delete"}, 0, "'create, delete' is not a valid event"},
		{[]string{"bogus"}, 0, "'bogus' is not a valid event"},
	} {
		t.Run(strings.Join(c.in, "|"), func(t *testing.T) {
			got, err := parseEvents(c.in)
			if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) || got != c.want {
				t.Errorf("%q: %v, %v; want %v, %q", c.in, got, err, c.want, c.err)
			}
		})
	}
}

// A POSIX TZ string (TZ=CST-8 in the Chinese tutorials), which Go's time
// package does not read, gives the zone glibc gives.
func TestPosixTZ(t *testing.T) {
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ tz, want string }{
		{"CST-8", "2026-07-01 08:00 CST +0800"},
		{"EST5EDT,M3.2.0,M11.1.0", "2026-06-30 20:00 EDT -0400"},
		{"<+0530>-5:30", "2026-07-01 05:30 +0530 +0530"},
	} {
		t.Run(c.tz, func(t *testing.T) {
			loc, err := time.LoadLocationFromTZData(c.tz, posixTZData(c.tz))
			if err != nil {
				t.Fatalf("%s: %v", c.tz, err)
			}
			if got := at.In(loc).Format("2006-01-02 15:04 MST -0700"); got != c.want {
				t.Errorf("TZ=%s: %s, want %s (glibc's)", c.tz, got, c.want)
			}
		})
	}
}

// --timefmt as glibc's strftime (the one inotifywait calls) prints it; the
// expected strings are glibc's own, taken with Python's time.strftime on
// this machine: ISO weeks, week numbers, GNU flags and widths, %P, and an
// unknown conversion (%N, %Q) printed as written.
func TestStrftimeLikeGlibc(t *testing.T) {
	for _, c := range []struct {
		unix int64
		f    string
		want string
	}{
		{1767225600, "%V %G %g %U %W", "01 2026 26 00 00"},
		{1767225600, "%-d|%_H|%05Y|%^a|%#p|%P|%-j|%3d", "1| 0|02026|THU|am|am|1|001"},
		{1767225600, "%N %Q", "%N %Q"},
		{1735603200, "%V %G %g %U %W", "01 2025 25 52 53"},
		{1735603200, "%-d|%_H|%05Y|%^a|%#p|%P|%-j|%3d", "31| 0|02024|TUE|am|am|366|031"},
		{1609459200, "%V %G %g %U %W", "53 2020 20 00 00"},
		{1798675200, "%V %G %g %U %W", "53 2026 26 52 52"},
		{1798675200, "%-d|%_H|%05Y|%^a|%#p|%P|%-j|%3d", "31| 0|02026|THU|am|am|365|031"},
		{1767269045, "%-d|%_H|%05Y|%^a|%#p|%P|%-j|%3d", "1|12|02026|THU|pm|pm|1|001"},
		{1767269045, "%-I:%M %p %^B", "12:04 PM JANUARY"},
	} {
		t.Run(c.f, func(t *testing.T) {
			if got := string(strftime(nil, c.f, time.Unix(c.unix, 0).UTC())); got != c.want {
				t.Errorf("%d %q: %q, want %q", c.unix, c.f, got, c.want)
			}
		})
	}
}
