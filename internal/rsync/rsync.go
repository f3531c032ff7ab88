// Package rsync turns batches into rsync runs: target parsing, the argv
// (a pure function, never a shell string), the NUL-separated path list on
// stdin, the classification of rsync's exit codes, and the Runner that
// executes the real binary. rpush and failreplay use it.
package rsync

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	shellwords "github.com/mattn/go-shellwords"

	"github.com/inopipe/inopipe/internal/event"
)

// Kind is how rsync reaches a target.
type Kind int

// Target kinds.
const (
	Local  Kind = iota + 1 // a directory on this machine
	Daemon                 // host::module[/path] or rsync://[user@]host[:port]/module[/path]
	SSH                    // [user@]host:/path, over a remote shell
)

// Target is one destination, as written by the operator.
type Target struct {
	Spec string // as given; used in results and spool entries
	Kind Kind
	Dest string // the rsync destination argument, ending in "/"
}

// ParseTarget classifies a target the way rsync reads its arguments.
func ParseTarget(s string) (Target, error) {
	t := Target{Spec: s}
	switch {
	case s == "":
		return t, fmt.Errorf("empty target")
	case strings.HasPrefix(s, "rsync://"):
		rest := strings.TrimPrefix(s, "rsync://")
		hostport, mod, _ := strings.Cut(rest, "/")
		if hostport == "" || mod == "" {
			return t, fmt.Errorf("target %q: want rsync://[user@]host[:port]/module[/path]", s)
		}
		t.Kind, t.Dest = Daemon, strings.TrimSuffix(s, "/")+"/"
	case strings.Contains(s, "::"):
		host, mod, _ := strings.Cut(s, "::")
		if host == "" || mod == "" {
			return t, fmt.Errorf("target %q: want [user@]host::module[/path]", s)
		}
		t.Kind, t.Dest = Daemon, strings.TrimSuffix(s, "/")+"/"
	case isRemoteShell(s):
		t.Kind, t.Dest = SSH, strings.TrimSuffix(s, "/")+"/"
	default:
		abs, err := filepath.Abs(s)
		if err != nil {
			return t, fmt.Errorf("target %q: %w", s, err)
		}
		t.Kind, t.Dest = Local, strings.TrimSuffix(abs, "/")+"/"
	}
	return t, nil
}

// isRemoteShell follows rsync's rule: a colon before any slash means host:path.
func isRemoteShell(s string) bool {
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	return colon > 0 && (slash < 0 || colon < slash)
}

// Options are the operator's choices that shape every run.
type Options struct {
	Timeout      int      // --timeout seconds (I/O)
	ConTimeout   int      // --contimeout seconds (daemon connect)
	Port         int      // --port (daemon)
	PasswordFile string   // --password-file (daemon)
	Rsh          string   // -e for ssh targets, as the operator wrote it
	Extra        []string // from --rsync-opts, already split
	Delete       bool     // carry out deletions (sersync's <delete start="true">)
	DryRun       bool
	// IgnoreTimes sends files even when size and mtime match the target's
	// (--ignore-times): for paths the kernel reported written.
	IgnoreTimes bool
	// ListFiles asks rsync to name every file it changes (--out-format
	// with FileMark; see Files).
	ListFiles bool
	// Rules are the pipeline's path rules (the batch's), for every run.
	Rules *event.Rules
}

// Mode is how the path list reaches rsync.
type Mode int

// Modes.
const (
	// ModeList: --files-from with --delete-missing-args (rsync ≥ 3.1 receivers).
	ModeList Mode = iota
	// ModeFilter: a filter list on stdin, for receivers that reject
	// --delete-missing-args deletions (rsync 3.4.3, Debian 12's 3.2.7
	// security update; upstream #910) or refuse delete* options.
	ModeFilter
	// ModeFull: the whole root, with --delete.
	ModeFull
	// ModeDirs: --files-from without recursion, for directories listed
	// only for an attribute change (chmod, chown, touch). With -r rsync
	// would walk their whole subtree: 1 s instead of 0.05 s for a
	// directory above 50,000 files (bench/RESULTS.md).
	ModeDirs
)

