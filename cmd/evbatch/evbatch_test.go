package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/urfave/cli/v2"
)

var binDir string

func TestMain(m *testing.M) { clitest.Main(m, &binDir, "evbatch") }

func bin() string { return filepath.Join(binDir, "evbatch") }

// TestGolden feeds testdata/*.in.jsonl through evbatch (EOF flushes) and
// compares with *.want.jsonl, ignoring the first/last times; -update
// rewrites them.
func TestGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.in.jsonl")
	if len(ins) == 0 {
		t.Fatal("no golden files")
	}
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		r := clitest.RunApp(t, newApp(), base.ExitUsage, string(b), "--max-delay", "1h", "1h")
		if r.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", in, r.Code, r.Stderr)
		}
		clitest.Golden(t, strings.TrimSuffix(in, ".in.jsonl")+".want.jsonl", []byte(stripTimes(r.Stdout)))
	}
}

// TestBinary runs the built binary once: main's wiring (signals, exit).
func TestBinary(t *testing.T) {
	r := clitest.Run(t, `{"root":"/d/","watch":"/d/","name":"f","path":"/d/f","events":["CLOSE_WRITE","CLOSE"]}`+"\n", bin(), "1h")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"sync":["f"]`) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if r = clitest.Run(t, "", bin()); r.Code != base.ExitUsage {
		t.Fatalf("no WINDOW: exit %d", r.Code)
	}
}

func stripTimes(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if i := strings.Index(l, `,"first":`); i >= 0 {
			l = l[:i] + "}"
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

func TestCLIErrors(t *testing.T) {
	cases := []struct {
		args   []string
		in     string
		code   int
		stderr string
	}{
		{nil, "", 2, "need exactly one WINDOW"},
		{[]string{"soon"}, "", 2, `WINDOW "soon"`},
		{[]string{"--max-delay", "1s", "2s"}, "", 2, "shorter than WINDOW"},
		{[]string{"--strict", "1s"}, "{}\n", 3, "evbatch: error: line 1:"},
		{[]string{"1s"}, "{}\n", 0, "evbatch: error: line 1:"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := clitest.RunApp(t, newApp(), base.ExitUsage, c.in, c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("%q: exit %d stderr %q, want %d %q", c.args, r.Code, r.Stderr, c.code, c.stderr)
			}
		})
	}
}

func TestManPageCoversFlags(t *testing.T) {
	clitest.CheckManPage(t, newApp(), "../../man/evbatch.1")
}

// The maximum delay follows the window unless given.
func TestMaxDelayDefault(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"100ms"}, 400 * time.Millisecond},
		{[]string{"200ms"}, 400 * time.Millisecond},
		{[]string{"500ms"}, time.Second},
		{[]string{"2s"}, 4 * time.Second},
		{[]string{"--max-delay", "0", "2s"}, 0},
		{[]string{"--max-delay", "3s", "200ms"}, 3 * time.Second},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			app := newApp()
			var got *Config
			app.Action = func(c *cli.Context) error {
				var err error
				got, err = parseConfig(c)
				return err
			}
			if err := app.Run(append([]string{"evbatch"}, c.args...)); err != nil {
				t.Fatalf("%q: %v", c.args, err)
			}
			if got.Batch.MaxDelay != c.want {
				t.Errorf("%q: max delay %v, want %v", c.args, got.Batch.MaxDelay, c.want)
			}
		})
	}
}
