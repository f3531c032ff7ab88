package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/runconfig"
)

var lookPath = exec.LookPath

// stage is one child process of the pipeline.
type stage struct {
	name string
	cmd  *exec.Cmd

	mu     sync.Mutex // guards exited: no signal after the child was reaped
	exited bool
	code   int
}

// signal sends sig unless the child has been reaped (its PID may then
// belong to another process).
func (s *stage) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exited {
		s.cmd.Process.Signal(sig)
	}
}

// stageArgs builds each stage's command line from the config.
func stageArgs(cfg *runconfig.Config) [][]string {
	inowait := append(append([]string{"-mr", "--resync"}, cfg.InowaitOpts...), "--", cfg.Source)
	evbatch := append([]string{}, cfg.EvbatchOpts...)
	if cfg.MaxDelay != "" {
		evbatch = append(evbatch, "--max-delay", cfg.MaxDelay)
	}
	evbatch = append(evbatch, cfg.Window)
	rpush := append(append([]string{"--stop-on-refusal"}, cfg.RpushOpts...), rpushShared(cfg)...)
	if cfg.Jobs > 0 {
		rpush = append(rpush, "--jobs", strconv.Itoa(cfg.Jobs))
	}
	if cfg.Status != "" {
		rpush = append(rpush, "--status-file", cfg.Status, "--instance", strings.TrimSuffix(filepath.Base(cfg.File), ".env"))
	}
	rpush = append(rpush, "--")
	for _, t := range cfg.Targets {
		rpush = append(rpush, t.Spec)
	}
	return [][]string{inowait, append([]string{}, cfg.EvfilterOpts...), evbatch, rpush}
}

// rpushShared are the options rpush, its probe and failreplay all take
// from the config.
func rpushShared(cfg *runconfig.Config) []string {
	var a []string
	if cfg.Spool != "" {
		a = append(a, "--spool", cfg.Spool)
	}
	if cfg.Password != "" {
		a = append(a, "--password-file", cfg.Password)
	}
	if cfg.Rsync != "" {
		a = append(a, "--rsync-opts", cfg.Rsync)
	}
	return a
}

// supervise runs the four stages joined by pipes and owns their lifetime
// (see the package doc in app.go). Each stage is in its own process group,
// so that a Ctrl-C reaches inopipe-run alone and the stop is ordered
// (inowait first, the others drain); each gets SIGTERM from the kernel if
// inopipe-run itself is killed (Pdeathsig), so nothing is left behind.
func supervise(ctx context.Context, cfg *runconfig.Config, paths map[string]string, log *base.Log) error {
	// Pdeathsig fires when the thread that started the child ends, not
	// the process: keep this goroutine on its thread until the end.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	names := []string{"inowait", "evfilter", "evbatch", "rpush"}
	args := stageArgs(cfg)
	stages := make([]*stage, len(names))
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	var in io.Reader = devnull
	var pipeEnds []*os.File // the parent's copies, closed once the children hold theirs
	for i, name := range names {
		cmd := exec.Command(paths[name], args[i]...)
		cmd.Stdin, cmd.Stderr = in, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		if i < len(names)-1 {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			cmd.Stdout = w
			pipeEnds = append(pipeEnds, r, w)
			in = r
		} else {
			cmd.Stdout = os.Stdout // rpush's result lines: the journal, or a plugin
		}
		stages[i] = &stage{name: name, cmd: cmd}
	}
	exited := make(chan *stage, len(stages))
	started := 0
	for _, s := range stages {
		if err := s.cmd.Start(); err != nil {
			log.Errorf("start %s: %v", s.name, err)
			break
		}
		started++
		go func() {
			err := s.cmd.Wait()
			s.mu.Lock()
			s.exited, s.code = true, s.cmd.ProcessState.ExitCode()
			if s.code < 0 {
				s.code = 128 + int(s.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())
			}
			s.mu.Unlock()
			if err != nil && s.code == 0 {
				log.Errorf("wait %s: %v", s.name, err)
			}
			exited <- s
		}()
	}
	// The children hold their ends now; ours would keep a reader from
	// ever seeing EOF (and a writer from seeing its reader gone).
	for _, f := range pipeEnds {
		f.Close()
	}
	failed := started < len(stages)
	stopping := failed
	stopAll := func(sig syscall.Signal) {
		for _, s := range stages[:started] {
			s.signal(sig)
		}
	}
	var deadline <-chan time.Time
	startStop := func() {
		if deadline == nil {
			deadline = time.After(cfg.Stop)
		}
	}
	if failed {
		stopAll(syscall.SIGTERM)
		startStop()
	} else {
		var pids []string
		for _, s := range stages {
			pids = append(pids, fmt.Sprintf("%s=%d", s.name, s.cmd.Process.Pid))
		}
		log.Infof("running %s for %s", strings.Join(pids, " "), cfg.Source)
	}
	signalled := 0
	for running := started; running > 0; {
		select {
		case sig := <-sigs:
			signalled++
			if signalled == 1 && !stopping {
				stopping = true
				log.Infof("%v: stopping: inowait first, the other stages drain (%v at most)", sig, cfg.Stop)
				stages[0].signal(syscall.SIGTERM)
			} else {
				log.Infof("%v again: stopping every stage now", sig)
				stopAll(syscall.SIGTERM)
			}
			startStop()
		case s := <-exited:
			running--
			switch {
			case !stopping:
				// In a running pipeline no stage ever ends on its own.
				log.Errorf("%s exited with status %d; stopping the pipeline", s.name, s.code)
				failed, stopping = true, true
				stopAll(syscall.SIGTERM)
				startStop()
			case s.code != 0 && !(s.name == "rpush" && s.code == base.ExitPartial):
				// rpush 4: batches are in the spool, nothing lost
				log.Errorf("%s exited with status %d while stopping", s.name, s.code)
				failed = true
			}
		case <-deadline:
			log.Errorf("stages still running after %v; killing them", cfg.Stop)
			stopAll(syscall.SIGKILL)
			failed = true
			deadline = time.After(10 * time.Second) // the kernel reaps them at once; bounded anyway
		}
	}
	if failed {
		return base.Exit(base.ExitError)
	}
	log.Infof("stopped")
	return nil
}