// Args builds rsync's argv (without the program name) to bring target t in
// line with the source directory src for one run. It never involves a
// shell: each element is one argument.
func Args(o Options, t Target, src string, mode Mode) []string {
	a := []string{"-a", "-r"}
	if mode == ModeDirs {
		a = []string{"-a", "--no-r", "--dirs"}
	}
	// The pipeline's rules first: rsync takes the first rule that
	// matches, and under --delete never deletes what they exclude.
	a = append(a, RuleArgs(o.Rules, mode != ModeFilter)...)
	switch mode {
	case ModeDirs:
		a = append(a, "--from0", "--files-from=-")
	case ModeList:
		if o.Delete {
			// --delete removes what is gone inside directories listed
			// recursively ("dir/"); --delete-missing-args removes listed
			// paths that no longer exist; --force removes non-empty dirs.
			a = append(a, "--delete", "--delete-missing-args", "--force")
		} else {
			a = append(a, "--ignore-missing-args")
		}
		a = append(a, "--from0", "--files-from=-")
	case ModeFilter:
		if o.Delete {
			a = append(a, "--delete", "--force")
		}
		a = append(a, "--from0", "--filter=merge -")
	case ModeFull:
		if o.Delete {
			a = append(a, "--delete", "--force")
		}
	}
	// Without it, a same-size rewrite within the same second is skipped by
	// rsync's quick check.
	a = append(a, "--modify-window=-1")
	a = connArgs(a, o, t)
	if o.DryRun {
		a = append(a, "--dry-run")
	}
	if o.IgnoreTimes {
		a = append(a, "--ignore-times")
	}
	if o.ListFiles && !o.DryRun {
		a = append(a, "--out-format="+FileMark+"%i %l %n%L")
	}
	a = append(a, "--stats")
	a = append(a, o.Extra...)
	return append(a, strings.TrimSuffix(src, "/")+"/", t.Dest)
}

// RuleArgs renders the pipeline's rules (see event.Rules) as --filter
// arguments: each is one argv element, so a pattern is never an option,
// and "- " or "+ " with a blank leaves no room for rsync's rule
// modifiers: the pattern is only ever a pattern. Without includes (or
// when withIncludes is false: ModeFilter, whose own list of paths must
// come after, ends in "- *") only the excludes.
func RuleArgs(r *event.Rules, withIncludes bool) []string {
	if r == nil {
		return nil
	}
	var a []string
	for _, p := range r.Exclude {
		a = append(a, "--filter=- "+p)
	}
	if withIncludes && r.Include != nil {
		a = append(a, "--filter=+ */")
		for _, p := range r.Include {
			a = append(a, "--filter=+ "+p)
		}
		a = append(a, "--filter=- *")
	}
	return a
}

// ProbeArgs is a cheap run that tells whether target t accepts rpush at
// all: --list-only of its top directory, with the same connection, auth
// and operator options as every run, so that a wrong password, an unknown
// module, a refused option or an unreachable host shows at start-up, with
// rsync's own exit code and words.
func ProbeArgs(o Options, t Target) []string {
	a := connArgs([]string{"--list-only", "--no-r", "--dirs"}, o, t)
	a = append(a, o.Extra...)
	return append(a, t.Dest)
}

// connArgs appends how rsync reaches t: the I/O timeout, and the daemon's
// connect timeout, port and password file, or ssh's remote shell. Every
// run and the probe share them, so a probe tests what the runs will do.
func connArgs(a []string, o Options, t Target) []string {
	if o.Timeout > 0 {
		a = append(a, "--timeout="+strconv.Itoa(o.Timeout))
	}
	switch t.Kind {
	case Daemon:
		if o.ConTimeout > 0 {
			a = append(a, "--contimeout="+strconv.Itoa(o.ConTimeout))
		}
		// Without TCP_NODELAY each daemon connection stalls ~130 ms on
		// Nagle plus delayed ACK.
		a = append(a, "--sockopts=TCP_NODELAY")
		if o.Port > 0 {
			a = append(a, "--port="+strconv.Itoa(o.Port))
		}
		if o.PasswordFile != "" {
			a = append(a, "--password-file="+o.PasswordFile)
		}
	case SSH:
		a = append(a, "-e", SSHCommand(o))
	}
	return a
}

