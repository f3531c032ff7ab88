// Package runconfig reads the env files of inopipe-run
// (/etc/inopipe/NAME.env): the one parser, used by inopipe-run and, in its
// tests, by sersync2inopipe, so that every file it writes is accepted.
package runconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/inopipe/inopipe/internal/rsync"
)

// Config is one pipeline, as /etc/inopipe/NAME.env describes it. The file
// is data, never a script:
//
//   - a line is blank, a comment (its first non-blank character is "#"), or
//     KEY=value with KEY one of the known keys, at most once;
//   - the value is the rest of the line, without surrounding blanks; one
//     pair of surrounding double or single quotes is removed, nothing else
//     is interpreted: no $VAR, no $(...), no backslash escapes, no globbing;
//   - a " #" inside an unquoted value is refused: it looks like an inline
//     comment, and taking it as part of the value (as the shell script did)
//     turned "TARGETS=a   # was /srv/b" into three targets. Put comments on
//     their own line, or quote a value that really holds " #";
//   - each value is checked for what its key takes (an absolute path, a
//     duration, a number, rsync targets, rsync options), with file:line.
type Config struct {
	File string // the env file, absolute

	Source   string         // SOURCE: the directory to replicate
	Targets  []rsync.Target // TARGETS, blank-separated
	Window   string         // WINDOW: evbatch's quiet period (default 500ms)
	MaxDelay string         // MAX_DELAY
	Spool    string         // SPOOL
	Jobs     int            // JOBS (0: rpush's default)
	Password string         // PASSWORD_FILE
	Rsync    string         // RSYNC_OPTS, as written (rpush splits it)
	Status   string         // STATUS_FILE
	Bin      string         // BIN: where the stages are (default: PATH)
	Stop     time.Duration  // STOP_TIMEOUT (default 60s)

	InowaitOpts, EvfilterOpts, EvbatchOpts, RpushOpts, FailreplayOpts []string // *_OPTS, blank-separated
}

// keys are the settings an env file may hold, with what each takes.
var keys = map[string]func(c *Config, v string) error{
	"SOURCE":          func(c *Config, v string) error { return absPath(&c.Source, v) },
	"TARGETS":         (*Config).setTargets,
	"WINDOW":          func(c *Config, v string) error { return duration(&c.Window, v) },
	"MAX_DELAY":       func(c *Config, v string) error { return duration(&c.MaxDelay, v) },
	"SPOOL":           func(c *Config, v string) error { return absPath(&c.Spool, v) },
	"JOBS":            func(c *Config, v string) error { return positive(&c.Jobs, v) },
	"PASSWORD_FILE":   func(c *Config, v string) error { return absPath(&c.Password, v) },
	"RSYNC_OPTS":      (*Config).setRsyncOpts,
	"STATUS_FILE":     func(c *Config, v string) error { return absPath(&c.Status, v) },
	"BIN":             func(c *Config, v string) error { return absPath(&c.Bin, v) },
	"STOP_TIMEOUT":    (*Config).setStop,
	"INOWAIT_OPTS":    func(c *Config, v string) error { c.InowaitOpts = strings.Fields(v); return nil },
	"EVFILTER_OPTS":   func(c *Config, v string) error { c.EvfilterOpts = strings.Fields(v); return nil },
	"EVBATCH_OPTS":    func(c *Config, v string) error { c.EvbatchOpts = strings.Fields(v); return nil },
	"RPUSH_OPTS":      func(c *Config, v string) error { c.RpushOpts = strings.Fields(v); return nil },
	"FAILREPLAY_OPTS": func(c *Config, v string) error { c.FailreplayOpts = strings.Fields(v); return nil },
}

// knownKeys lists keys for messages.
func knownKeys() string {
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

var keyLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// Parse reads an env file's content; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	c := &Config{File: file, Window: "500ms", Stop: 60 * time.Second}
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: not KEY=value: %q", file, n, line)
		}
		key, raw := m[1], strings.TrimSpace(m[2])
		set, ok := keys[key]
		if !ok {
			return nil, fmt.Errorf("%s:%d: unknown setting %s (known: %s)", file, n, key, knownKeys())
		}
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s is set again (first on line %d)", file, n, key, first)
		}
		seen[key] = n
		val, err := unquote(raw)
		if err == nil {
			err = set(c, val)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case c.Source == "":
		return nil, fmt.Errorf("%s: SOURCE is not set", file)
	case len(c.Targets) == 0:
		return nil, fmt.Errorf("%s: TARGETS is not set", file)
	}
	return c, nil
}

// unquote removes one pair of surrounding quotes; an unquoted value may not
// hold what looks like an inline comment. Quotes inside a value are kept
// as they are (RSYNC_OPTS=--exclude='a b' is split by rpush, like a shell
// would, without running one).
func unquote(v string) (string, error) {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		if v[len(v)-1] != v[0] {
			return "", fmt.Errorf("value %s opens a quote it does not close at the end of the line (nothing may follow the closing quote; comments go on their own line)", v)
		}
		inner := v[1 : len(v)-1]
		if strings.IndexByte(inner, v[0]) >= 0 {
			return "", fmt.Errorf("value %s holds its own quote character; there are no escapes", v)
		}
		return inner, nil
	}
	if i := strings.Index(v, " #"); i >= 0 || strings.Contains(v, "\t#") {
		return "", fmt.Errorf("%q looks like a value followed by an inline comment; put the comment on its own line (or quote the whole value if \" #\" is part of it)", v)
	}
	return v, nil
}

func absPath(dst *string, v string) error {
	if v == "" {
		return fmt.Errorf("empty")
	}
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%q is not an absolute path", v)
	}
	*dst = filepath.Clean(v)
	return nil
}

func duration(dst *string, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want a positive duration such as 500ms or 2s", v)
	}
	*dst = v
	return nil
}

func positive(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("%q: want a whole number, at least 1", v)
	}
	*dst = n
	return nil
}

// setStop takes seconds (60, as the shell script did) or a duration (90s).
func (c *Config) setStop(v string) error {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		c.Stop = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want seconds (60) or a duration (90s)", v)
	}
	c.Stop = d
	return nil
}

// hostPortModule is "host:873/module" or "host:873::module", a daemon
// address written the wrong way: rsync would read it as ssh to host, path
// "873/module", and fail 10 s later.
var hostPortModule = regexp.MustCompile(`^([^:/@]+@)?[^:/]+:[0-9]+(/|::)`)

func (c *Config) setTargets(v string) error {
	for _, w := range strings.Fields(v) {
		if strings.HasPrefix(w, "-") {
			return fmt.Errorf("%q is an option, not a target (options go in RPUSH_OPTS)", w)
		}
		if hostPortModule.MatchString(w) {
			return fmt.Errorf("%q looks like host:port/module; write rsync://%s for an rsync daemon", w, strings.Replace(w, "::", "/", 1))
		}
		t, err := rsync.ParseTarget(w)
		if err != nil {
			return err
		}
		if t.Kind == rsync.Local && !filepath.IsAbs(w) {
			return fmt.Errorf("local target %q is not an absolute path", w)
		}
		c.Targets = append(c.Targets, t)
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("empty")
	}
	return nil
}

func (c *Config) setRsyncOpts(v string) error {
	if _, err := rsync.SplitOpts(v); err != nil {
		return err
	}
	c.Rsync = v
	return nil
}
