package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/inopipe/inopipe/internal/base"
	"github.com/inopipe/inopipe/internal/clitest"
)

// TestGolden converts the sample configs (written from sersync's
// documented 2.5 format) and compares env file and warnings with golden
// files: go test ./cmd/sersync2inopipe -update after a deliberate change.
func TestGolden(t *testing.T) {
	for _, name := range []string{"default", "production", "ssh"} {
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
func TestKeysKnownToInopipeRun(t *testing.T) {
	script, err := os.ReadFile("../../scripts/inopipe-run")
	if err != nil {
		t.Fatal(err)
	}
	known := regexp.MustCompile(`(?m)^known=" (.*) "$`).FindSubmatch(script)
	if known == nil {
		t.Fatal("no known= line in scripts/inopipe-run")
	}
	keys := map[string]bool{}
	for _, k := range strings.Fields(string(known[1])) {
		keys[k] = true
	}
	for _, name := range []string{"default", "production", "ssh"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name+".xml"))
		c, err := parse(b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := convert(c, name, "/var/spool/inopipe")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.settings {
			if !keys[s.key] {
				t.Errorf("%s: key %s unknown to inopipe-run", name, s.key)
			}
		}
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
	} {
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
