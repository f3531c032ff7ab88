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
		// (?s): "." matches any byte of a name, newline included, as it
		// does in POSIX regular expressions (inotifywait) and in rsync's
		// wildcards.
		src := "(?s)" + p
		if icase {
			src = "(?si)" + p
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
//
// A path is excluded when it, or a directory above it, is hit: a pattern
// matches its path relative to the root ("a/b"; a directory is tried both
// as "a/b" and as "a/b/"), or, with Temp, its name is a temp file's. So an
// excluded directory excludes everything under it, as rsync's own exclude
// rules do; this is what lets a full sync apply the same rules (Rules).
// Includes, when given, select non-directories (tried as "a/b");
// directories always pass them, so that creating and removing directories
// is replicated whatever the includes say, as in a full sync.
func (s *Set) Decide(ev *event.Event) (bool, string) {
	if ev.IsControl() {
		return true, ReasonControl
	}
	if s.Events != 0 && !ev.Op.Has(s.Events) {
		return false, ReasonEvent
	}
	rel, ok := ev.Rel()
	subject := rel
	if s.Full {
		subject = ev.Path
	}
	if !ok && !s.Full && (len(s.Exclude) > 0 || len(s.Include) > 0) {
		return false, ReasonOutside
	}
	dir := ev.Op.Has(event.IsDir)
	if s.Temp && s.temp(rel, ok, ev.Path) {
		return false, ReasonTemp
	}
	if len(s.Exclude) > 0 && s.excluded(subject, dir) {
		return false, ReasonExclude
	}
	if len(s.Include) > 0 && !dir {
		subj := strings.TrimSuffix(subject, "/")
		for _, re := range s.Include {
			if re.MatchString(subj) {
				return true, ReasonPass
			}
		}
		return false, ReasonInclude
	}
	return true, ReasonPass
}

// temp reports whether the path, or a directory above it under the root,
// has a temp file's name (only the last name for a path outside its root).
func (s *Set) temp(rel string, ok bool, path string) bool {
	if !ok {
		return IsTemp(baseName(path))
	}
	rel = strings.TrimSuffix(rel, "/")
	for rel != "" {
		name := rel
		if i := strings.IndexByte(rel, '/'); i >= 0 {
			name, rel = rel[:i], rel[i+1:]
		} else {
			rel = ""
		}
		if IsTemp(name) {
			return true
		}
	}
	return false
}

// excluded tests each directory above the path (as "a" and "a/") and the
// path itself (a directory both ways too).
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
		if subject[i] == '/' && i > 0 {
			if s.match(subject[:i]) || s.match(subject[:i+1]) {
				return true
			}
		}
	}
	return !dir && s.match(subject)
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
// file: whether any rule of TempPatterns matches it (hand-coded here: it
// runs on every event, and nine regular expressions per event would cap
// evfilter's throughput). The sed and rsync rules also require the six
// random characters to hold a digit or a capital letter, as mkstemp's
// almost always do, so that real names such as "sedentary" or
// ".config.backup" are kept. TempGlobs are the same rules as rsync
// patterns.
func IsTemp(name string) bool {
	n := len(name)
	switch {
	case n == 0:
		return false
	case name[n-1] == '~', name == "4913":
		return true
	case name[0] == '#' && n > 2 && name[n-1] == '#':
		return true
	case n == 9 && strings.HasPrefix(name, "sed") && alnum(name[3:]) && mixed(name[3:]):
		return true
	case name[0] != '.':
		return false
	}
	// dot names: .#name, .~lock.name#, .goutputstream-XXXXXX
	if strings.HasPrefix(name, ".#") ||
		strings.HasPrefix(name, ".~lock.") && n > len(".~lock.")+1 && name[n-1] == '#' ||
		strings.HasPrefix(name, ".goutputstream-") && n == len(".goutputstream-")+6 && alnum(name[n-6:]) {
		return true
	}
	// .name.swp: at least one byte between the dots, "sw" and one of a-p or x
	if n >= 6 && name[n-4:n-1] == ".sw" {
		if c := name[n-1]; (c >= 'a' && c <= 'p') || c == 'x' {
			return true
		}
	}
	// .name.XXXXXX (rsync)
	return n >= 9 && name[n-7] == '.' && alnum(name[n-6:]) && mixed(name[n-6:])
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