// FileMark starts each line rsync prints for a changed file (ListFiles),
// so that those lines are told from --stats and from anything the
// operator's options print.
const FileMark = "inopipe-file: "

// FileChange is one file a run changed: rsync's itemized change (">f+++++++++"
// for a new file, "*deleting" for a deletion, see rsync(1) --itemize-changes)
// and the path relative to the source root (a symlink's " -> target" kept).
type FileChange struct {
	Change string
	Size   int64 // the file's length (0 for a deletion)
	Path   string
}

// Files reads the FileMark lines of rsync's standard output. rsync writes
// a byte that is not printable in a name as \#ooo (octal); it is decoded
// back, so a name with a newline or invalid UTF-8 comes out exact.
func Files(stdout []byte) []FileChange {
	var out []FileChange
	for _, line := range strings.Split(string(stdout), "\n") {
		if fc, ok := ParseFile(line); ok {
			out = append(out, fc)
		}
	}
	return out
}

// ParseFile reads one FileMark line ("%i %l %n%L"); ok is false for any
// other line.
func ParseFile(line string) (fc FileChange, ok bool) {
	rest, ok := strings.CutPrefix(line, FileMark)
	if !ok {
		return fc, false
	}
	change, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return fc, false
	}
	rest = strings.TrimLeft(rest, " ") // "*deleting" pads with blanks
	size, name, ok := strings.Cut(rest, " ")
	if !ok {
		return fc, false
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil {
		return fc, false
	}
	return FileChange{Change: change, Size: n, Path: unescapeName(name)}, true
}

