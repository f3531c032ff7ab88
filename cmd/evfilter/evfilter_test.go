package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
)

var binDir string

func TestMain(m *testing.M) { clitest.Main(m, &binDir, "evfilter") }

func bin() string { return filepath.Join(binDir, "evfilter") }

const (
	swp  = `{"root":"/d/","watch":"/d/","name":".a.swp","path":"/d/.a.swp","events":["CREATE"]}`
	keep = `{"root":"/d/","watch":"/d/","name":"x\udcff","path":"/d/x\udcff","events":["CREATE"],"future":{"a":1}}`
	ovf  = `{"root":"/d/","watch":"/d/","name":"","path":"/d/","events":["Q_OVERFLOW"]}`
)

func TestCLI(t *testing.T) {
	in := swp + "\nnot json\n" + keep + "\n" + ovf + "\n"
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"temp", []string{"--temp"}, 0, keep + "\n" + ovf + "\n", "evfilter: error: line 2: not a JSON object"},
		{"invert", []string{"--temp", "-v"}, 0, swp + "\n" + ovf + "\n", ""},
		{"exclude all keeps control", []string{"-x", "."}, 0, ovf + "\n", ""},
		{"strict", []string{"--strict"}, 3, swp + "\n", "line 2"},
		{"stats", []string{"--temp", "--stats"}, 0, keep + "\n" + ovf + "\n", "evfilter: in 4, out 2, malformed 1, control 1, pass 1, temp 1"},
		{"bad regex", []string{"-x", "("}, 2, "", "evfilter: error: --exclude: error parsing regexp"},
		{"bad event", []string{"-e", "nope"}, 2, "", `unknown event "nope"`},
		{"argument", []string{"file"}, 2, "", "unexpected argument"},
		{"missing pattern file", []string{"--exclude-from", "/nonexistent"}, 2, "", "--exclude-from /nonexistent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := clitest.RunApp(t, newApp(), base.ExitUsage, in, c.args...)
			r.Stdout = dropRules(r.Stdout)
			if r.Code != c.code || r.Stdout != c.stdout || !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("%s: exit %d\nstdout %q\nstderr %q\nwant exit %d stdout %q stderr ~%q", c.name, r.Code, r.Stdout, r.Stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
}

// dropRules removes the rules record evfilter writes first (TestRules).
func dropRules(out string) string {
	if strings.HasPrefix(out, `{"rules":`) {
		_, out, _ = strings.Cut(out, "\n")
	}
	return out
}

// TestRules: the first line is the rules as rsync patterns; an upstream
// evfilter's rules are joined with ours; a rule rsync cannot express is
// named on stderr; --print-rules prints the record alone.
func TestRules(t *testing.T) {
	cases := []struct {
		name           string
		in             string
		args           []string
		stdout, stderr string
	}{
		{"first line", keep + "\n", []string{"-x", "^cache/", "-x", `\.swp$`}, `{"rules":{"exclude":["/cache/","*.swp"]}}` + "\n" + keep + "\n", ""},
		{"no path rule, no record", keep + "\n", []string{"-e", "create"}, keep + "\n", ""},
		{"include", "", []string{"-i", `\.html$`}, `{"rules":{"exclude":[],"include":["*.html"]}}` + "\n", ""},
		{"upstream joined", `{"rules":{"exclude":["/a/"]}}` + "\n", []string{"-x", "^b/"},
			`{"rules":{"exclude":["/b/"]}}` + "\n" + `{"rules":{"exclude":["/a/","/b/"]}}` + "\n", ""},
		{"untranslatable named", "", []string{"-x", `^[0-9]+\.log$`, "-x", "^tmp/"}, `{"rules":{"exclude":["/tmp/"]}}` + "\n",
			`warning: exclude "^[0-9]+\\.log$": a repetition`},
		{"print-rules reads nothing", keep + "\n", []string{"--print-rules", "-x", "^cache/"}, `{"rules":{"exclude":["/cache/"]}}` + "\n", ""},
		{"invert: no rules", "", []string{"-v", "-x", "a"}, "", "--invert: full syncs"},
	}
	// More patterns than a rules record may carry: refused at start, not
	// left for evbatch to drop (full syncs would then run without rules).
	var many []string
	for i := range 70 { // 64 patterns each
		many = append(many, "-x", fmt.Sprintf("^(aa|bb|cc|dd)(ee|ff|gg|hh)(ii|jj|kk|ll)%d", i))
	}
	if r := clitest.RunApp(t, newApp(), base.ExitUsage, "", many...); r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "more than 4096 rules") {
		t.Errorf("too many rules: exit %d %q", r.Code, r.Stderr)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := clitest.RunApp(t, newApp(), base.ExitUsage, c.in, c.args...)
			if r.Code != 0 || r.Stdout != c.stdout || !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("%s: exit %d\nstdout %q\nstderr %q\nwant stdout %q stderr ~%q", c.name, r.Code, r.Stdout, r.Stderr, c.stdout, c.stderr)
			}
		})
	}
}

// TestBinary runs the built binary once: main's wiring (signals, exit).
func TestBinary(t *testing.T) {
	r := clitest.Run(t, swp+"\n"+keep+"\n", bin(), "--temp")
	if r.Code != 0 || dropRules(r.Stdout) != keep+"\n" {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestManPageCoversFlags(t *testing.T) {
	clitest.CheckManPage(t, newApp(), "../../man/evfilter.1")
}
