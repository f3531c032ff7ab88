// Package filter decides which events evfilter passes on: regex excludes
// and includes (Go RE2), event types, and the built-in temp-file rules.
package filter

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/inopipe/inopipe/internal/event"
)

// Reasons a decision is made, as counted by evfilter --stats.
const (
	ReasonControl = "control" // control records always pass
	ReasonPass    = "pass"
	ReasonEvent   = "event"   // event type not selected (-e)
	ReasonExclude = "exclude" // matched an exclude (or is under an excluded dir)
	ReasonInclude = "include" // includes given and none matched
	ReasonTemp    = "temp"    // a temp file (--temp)
	ReasonOutside = "outside" // path not under its root (cannot match relative patterns)
)

// Set is a compiled filter. The zero Set passes everything.
type Set struct {
	Exclude []*regexp.Regexp
	Include []*regexp.Regexp
	Full    bool     // match the absolute path instead of the path relative to root
	Events  event.Op // keep only events with one of these bits; 0 keeps all
	Temp    bool     // drop editor and tool temp files
}

// Compile adds patterns to the exclude or include list.
func Compile(dst *[]*regexp.Regexp, patterns []string, icase bool, where string) error {
	for _, p := range patterns {
		src := p
		if icase {
			src = "(?i)" + p
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		*dst = append(*dst, re)
	}
	return nil
}

// ReadPatterns reads one regex per line from a file; blank lines and lines
// starting with "#" are skipped. Errors name the file and line.
func ReadPatterns(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readPatterns(f)
}

func readPatterns(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if _, err := regexp.Compile(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// Decide says whether ev passes, and why.
func (s *Set) Decide(ev *event.Event) (bool, string) {
	if ev.IsControl() {
		return true, ReasonControl
	}
	if s.Events != 0 && !ev.Op.Has(s.Events) {
		return false, ReasonEvent
	}
	subject, ok := ev.Rel()
	if s.Full {
		subject, ok = ev.Path, true
	}
	if !ok && (len(s.Exclude) > 0 || len(s.Include) > 0) {
		return false, ReasonOutside
	}
	dir := ev.Op.Has(event.IsDir)
	if s.Temp && IsTemp(baseName(ev.Path)) {
		return false, ReasonTemp
	}
	if len(s.Exclude) > 0 && s.excluded(subject, dir) {
		return false, ReasonExclude
	}
	if len(s.Include) > 0 {
		subj := strings.TrimSuffix(subject, "/")
		if dir {
			subj += "/"
		}
		for _, re := range s.Include {
			if re.MatchString(subj) {
				return true, ReasonPass
			}
		}
		return false, ReasonInclude
	}
	return true, ReasonPass
}

// excluded tests the path and each directory above it (with a trailing
// "/"), so that an excluded directory excludes everything under it.
func (s *Set) excluded(subject string, dir bool) bool {
	subject = strings.TrimSuffix(subject, "/")
	if dir {
		subject += "/"
	}
	start := 0
	if s.Full {
		start = 1 // skip the leading "/" of an absolute path
	}
	for i := start; i < len(subject); i++ {
		if subject[i] == '/' {
			if s.match(subject[:i+1]) {
				return true
			}
		}
	}
	return !strings.HasSuffix(subject, "/") && s.match(subject)
}

func (s *Set) match(p string) bool {
	for _, re := range s.Exclude {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

func baseName(p string) string {
	p = strings.TrimSuffix(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// TempPatterns documents the --temp rules, tested against the base name.
// The same list is in evfilter(1).
var TempPatterns = []string{
	`^\..+\.sw[a-px]$`,                 // vim swap files: .name.swp .swo .swn … .swa, .swx
	`~$`,                               // backup files: name~ (vim, emacs, nano, gedit)
	`^4913$`,                           // vim's write-permission probe
	`^#.+#$`,                           // emacs auto-save: #name#
	`^\.#`,                             // emacs lock files: .#name
	`^\.~lock\..+#$`,                   // LibreOffice lock files
	`^\.goutputstream-[A-Za-z0-9]{6}$`, // GLib/gedit atomic save
	`^sed[A-Za-z0-9]{6}$`,              // sed -i temp file (see mixed below)
	`^\..+\.[A-Za-z0-9]{6}$`,           // rsync's temp file .name.XXXXXX (see mixed below)
}

// IsTemp reports whether a base name is an editor's or a tool's temporary
// file, by the rules of TempPatterns (hand-coded here: it runs on every
// event, and nine regular expressions per event would cap evfilter's
// throughput). The sed and rsync rules also require the six random
// characters to hold a digit or a capital letter, as mkstemp's almost
// always do, so that real names such as "sedentary" or ".config.backup"
// are kept.
func IsTemp(name string) bool {
	n := len(name)
	switch {
	case n == 0:
		return false
	case name[n-1] == '~', name == "4913":
		return true
	case name[0] == '#':
		return n > 2 && name[n-1] == '#'
	case strings.HasPrefix(name, "sed"):
		return n == 9 && alnum(name[3:]) && mixed(name[3:])
	case name[0] != '.':
		return false
	}
	// dot names
	switch {
	case strings.HasPrefix(name, ".#"):
		return true
	case strings.HasPrefix(name, ".~lock."):
		return n > len(".~lock.")+1 && name[n-1] == '#'
	case strings.HasPrefix(name, ".goutputstream-"):
		return n == len(".goutputstream-")+6 && alnum(name[n-6:])
	}
	// .name.swp: at least one char between the dots, "sw" and one of a-p or x
	if n >= 6 && name[n-4:n-1] == ".sw" {
		if c := name[n-1]; (c >= 'a' && c <= 'p') || c == 'x' {
			return true
		}
	}
	// .name.XXXXXX (rsync)
	if n >= 9 && name[n-7] == '.' && alnum(name[n-6:]) && mixed(name[n-6:]) {
		return true
	}
	return false
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func mixed(s string) bool {
	return strings.ContainsAny(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}