// unescapeName undoes rsync's \#ooo escapes in a logged name.
func unescapeName(s string) string {
	if !strings.Contains(s, `\#`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+5 <= len(s) && s[i+1] == '#' {
			if n, err := strconv.ParseUint(s[i+2:i+5], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 4
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// SSHCommand is the remote shell for ssh targets: batch mode (never a
// password prompt), bounded connect time and dead-peer detection, then the
// operator's own -e.
func SSHCommand(o Options) string {
	ct := o.ConTimeout
	if ct <= 0 {
		ct = 10
	}
	base := o.Rsh
	if base == "" {
		base = "ssh"
	}
	return fmt.Sprintf("%s -o BatchMode=yes -o ConnectTimeout=%d -o ServerAliveInterval=15 -o ServerAliveCountMax=3", base, ct)
}

// SplitOpts splits an operator-supplied option string (--rsync-opts) into
// arguments with go-shellwords, and rejects shell syntax: Parse stops
// silently at an unquoted ; | & < > and would drop the rest.
func SplitOpts(s string) ([]string, error) {
	p := shellwords.NewParser()
	p.ParseEnv = false
	p.ParseBacktick = false
	args, err := p.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--rsync-opts %q: %w", s, err)
	}
	if p.Position != -1 {
		return nil, fmt.Errorf("--rsync-opts %q: shell syntax at byte %d is not allowed (no shell is run; quote it if it is part of an option)", s, p.Position+1)
	}
	if err := CheckOpts(args); err != nil {
		return nil, fmt.Errorf("--rsync-opts: %w", err)
	}
	return args, nil
}

// Why rpush refuses an rsync option in --rsync-opts.
const (
	whyList   = "rpush gives rsync its path list and filter rules itself"
	whyDelete = "rpush decides deletions itself (rpush --delete, --delete=false, --max-delete)"
	whySource = "would remove or change the source"
	whyMode   = "is not a client option"
	whyShell  = "runs a command; use rpush --rsh for ssh targets"
	whyDry    = "use rpush --dry-run"
)

// deniedLong are the long options --rsync-opts may not carry, each with
// the reason. rsync (popt) takes no abbreviations, so exact names cover
// every spelling ("--name" and "--name=value").
var deniedLong = map[string]string{
	"files-from": whyList, "from0": whyList, "filter": whyList, "read-batch": whyList,
	"write-batch": whyList, "only-write-batch": whyList, "delete-missing-args": whyList, "ignore-missing-args": whyList,
	"delete": whyDelete, "del": whyDelete, "delete-before": whyDelete, "delete-during": whyDelete,
	"delete-delay": whyDelete, "delete-after": whyDelete, "delete-excluded": whyDelete,
	"ignore-errors": whyDelete, "max-delete": whyDelete, "remote-option": whyDelete,
	"remove-source-files": whySource, "remove-sent-files": whySource,
	"daemon": whyMode, "server": whyMode, "sender": whyMode,
	"rsh": whyShell, "dry-run": whyDry,
	// --files-from implies --relative; without it a recursive "dir/" entry
	// is copied into the target's root, and --delete empties the rest.
	"no-relative": whyList, "no-R": whyList,
}

// deniedShort are the short options (alone or inside a cluster like -avf).
var deniedShort = map[byte]string{'f': whyList, 'F': whyList, '0': whyList, 'M': whyDelete, 'e': whyShell, 'n': whyDry}

// shortWithArg are rsync's short options that take an argument: in a
// cluster, what follows them is that argument, not more options.
const shortWithArg = "BTf@eM"

// fromStdin are long options whose value "-" reads standard input, which
// carries rpush's own path list.
var fromStdin = map[string]bool{"exclude-from": true, "include-from": true}

// HardLinks reports whether operator options ask rsync to keep hard links
// (-H, --hard-links, also inside a cluster like -aH), which only one run
// can do for the files it sends: such a tree is never split over jobs.
// --no-hard-links (--no-H) after it turns it off again. A word that only
// looks like -H (a value, a name) counts too: the safe side.
func HardLinks(args []string) bool {
	on := false
	eachOption(args, func(string) bool { return false },
		func(_, name, _ string) error {
			switch name {
			case "hard-links":
				on = true
			case "no-hard-links", "no-H":
				on = false
			}
			return nil
		},
		func(_ string, c byte) error {
			on = on || c == 'H'
			return nil
		})
	return on
}

// eachOption walks operator options as rsync (popt) reads them: long gets
// each "--name" or "--name=value" (the value is also the next word when
// valueNext(name) says so), short each letter of a cluster ("-avH"); a
// letter that takes an argument (shortWithArg) ends its cluster, and
// takes the next word when it is the last. The first error ends the walk.
func eachOption(args []string, valueNext func(name string) bool, long func(word, name, val string) error, short func(word string, c byte) error) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, hasVal := strings.Cut(a[2:], "=")
			if !hasVal && valueNext(name) && i+1 < len(args) {
				val = args[i+1]
				i++
			}
			if err := long(a, name, val); err != nil {
				return err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				if err := short(a, a[j]); err != nil {
					return err
				}
				if strings.IndexByte(shortWithArg, a[j]) >= 0 {
					if j == len(a)-1 {
						i++ // the argument is the next word
					}
					break
				}
			}
		}
	}
	return nil
}

// CheckOpts refuses operator options that would change what rpush relies
// on: the path list and filter rules it writes on stdin, the deletions it
// decides (and the safety gate checks), the source it must never change,
// and no command run by rsync. Every spelling counts: "--opt", "--opt=v",
// "--opt v", "-x", and "-x" inside a cluster of short options.
func CheckOpts(args []string) error {
	return eachOption(args, func(name string) bool { return fromStdin[name] },
		func(word, name, val string) error {
			if why, ok := deniedLong[name]; ok {
				return fmt.Errorf("%q is not allowed: %s", word, why)
			}
			if fromStdin[name] && val == "-" {
				return fmt.Errorf("%q with \"-\" is not allowed: %s (give a file)", "--"+name, whyList)
			}
			return nil
		},
		func(word string, c byte) error {
			if why, ok := deniedShort[c]; ok {
				return fmt.Errorf("%q is not allowed (-%c): %s", word, c, why)
			}
			return nil
		})
}

