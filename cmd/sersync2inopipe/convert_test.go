package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/base/clitest"
	"github.com/inopipe/inopipe/internal/event"
	"github.com/inopipe/inopipe/internal/filter"
	"github.com/inopipe/inopipe/internal/runconfig"
)

// TestGolden converts the sample configs (written from sersync's
// documented 2.5 format) and compares env file and warnings with golden
// files: go test ./cmd/sersync2inopipe -update after a deliberate change.
func TestGolden(t *testing.T) {
	for _, name := range []string{"default", "stock", "production", "ssh"} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(filepath.Join("testdata", name+".xml"), name, "/var/spool/inopipe/"+name, &out, &errb)
			if err != nil {
				t.Fatal(err)
			}
			got := out.String() + "--- stderr\n" + errb.String()
			clitest.Golden(t, filepath.Join("testdata", name+".want"), []byte(got))
		})
	}
}

// Every key the converter writes is one inopipe-run knows.
// Every env file the converter writes is one inopipe-run reads: the same
// parser (runconfig), not a list of keys kept by hand.
func TestOutputAcceptedByInopipeRun(t *testing.T) {
	for _, name := range []string{"default", "production", "ssh"} {
		var out, errb bytes.Buffer
		if err := run(filepath.Join("testdata", name+".xml"), name, "/var/spool/inopipe/"+name, &out, &errb); err != nil {
			t.Fatal(err)
		}
		if _, err := runconfig.Parse(name+".env", out.Bytes()); err != nil {
			t.Errorf("%s: inopipe-run refuses the converted file: %v\n%s", name, err, &out)
		}
	}
}

// TestStockFilter: sersync's stock <filter> patterns, converted, exclude
// exactly what sersync excluded (a whole-path match, boost::regex_match),
// and their directories with everything under them (sersync never
// watched them): information.html, staticfile.txt and notes.gzip are
// replicated; the rules reach full syncs whole (no rule left out).
func TestStockFilter(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(filepath.Join("testdata", "stock.xml"), "stock", "/var/spool/inopipe/stock", &out, &errb); err != nil {
		t.Fatal(err)
	}
	cfg, err := runconfig.Parse("stock.env", out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s := &filter.Set{}
	for i := 0; i+1 < len(cfg.EvfilterOpts); i++ {
		if cfg.EvfilterOpts[i] == "-x" {
			if err := filter.Compile(&s.Exclude, cfg.EvfilterOpts[i+1:i+2], false, "-x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(s.Exclude) != 4 {
		t.Fatalf("EVFILTER_OPTS %q: want the 4 stock excludes", cfg.EvfilterOpts)
	}
	cases := []struct {
		path string
		dir  bool
		keep bool
	}{
		{"information.html", false, true}, {"staticfile.txt", false, true}, {"notes.gzip", false, true},
		{"www/info/x", false, true}, {"info", true, false}, {"info/x.html", false, false}, {"static/css/a.css", false, false},
		{"info", false, false}, {"a.gz", false, false}, {"deep/b.gz", false, false}, {"src/.svn", true, false},
		{"src/.svn/entries", false, false}, {"svn", false, true},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			op := event.Create
			if c.dir {
				op |= event.IsDir
			}
			keep, _ := s.Decide(&event.Event{Root: "/opt/tongbu/", Path: "/opt/tongbu/" + c.path, Op: op})
			if keep != c.keep {
				t.Errorf("%s (dir %v): kept %v, sersync: %v", c.path, c.dir, keep, c.keep)
			}
		})
	}
	if _, errs := s.Rules(); len(errs) > 0 {
		t.Errorf("stock patterns not all honoured by full syncs: %v", errs)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, xml, want string }{
		{"broken", "<head version=\"2.5\"><sersync>", "XML syntax error"},
		{"version", `<head version="3.0"></head>`, `format version "3.0"`},
		{"nowatch", `<head version="2.5"><sersync></sersync></head>`, "no <sersync><localpath watch"},
		{"noremote", `<head version="2.5"><sersync><localpath watch="/d"></localpath></sersync></head>`, "no usable <remote"},
		{"gbk", `<?xml version="1.0" encoding="GBK"?><head version="2.5"></head>`, "iconv"},
		// issue 12: non-XML said only "EOF"
		{"empty", ``, "not a sersync configuration: no XML element"},
		{"text", `just some text`, "not a sersync configuration: no XML element"},
		{"other XML", `<config/>`, "not a sersync configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name+".xml")
			os.WriteFile(f, []byte(tc.xml), 0o644)
			var out, errb bytes.Buffer
			err := run(f, "x", "/s", &out, &errb)
			var be *base.Error
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f) {
				t.Errorf("%s: err = %v, want %q naming the file", tc.name, err, tc.want)
			} else if !errors.As(err, &be) || be.Code != base.ExitError {
				t.Errorf("%s: not exit %d: %v", tc.name, base.ExitError, err)
			}
			if out.Len() != 0 {
				t.Errorf("%s: printed a config for a bad file", tc.name)
			}
		})
	}
}

