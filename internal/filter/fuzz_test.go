package filter

import (
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/event"
)

// FuzzPatterns: a pattern file either is refused with a line number or
// every pattern in it compiles and matches without panicking.
func FuzzPatterns(f *testing.F) {
	f.Add("^cache/\n# comment\n\n\\.swp$\n")
	f.Add("(unclosed\n")
	f.Add("a\r\nb\r\n")
	f.Fuzz(func(t *testing.T, file string) {
		pats, err := readPatterns(strings.NewReader(file))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		var s Set
		if err := Compile(&s.Exclude, pats, false, "fuzz"); err != nil {
			t.Fatalf("readPatterns accepted what Compile refuses: %v", err)
		}
		ev := event.Event{Root: "/d/", Watch: "/d/a/", Name: "x.swp", Path: "/d/a/x.swp", Op: event.CloseWrite}
		s.Decide(&ev)
	})
}