// List is a normalized path list for one run.
type List struct {
	Paths   []string // relative, cleaned, sorted; "dir/" for recursive
	Dirs    []string // existing directories listed for their attributes only (ModeDirs)
	Missing int      // paths no longer in the source (to be deleted)
	Errors  []error  // entries rejected (absolute, escaping root, ...)
}

// Recursive reports whether the list copies a directory recursively ("dir/",
// or the root itself as "."): with --delete such a run deletes what the
// source no longer has anywhere under it.
func (l List) Recursive() bool {
	for _, p := range l.Paths {
		if p == "." || strings.HasSuffix(p, "/") {
			return true
		}
	}
	return false
}

// RecursiveCount is the number of recursive entries in the list.
func (l List) RecursiveCount() int {
	n := 0
	for _, p := range l.Paths {
		if p == "." || strings.HasSuffix(p, "/") {
			n++
		}
	}
	return n
}

// Normalize checks and rewrites a batch's paths against the source root as
// it is now:
//   - each path is cleaned; absolute paths and paths leaving the root are
//     rejected (reported in Errors, the rest goes on);
//   - a path whose ancestor no longer exists (or is no longer a directory)
//     is replaced by its topmost missing ancestor, so a deleted tree is
//     deleted whole (otherwise rsync leaves empty dirs and exits 24);
//   - entries under a recursive entry ("dir/") or under a missing one are
//     dropped; the list is sorted;
//   - an existing directory listed without "/" (an attribute change: chmod,
//     touch) goes to Dirs, to be synced without recursion; the root itself
//     ("." — a chmod of the watched directory) among them, so that it never
//     becomes a recursive --delete of the whole root.
func Normalize(src string, b *event.Batch) List {
	var l List
	type ent struct {
		rel string
		rec bool
	}
	seen := map[string]bool{}
	var ents []ent
	add := func(p string, rec bool) {
		if strings.HasPrefix(p, "/") {
			l.Errors = append(l.Errors, fmt.Errorf("path %q is absolute", p))
			return
		}
		rec = rec || strings.HasSuffix(p, "/")
		c := path.Clean(p)
		if c == ".." || strings.HasPrefix(c, "../") {
			l.Errors = append(l.Errors, fmt.Errorf("path %q leaves the root", p))
			return
		}
		if strings.ContainsRune(c, 0) {
			l.Errors = append(l.Errors, fmt.Errorf("path %q contains a NUL byte", p))
			return
		}
		key := c
		if rec {
			key += "/"
		}
		if !seen[key] {
			seen[key] = true
			ents = append(ents, ent{c, rec})
		}
	}
	for _, p := range b.Sync {
		add(p, false)
	}
	for _, p := range b.Delete {
		add(p, false)
	}
	root := strings.TrimSuffix(src, "/")
	gone := map[string]bool{}  // memo of missing prefixes
	isDir := map[string]bool{} // entries that are directories now
	for i := range ents {
		e := &ents[i]
		if e.rel == "." {
			isDir["."] = true // the root: the gate has checked it is a directory
			continue
		}
		// topmost missing ancestor (or e itself)
		parts := strings.Split(e.rel, "/")
		for j := 1; j <= len(parts); j++ {
			pre := strings.Join(parts[:j], "/")
			missing, ok := gone[pre]
			if !ok {
				var st syscall.Stat_t
				err := syscall.Lstat(root+"/"+pre, &st)
				missing = err != nil || (j < len(parts) && st.Mode&syscall.S_IFMT != syscall.S_IFDIR)
				gone[pre] = missing
				if j == len(parts) && err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
					isDir[pre] = true
				}
			}
			if missing {
				if pre != e.rel {
					e.rel, e.rec = pre, false
				}
				break
			}
		}
	}
	// Drop duplicates and entries under a recursive or missing entry.
	sort.Slice(ents, func(i, j int) bool { return ents[i].rel < ents[j].rel })
	covering := map[string]bool{}
	covered := func(rel string) bool {
		for k := len(rel) - 1; k > 0; k-- {
			if rel[k] == '/' && covering[rel[:k]] {
				return true
			}
		}
		return false
	}
	var out, dirs []string
	for _, e := range ents {
		if covered(e.rel) {
			continue
		}
		if !e.rec && isDir[e.rel] {
			dirs = append(dirs, e.rel) // attributes only, unless also listed recursively
			continue
		}
		s := e.rel
		if e.rec || gone[e.rel] {
			covering[e.rel] = true
		}
		if !gone[e.rel] && e.rec && e.rel != "." {
			s += "/"
		}
		if len(out) > 0 && (out[len(out)-1] == s || out[len(out)-1] == s+"/") {
			continue
		}
		if gone[e.rel] {
			l.Missing++
		}
		out = append(out, s)
	}
	l.Paths = out
	for _, d := range dirs {
		if !covering[d] && !covered(d) {
			l.Dirs = append(l.Dirs, d)
		}
	}
	return l
}

