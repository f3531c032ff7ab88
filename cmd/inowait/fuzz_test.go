package main

import (
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// FuzzFormat: any --format string compiles and prints an event without
// panicking; text outside directives comes out as written.
func FuzzFormat(f *testing.F) {
	for _, s := range []string{"%w%f %e", "%T %w%f%0", "%:e|%,e", "%", "%%%", "100%", "%Xe%c%n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		parts := parseFormat(format)
		if !strings.Contains(format, "%") {
			if len(parts) > 1 || (len(parts) == 1 && parts[0].lit != format) {
				t.Fatalf("plain text %q became %+v", format, parts)
			}
		}
		tf := &textFormat{parts: parts, timefmt: "%H:%M", display: func(w string) string { return w }}
		ev := &event.Event{Watch: "/d/", Name: "a,b", Path: "/d/a,b", Op: event.CloseWrite, Time: time.Unix(0, 0)}
		tf.append(nil, ev)
	})
}