func TestCron(t *testing.T) {
	for _, tc := range []struct {
		n     int
		want  string
		exact bool
	}{{5, "*/5 * * * *", true}, {60, "0 * * * *", true}, {120, "0 */2 * * *", true}, {1440, "30 3 * * *", true}, {45, "*/45 * * * *", false}, {600, "0 */10 * * *", false}} {
		if got, exact := cron(tc.n); got != tc.want || exact != tc.exact {
			t.Errorf("cron(%d) = %q %v, want %q %v", tc.n, got, exact, tc.want, tc.exact)
		}
	}
}

func TestManPageCoversFlags(t *testing.T) {
	clitest.CheckManPage(t, newApp(), "../../man/sersync2inopipe.1")
}

// Issue 12: nothing from the XML adds a key or an option to the env file.
func TestXMLCannotInject(t *testing.T) {
	doc := func(filter, remote string) []byte {
		return []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><head version="2.5"><filter start="true">` + filter +
			`</filter><sersync><localpath watch="/opt/tongbu">` + remote + `</localpath></sersync></head>`)
	}
	for _, c := range []struct {
		name string
		xml  []byte
		err  string
	}{
		{"newline in an exclude plants BIN=", doc(`<exclude expression="(.*)\.svn&#10;BIN=/tmp/evil"/>`, `<remote ip="127.0.0.1" name="m"/>`), ""},
		{"blank in remote ip plants an option", doc("", `<remote ip="127.0.0.1 --rsync=/tmp/evil" name="m"/>`), "a blank"},
		{"option as remote ip", doc("", `<remote ip="--rsync=/tmp/evil" name="m"/>`), "not a host"},
		{"newline in the watch path", []byte(`<head version="2.5"><sersync><localpath watch="/d&#10;BIN=/tmp"><remote ip="h" name="m"/></localpath></sersync></head>`), "control character"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(c.xml)
			if err != nil {
				t.Fatal(err)
			}
			r, err := convert(cfg, "www", "/var/spool/inopipe/www")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			render(&b, r, "www", "x.xml")
			if strings.Contains(b.String(), "\nBIN=") || strings.Contains(b.String(), "--rsync=") {
				t.Fatalf("injected:\n%s", &b)
			}
		})
	}
}

// Issue 12: version 2.5.x is sersync's 2.5 format; start is compared as
// sersync compares it (exactly "true").
func TestVersionAndStart(t *testing.T) {
	c, err := parse([]byte(`<head version="2.5.4"><filter start="TRUE"><exclude expression="x"/></filter><sersync><localpath watch="/d"><remote ip="h" name="m"/></localpath></sersync></head>`))
	if err != nil {
		t.Fatalf("2.5.4: %v", err)
	}
	r, err := convert(c, "x", "/s")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range r.settings {
		if st.key == "EVFILTER_OPTS" && strings.Contains(st.value, "-x") {
			t.Fatalf(`start="TRUE" taken as on: %s`, st.value)
		}
	}
}

// Issue 12: an ISO-8859-1 header over UTF-8 paths (what sersync users
// have) keeps the paths as they are, with a warning; real Latin-1 bytes
// are decoded as the header says.
func TestCharset(t *testing.T) {
	const head = `<?xml version="1.0" encoding="ISO-8859-1"?><head version="2.5"><sersync><localpath watch="`
	const tail = `"><remote ip="h" name="m"/></localpath></sersync></head>`
	for _, c := range []struct {
		name, watch, want, warn string
	}{
		{"utf-8 under a latin-1 header", "/data/网站", "/data/网站", "holds UTF-8 text beyond ASCII"},
		{"latin-1", "/data/caf\xe9", "/data/café", "not UTF-8: read as ISO-8859-1"},
		{"ascii", "/data/www", "/data/www", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse([]byte(head + c.watch + tail))
			if err != nil {
				t.Fatal(err)
			}
			r, err := convert(cfg, "x", "/s")
			if err != nil {
				t.Fatal(err)
			}
			if r.settings[0].key != "SOURCE" || r.settings[0].value != c.want {
				t.Fatalf("SOURCE %q, want %q", r.settings[0].value, c.want)
			}
			warned := strings.Contains(strings.Join(r.warnings, "\n"), c.warn)
			if (c.warn == "") != (len(r.warnings) == 0) || !warned {
				t.Fatalf("warnings %q, want %q", r.warnings, c.warn)
			}
		})
	}
}
