package runconfig

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    string
		err   string // "" : parses
		check func(*Config) bool
	}{
		{"minimal", "SOURCE=/data\nTARGETS=h::m\n", "", func(c *Config) bool {
			return c.Source == "/data" && len(c.Targets) == 1 && c.Window == "500ms" && c.Stop == 60*time.Second
		}},
		{"comments, blanks, quotes, CRLF", "# top\n\n  # indented\r\nSOURCE=\"/data/web site\"\r\nTARGETS='h::m /srv/copy'\nRSYNC_OPTS=--exclude='a b' -z\n", "", func(c *Config) bool {
			return c.Source == "/data/web site" && len(c.Targets) == 2 && c.Rsync == "--exclude='a b' -z"
		}},
		{"quoted #", "SOURCE=/data\nTARGETS=h::m\nEVFILTER_OPTS=\"-x a #b\"\n", "", func(c *Config) bool {
			return reflect.DeepEqual(c.EvfilterOpts, []string{"-x", "a", "#b"})
		}},
		{"stop in seconds or a duration", "SOURCE=/d\nTARGETS=/t\nSTOP_TIMEOUT=90s\n", "", func(c *Config) bool { return c.Stop == 90*time.Second }},
		// the cases
		{"inline comment", "SOURCE=/d\nTARGETS=rsync://web@host/www/   # previously /srv/precious\n", "x.env:2: TARGETS: ", nil},
		{"arithmetic injection", "SOURCE=/d\nTARGETS=/t\nSTOP_TIMEOUT=running[$(id>/tmp/x)0]\n", "x.env:3: STOP_TIMEOUT: ", nil},
		{"relative source", "SOURCE=data\nTARGETS=/t\n", "x.env:1: SOURCE: \"data\" is not an absolute path", nil},
		{"relative target", "SOURCE=/d\nTARGETS=copy\n", "x.env:2: TARGETS: local target \"copy\" is not an absolute path", nil},
		{"host:port/module", "SOURCE=/d\nTARGETS=backup:873/data\n", "write rsync://backup:873/data", nil},
		{"option as target", "SOURCE=/d\nTARGETS=--rsync=/tmp/evil h::m\n", "is an option, not a target", nil},
		{"unknown key", "SOURCE=/d\nTARGET=/t\n", "x.env:2: unknown setting TARGET", nil},
		{"duplicate key", "SOURCE=/d\nTARGETS=/t\nSOURCE=/e\n", "x.env:3: SOURCE is set again (first on line 1)", nil},
		{"not KEY=value", "SOURCE=/d\nexport TARGETS=/t\n", "x.env:2: not KEY=value", nil},
		{"denied rsync option", "SOURCE=/d\nTARGETS=/t\nRSYNC_OPTS=--delete-excluded\n", "x.env:3: RSYNC_OPTS: --rsync-opts: \"--delete-excluded\" is not allowed", nil},
		{"shell syntax in rsync options", "SOURCE=/d\nTARGETS=/t\nRSYNC_OPTS=-z; rm -rf /\n", "shell syntax", nil},
		{"unclosed quote", "SOURCE=\"/d\nTARGETS=/t\n", "x.env:1: SOURCE: value \"/d opens a quote", nil},
		{"text after the quote", "SOURCE=\"/d\" # comment\nTARGETS=/t\n", "x.env:1: SOURCE:", nil},
		{"bad window", "SOURCE=/d\nTARGETS=/t\nWINDOW=soon\n", "x.env:3: WINDOW: \"soon\": want a positive duration", nil},
		{"bad jobs", "SOURCE=/d\nTARGETS=/t\nJOBS=0\n", "x.env:3: JOBS:", nil},
		{"no source", "TARGETS=/t\n", "x.env: SOURCE is not set", nil},
		{"no targets", "SOURCE=/d\n", "x.env: TARGETS is not set", nil},
		{"empty targets", "SOURCE=/d\nTARGETS=\n", "x.env:2: TARGETS: empty", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("x.env", []byte(c.in))
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("error: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one containing %q", err, c.err)
			case c.check != nil && !c.check(cfg):
				t.Fatalf("parsed %+v", cfg)
			}
		})
	}
}

// FuzzParse: any env file either is refused with its name and line,
// or yields absolute paths and parsed targets; nothing is expanded.
func FuzzParse(f *testing.F) {
	f.Add("SOURCE=/d\nTARGETS=h::m /t\nSTOP_TIMEOUT=5\n")
	f.Add("SOURCE='/d'\nTARGETS=\"h::m\"\nRSYNC_OPTS=-z --exclude='a b'\n# c\n")
	f.Add("SOURCE=/d\nTARGETS=$(id) # x\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := Parse("f.env", []byte(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.env") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if !strings.HasPrefix(cfg.Source, "/") || len(cfg.Targets) == 0 {
			t.Fatalf("accepted %+v", cfg)
		}
		for _, tg := range cfg.Targets {
			if strings.HasPrefix(tg.Spec, "-") {
				t.Fatalf("option accepted as a target: %q", tg.Spec)
			}
		}
	})
}