// Stdin renders a list for --files-from=- --from0: NUL-separated, every
// entry prefixed with "./" (rsync treats entries starting with "#" or ";"
// as comments, even with --from0).
func Stdin(paths []string) []byte {
	var b []byte
	for _, p := range paths {
		if p == "." {
			b = append(b, "./"...)
		} else {
			b = append(b, "./"...)
			b = append(b, p...)
		}
		b = append(b, 0)
	}
	return b
}

// FilterRules renders a list as rsync filter rules for ModeFilter: every
// ancestor directory included, each entry included (with its subtree for
// a directory), everything else excluded, so --delete only touches listed
// paths. Wildcard characters are escaped because a rule with a wildcard is
// a pattern. Rules end in NUL, as --from0 makes rsync read them: a name may
// hold a newline, never a NUL.
func FilterRules(paths []string) []byte {
	var b []byte
	anc := map[string]bool{}
	for _, p := range paths {
		p = strings.TrimSuffix(p, "/")
		if p == "." || p == "" {
			return []byte("+ *\x00")
		}
		parts := strings.Split(p, "/")
		for j := 1; j < len(parts); j++ {
			a := strings.Join(parts[:j], "/")
			if !anc[a] {
				anc[a] = true
				b = append(b, "+ /"+literalRule(a)+"/\x00"...)
			}
		}
		b = append(b, "+ /"+literalRule(p)+"\x00"...)
		b = append(b, "+ /"+wildRule(p)+"/***\x00"...)
	}
	return append(b, "- *\x00"...)
}

// literalRule is s as the whole pattern of a rule that matches exactly
// s. rsync compares a pattern without * ? [ as it is (a backslash is just
// a backslash); one with them is a wildcard pattern, where \ escapes.
func literalRule(s string) string {
	if !strings.ContainsAny(s, "*?[") {
		return s
	}
	return wildRule(s)
}