// replay runs failreplay for the config: its spool, credentials, rsync
// options and its own (SOURCE, TARGETS), never the pairs an old spool
// remembers. It replaces this process (the timer's unit sees failreplay's
// exit status, and signals reach it).
func replay(_ context.Context, cfg *runconfig.Config, failreplay, rules string, full bool, _ io.Writer) error {
	args := []string{failreplay}
	args = append(args, cfg.FailreplayOpts...)
	args = append(args, sharedFromRpush(cfg.RpushOpts)...)
	args = append(args, rpushShared(cfg)...)
	args = append(args, "--rules="+rules)
	if full {
		args = append(args, "--full")
	}
	args = append(args, "--source", cfg.Source, "--")
	for _, t := range cfg.Targets {
		args = append(args, t.Spec)
	}
	err := syscall.Exec(failreplay, args, os.Environ())
	return base.Errorf(base.ExitError, "exec %s: %w", failreplay, err)
}

// printRules asks evfilter for the config's rules (EVFILTER_OPTS) as
// rsync patterns: the full sync and the replays of --full and --replay
// apply exactly what the live pipeline applies, from the config, on a
// fresh install too. "none" when EVFILTER_OPTS has no path rule.
func printRules(ctx context.Context, cfg *runconfig.Config, evfilter string) (string, error) {
	args := append([]string{"--print-rules"}, cfg.EvfilterOpts...)
	cmd := exec.CommandContext(ctx, evfilter, args...)
	cmd.Stderr = os.Stderr // its warnings name the rules full syncs cannot honour
	out, err := cmd.Output()
	if err != nil {
		return "", base.Errorf(base.ExitUsage, "EVFILTER_OPTS in %s: evfilter --print-rules: %w", cfg.File, err)
	}
	if r := strings.TrimSpace(string(out)); r != "" {
		return r, nil
	}
	return "none", nil
}

// sharedFromRpush picks from RPUSH_OPTS the options failreplay shares with
// rpush (--delete=false, --timeout, --port, -e, ...), so that a replay and
// a full sync run as the live batches do.
func sharedFromRpush(opts []string) []string {
	var out []string
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		name, _, hasVal := strings.Cut(strings.TrimLeft(o, "-"), "=")
		kind, ok := sharedFlags[name]
		if !ok || !strings.HasPrefix(o, "-") {
			continue
		}
		out = append(out, o)
		if kind == valued && !hasVal && i+1 < len(opts) {
			i++
			out = append(out, opts[i])
		}
	}
	return out
}

// check is --check: the config is read (by now), each target probed by
// rpush --check with the config's options. Nothing is started.
func check(ctx context.Context, cfg *runconfig.Config, log *base.Log) error {
	if err := probeAll(ctx, cfg, log); err != nil {
		return err
	}
	log.Infof("%s: config ok; %d target(s) checked", cfg.File, len(cfg.Targets))
	return nil
}

// probeAll runs rpush --check: a target that refuses the configuration
// (wrong password, unknown module, refused option) stops the start-up with
// rpush's message; one that is only down is a warning.
func probeAll(ctx context.Context, cfg *runconfig.Config, log *base.Log) error {
	rpush, err := lookTool(cfg, "rpush")
	if err != nil {
		return err
	}
	args := append(append([]string{"--check"}, cfg.RpushOpts...), rpushShared(cfg)...)
	args = append(args, "--")
	for _, t := range cfg.Targets {
		args = append(args, t.Spec)
	}
	cmd := exec.CommandContext(ctx, rpush, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return (&base.Error{Code: base.ExitError, Err: fmt.Errorf("a target refused the configuration of %s (see above); nothing started", cfg.File)}).
				WithHint("fix it and run inopipe-run --check %s", cfg.File)
		}
		return base.Errorf(base.ExitError, "probe: %w", err)
	}
	return nil
}
