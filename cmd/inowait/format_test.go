package main

import (
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/clitest"
	"github.com/inopipe/inopipe/internal/event"
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
		if got := string(c.f.append(nil, ev)); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func itoa(n int64) string { return string(strftime(nil, "%s", time.Unix(n, 0))) }

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