// wildRule is s escaped for a rule that holds wildcards of its own
// ("s/***").
func wildRule(s string) string {
	if !strings.ContainsAny(s, `*?[\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ { // bytes: a name need not be UTF-8
		if strings.IndexByte(`*?[\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Env is the environment for rsync: inherited RSYNC_* variables are
// dropped (they would change what rsync does behind the operator's back),
// except a password rpush was given on purpose.
func Env(environ []string, password string) []string {
	var out []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "RSYNC_") {
			continue
		}
		out = append(out, kv)
	}
	if password != "" {
		out = append(out, "RSYNC_PASSWORD="+password)
	}
	return out
}

// CheckPasswordFile refuses a password file that others can read or that
// belongs to someone else, with rsync's own wording.
func CheckPasswordFile(name string) error {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("password file %s: %w", name, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("password file %s must not be other-accessible (mode %04o; chmod 600 it)", name, st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("password file %s must be owned by the user running rpush (uid %d), not uid %d", name, os.Geteuid(), sys.Uid)
	}
	return nil
}

// RenameRoot is the directory (relative to the source root; "" for the
// root) that RenameArgs' run is rooted at: the renamed directory itself,
// or the directory holding the renamed file.
func RenameRoot(r event.Rename) string {
	if r.Dir {
		return r.To
	}
	if d := path.Dir(r.To); d != "." {
		return d
	}
	return ""
}

// RenameArgs is the run that brings a renamed path to a daemon or ssh
// target from the data the target has under its old name: the run is
// rooted where the new path is (RenameRoot), and rsync takes its basis
// files from the old place, given relative to the destination directory:
// --link-dest there (a hard link for each file whose name and attributes
// match, so a renamed directory costs no data and no copy), and --fuzzy
// twice (a file renamed to another name is found by size and mtime, in
// the destination directory and in the --link-dest one). --mkpath makes
// the new parents. Nothing is deleted. The names are rsync arguments,
// never a shell's: over ssh --secluded-args sends them inside the
// protocol.
func RenameArgs(o Options, t Target, src string, r event.Rename) (args []string, stdin []byte) {
	root := RenameRoot(r)
	a := []string{"-a"}
	if r.Dir {
		a = append(a, "-r")
	}
	a = append(a, RuleArgs(o.Rules, true)...)
	from := r.From
	if !r.Dir {
		from = path.Dir(r.From)
		if from == "." {
			from = ""
		}
		a = append(a, "--from0", "--files-from=-", "--fuzzy", "--fuzzy")
		stdin = append([]byte(path.Base(r.To)), 0)
	}
	if from != root {
		rel := strings.Repeat("../", depth(root)) + from
		if rel == "" {
			rel = "."
		}
		a = append(a, "--link-dest="+strings.TrimSuffix(rel, "/"))
	}
	a = append(a, "--mkpath", "--modify-window=-1")
	a = connArgs(a, o, t)
	if t.Kind == SSH {
		a = append(a, "--secluded-args")
	}
	a = append(a, "--stats")
	a = append(a, o.Extra...)
	s, d := strings.TrimSuffix(src, "/")+"/", t.Dest
	if root != "" {
		s, d = s+root+"/", d+root+"/"
	}
	return append(a, s, d), stdin
}

// depth is the number of names in a relative path ("" has none).
func depth(rel string) int {
	if rel == "" {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// SubtreeRules are the pipeline's rules for a run rooted at root (see
// RenameArgs): a pattern on the last name stays as it is; an anchored one
// whose literal start lies inside root is re-anchored there, one that
// cannot reach below root is left out. ok is false when a pattern could
// match below root in a way that cannot be re-anchored exactly (such as
// "/**x"): the caller then does without the run.
func SubtreeRules(r *event.Rules, root string) (*event.Rules, bool) {
	if r == nil || root == "" {
		return r, true
	}
	prefix := root + "/"
	one := func(list []string) ([]string, bool) {
		var out []string
		for _, p := range list {
			if !strings.HasPrefix(p, "/") {
				out = append(out, p)
				continue
			}
			x := p[1:]
			lit := x
			if i := strings.IndexAny(x, `*?[\`); i >= 0 {
				lit = x[:i]
			}
			switch {
			case strings.HasPrefix(lit, prefix) && len(x) > len(prefix):
				out = append(out, "/"+x[len(prefix):])
			case strings.HasPrefix(prefix, lit):
				return nil, false // "/**x", "/b*": may match below root
			}
			// otherwise it names something outside root
		}
		return out, true
	}
	ex, ok1 := one(r.Exclude)
	in, ok2 := one(r.Include)
	if !ok1 || !ok2 {
		return nil, false
	}
	out := &event.Rules{Exclude: ex}
	if r.Include != nil {
		out.Include = append([]string{}, in...)
	}
	return out, true
}
