// Package clitest builds the inopipe binaries for tests that run them as real
// processes (pipelines, exit codes, stderr wording), and bounds every wait.
package clitest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/inopipe/inopipe/internal/base"
)

// Timeout bounds every wait in process tests; INOWAIT_TEST_TIMEOUT (a Go
// duration) stretches it on slow machines.
func Timeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("INOWAIT_TEST_TIMEOUT")); err == nil {
		return d
	}
	return 30 * time.Second
}

// Build compiles the named commands (e.g. "inowait") into a new temporary
// directory and returns it. Call it from TestMain; remove the directory
// after m.Run.
func Build(names ...string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "inopipe-bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	args := []string{"build", "-tags", "urfave_cli_no_docs,netgo", "-o", dir + "/"} // as make build
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
}

// Result is a finished command.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs bin with args and stdin, bounded by Timeout.
func Run(t testing.TB, stdin string, bin string, args ...string) Result {
	t.Helper()
	return RunEnv(t, nil, stdin, bin, args...)
}

// RunEnv is Run with env added to the inherited environment.
func RunEnv(t testing.TB, env []string, stdin string, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q: timed out", bin, args)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// Eventually polls cond until it holds or Timeout passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout())
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckManPage fails when a flag of app (any of its names) is not
// documented in the roff man page at path (as "\-\-name" or "\-x"), or
// when the page lacks a section every inopipe page has, or groff warns.
func CheckManPage(t testing.TB, app *cli.App, path string) {
	t.Helper()
	var flags []string
	for _, f := range app.Flags {
		flags = append(flags, f.Names()...)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, f := range flags {
		roff := `\-\-` + strings.ReplaceAll(f, "-", `\-`)
		if len(f) == 1 {
			roff = `\-` + f
		}
		if !strings.Contains(page, roff) {
			t.Errorf("%s: flag %q is not documented (want %q)", path, f, roff)
		}
	}
	for _, sec := range []string{"SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"} {
		if !strings.Contains(page, ".SH "+sec) && !strings.Contains(page, `.SH "`+sec+`"`) {
			t.Errorf("%s: no %s section", path, sec)
		}
	}
	checkExitStatus(t, app, path, page)
	if out, err := exec.Command("groff", "-t", "-ww", "-z", "-man", path).CombinedOutput(); err != nil || len(out) > 0 {
		if _, lerr := exec.LookPath("groff"); lerr == nil {
			t.Errorf("%s: groff warnings: %v\n%s", path, err, out)
		}
	}
}

// checkExitStatus compares the codes of the app's EXIT STATUS (set by
// base.WithExitStatus, shown by --help) with the ".B N" entries of the man
// page's EXIT STATUS section: the same codes, in the same order.
func checkExitStatus(t testing.TB, app *cli.App, path, page string) {
	t.Helper()
	sts, ok := app.Metadata["exit"].([]base.Status)
	if !ok {
		t.Errorf("%s: the app declares no exit status (base.WithExitStatus)", path)
		return
	}
	var want []string
	for _, s := range sts {
		want = append(want, fmt.Sprint(s.Code))
	}
	_, sec, _ := strings.Cut(page, ".SH EXIT STATUS")
	sec, _, _ = strings.Cut(sec, "\n.SH ")
	var got []string
	for _, line := range strings.Split(sec, "\n") {
		if code, ok := strings.CutPrefix(line, ".B "); ok && len(code) > 0 && code[0] >= '0' && code[0] <= '9' {
			got = append(got, code)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: EXIT STATUS lists codes %v, --help has %v", path, got, want)
	}
}

// Buffer is a bytes.Buffer that a process may write while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Main builds the named commands, runs the tests, removes the binaries and
// exits; *dir receives the directory holding them. Call it from TestMain.
func Main(m *testing.M, dir *string, names ...string) {
	d, err := Build(names...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*dir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// BenchStage pushes n event lines through the binary bin (decode → process
// → encode, through pipes) b.N times and reports events/s.
func BenchStage(b *testing.B, n int, bin string, args ...string) {
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, `{"time":"2026-11-21T10:00:00.123456789Z","root":"/srv/data/","watch":"/srv/data/d%d/","name":"f%d.html","path":"/srv/data/d%d/f%d.html","events":["CLOSE_WRITE","CLOSE"]}`+"\n", i%500, i, i%500, i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = bytes.NewReader(in.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// FillUp writes into dir until its filesystem is full.
func FillUp(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; i < 1<<20; i++ {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
	t.Fatalf("%s never filled up", dir)
}

// RunApp runs a tool's cli.App in this process, as its main would (base.Run:
// the same exit codes and voice), with stdin and captured output, so that
// tests measure the tool's code (go test -cover) and need no binary.
// usageCode is the tool's exit code for usage errors.
func RunApp(t testing.TB, app *cli.App, usageCode int, stdin string, args ...string) Result {
	t.Helper()
	var out, errb Buffer
	app.Reader = strings.NewReader(stdin)
	app.Writer, app.ErrWriter = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), Timeout())
	defer cancel()
	code := base.Run(ctx, app, append([]string{app.Name}, args...), usageCode)
	if ctx.Err() != nil {
		t.Fatalf("%s %q: timed out", app.Name, args)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

var update = flag.Bool("update", false, "rewrite golden files with the output the tests got")

// Golden compares got with the file want, or rewrites it with -update
// (go test ./cmd/evbatch -update), test2json's convention.
func Golden(t testing.TB, want string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(want, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, got) {
		t.Errorf("%s differs (run with -update to accept):\ngot:\n%s\nwant:\n%s", want, got, b)
	}
}
