package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var envLine = regexp.MustCompile(`^[A-Z][A-Z0-9_]*=[^\n]*$`)

// FuzzConvert: any confxml.xml either fails cleanly or becomes an env file
// whose every line is a comment, blank, or one KEY=value: a value from the
// XML never starts a line of its own (a newline in a name would otherwise
// inject a setting, e.g. TARGETS).
func FuzzConvert(f *testing.F) {
	for _, n := range []string{"default", "production", "ssh"} {
		b, err := os.ReadFile("testdata/" + n + ".xml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<head version="2.5"><sersync><localpath watch="/data&#10;TARGETS=/x"><remote ip="h" name="m&#10;SPOOL=/tmp"/></localpath></sersync></head>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data)
		if err != nil {
			return
		}
		r, err := convert(c, "www", "/var/spool/inopipe/www")
		if err != nil {
			return
		}
		var b strings.Builder
		render(&b, r, "www", "confxml.xml")
		var got []string
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if !envLine.MatchString(line) {
				t.Fatalf("env line %q is neither a comment nor KEY=value\n%s", line, b.String())
			}
			got = append(got, line)
		}
		// Exactly the settings, in order: no line came from inside a value
		// or a comment.
		var want []string
		for _, st := range r.settings {
			want = append(want, st.key+"="+st.value)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("settings lines %q, want %q\n%s", got, want, b.String())
		}
	})
}
