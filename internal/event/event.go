// Package event is the wire format shared by every inopipe stage: the event
// records inowait writes and evfilter/evbatch read, the batch records evbatch
// writes and rpush reads, and the result records rpush writes.
//
// Each record is one JSON object on one line (JSON Lines, UTF-8, "\n"
// terminated). An event looks like this Go struct:
//
//	type Event struct {
//		Time      time.Time // "time": RFC 3339, nanoseconds, UTC, when read
//		Root      string    // "root": the watched argument (absolute, dirs end in "/")
//		Watch     string    // "watch": %w, the watched directory, ends in "/"
//		Name      string    // "name": %f, entry inside Watch ("" for the watch itself)
//		Path      string    // "path": %w%f
//		Op        Op        // "events": ["CLOSE_WRITE","CLOSE"], inotifywait's names and order
//		Cookie    uint32    // "cookie": MOVED_FROM/MOVED_TO only
//		Synthetic bool      // "synthetic": true when inowait made it up (scan of a new dir)
//	}
//
// The event names are those of inotifywait's %e: ACCESS MODIFY ATTRIB
// CLOSE_WRITE CLOSE_NOWRITE OPEN MOVED_FROM MOVED_TO CREATE DELETE
// DELETE_SELF UNMOUNT Q_OVERFLOW IGNORED CLOSE MOVE_SELF ISDIR, plus
// RESYNC. Q_OVERFLOW and RESYNC are control records: the replica under
// "root" (all roots when empty) must be resynced whole.
//
// A batch (evbatch → rpush) carries "seq", "root", "sync", "delete",
// "written" (when not empty), "full", "events", "first" and "last".
// "written" lists the entries of "sync" whose data the kernel reported
// written (CREATE, MODIFY, CLOSE_WRITE or MOVED_TO of a file): rpush
// transfers those even when size and mtime equal the target's (rsync's
// quick check would skip a same-size rewrite with the same mtime, as
// reproducible builds, tar x and cp -p make); the other entries of "sync"
// (attribute changes, recursive "dir/" roll-ups) keep the quick check;
// "rules" (when the pipeline has an evfilter) are the path rules in force
// when the batch was made (see Rules); "renames" (when not empty) are
// renames inside the root, [{"from":"a","to":"b","dir":true}], applied
// by rpush before the syncs (see Rename). A rules record (evfilter → evbatch,
// evfilter's first line) is {"rules":{"exclude":[...],"include":[...]}}.
// A result (rpush → plugins) carries "seq",
// "root", "target", "ok", "exit", "paths", "bytes", "seconds", "attempts",
// "error" and "spooled". Fields a decoder does not know are ignored.
//
// # File names that are not UTF-8
//
// Linux file names are bytes, JSON strings are Unicode. encoding/json turns
// each invalid byte into U+FFFD, and rsync would then look for a file that
// does not exist. This package instead writes each byte of a string that is
// not part of valid UTF-8 as the JSON escape \udcXX, XX being the byte (0x80
// to 0xff): Python's "surrogateescape". A valid UTF-8 string can never
// contain a lone surrogate, so the mapping is unambiguous and the decoder
// turns \udc80..\udcff back into the original byte. Tools that do not know
// the rule (jq) show U+FFFD for those bytes; everything inside inopipe sees
// the exact bytes. Raw invalid bytes in the input are accepted as they are.
//
// Lines may be of any length: a batch of 100,000 paths is one line.
package event

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event is one filesystem event, or a control record (Q_OVERFLOW, RESYNC).
type Event struct {
	Time      time.Time
	Root      string
	Watch     string
	Name      string
	Path      string
	Op        Op
	Cookie    uint32
	Synthetic bool
}

// Rel returns the event's path relative to its root ("" for the root
// itself). A path outside the root is returned unchanged with ok false.
func (e *Event) Rel() (rel string, ok bool) {
	if e.Root == "" {
		return e.Path, false
	}
	if e.Path == e.Root || e.Path+"/" == e.Root {
		return "", true
	}
	if strings.HasPrefix(e.Path, e.Root) && strings.HasSuffix(e.Root, "/") {
		return e.Path[len(e.Root):], true
	}
	return e.Path, false
}

// IsControl reports whether the record is a control record that filters must
// never drop: Q_OVERFLOW, RESYNC, UNMOUNT, or DELETE_SELF/MOVE_SELF of a root.
func (e *Event) IsControl() bool {
	if e.Op.Has(Control) {
		return true
	}
	if e.Op.Has(DeleteSelf|MoveSelf) && e.Root != "" && (e.Path == e.Root || e.Path+"/" == e.Root) {
		return true
	}
	return false
}

// Batch is a set of paths under one root to bring in line with the source.
type Batch struct {
	Seq    uint64
	Root   string
	Sync   []string // relative to Root; a trailing "/" means recursive
	Delete []string // relative to Root; gone from the source
	// Written are the entries of Sync whose data the kernel reported
	// written: transferred whatever size and mtime say.
	Written []string
	Full    bool // resync Root whole
	Events  int  // input events this batch stands for
	First   time.Time
	Last    time.Time
	// Rules are the pipeline's path rules (evfilter's) in force when the
	// batch was made: every rsync run for it applies them. nil: none.
	Rules *Rules
	// Renames are renames inside the root (a MOVED_FROM and MOVED_TO pair),
	// in order, chains collapsed: a hint that the data of each To is on
	// the target under From. Sync and Delete hold the whole change
	// anyway (To to sync, From to delete), so a consumer that ignores
	// Renames, or cannot apply one, still ends right; rpush applies them
	// first so that the syncs find the data in place.
	Renames []Rename
}

// Rename is one rename inside a root, both paths relative to it; Dir says
// a directory was moved (with everything under it).
type Rename struct {
	From, To string
	Dir      bool
}

// Valid reports whether both paths are relative paths whose elements are
// names (no "", ".", ".." element, no NUL): a rename can never reach out
// of its root. The decoder refuses others; rpush checks again.
func (r Rename) Valid() bool { return relPath(r.From) && relPath(r.To) }

func relPath(s string) bool {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return false
	}
	for _, e := range strings.Split(s, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

// Rules are the pipeline's path rules as rsync filter patterns (see
// rsync(1), FILTER RULES): every rsync run rpush makes, full syncs and
// replays included, gets "--filter=- P" for each Exclude pattern, then,
// when Include is not nil, "+ */", "+ P" for each Include pattern and
// "- *". evfilter writes them (a "rules" record, its first line);
// evbatch stamps the latest on every batch. Under --delete rsync never
// deletes on a target what these rules exclude, so a full sync keeps the
// target's excluded files as the live stream does.
type Rules struct {
	Exclude []string
	Include []string
}

// Limits on rules read from a stream or a spool: a pattern is a
// non-empty string without NUL of at most MaxRuleLen bytes.
const (
	MaxRules   = 4096
	MaxRuleLen = 4096
)

// Check refuses rules that cannot be given to rsync as they are.
func (r *Rules) Check() error {
	if len(r.Exclude)+len(r.Include) > MaxRules {
		return fmt.Errorf("more than %d rules", MaxRules)
	}
	for _, list := range [][]string{r.Exclude, r.Include} {
		for _, p := range list {
			switch {
			case p == "":
				return errors.New("an empty pattern")
			case len(p) > MaxRuleLen:
				return fmt.Errorf("a pattern longer than %d bytes", MaxRuleLen)
			case strings.IndexByte(p, 0) >= 0:
				return fmt.Errorf("pattern %q holds a NUL byte", p)
			}
		}
	}
	return nil
}

// Equal reports whether two rule sets are the same (nil is no rules).
func (r *Rules) Equal(o *Rules) bool {
	if r == nil || o == nil {
		return r == o
	}
	return slices.Equal(r.Exclude, o.Exclude) && slices.Equal(r.Include, o.Include) && (r.Include == nil) == (o.Include == nil)
}

// Result is rpush's report for one (batch, target).
type Result struct {
	Seq      uint64
	Root     string
	Target   string
	OK       bool
	Exit     int
	Paths    int
	Bytes    int64
	Seconds  float64
	Attempts int
	Error    string
	Spooled  string
}

// Kind says which record a decoded line held.
type Kind int

// The record kinds.
const (
	KindEvent Kind = iota + 1
	KindBatch
	KindResult
	KindRules // {"rules":{...}}: evfilter's rules, ahead of its events
)

// Record is a decoded line: exactly one of its parts is set, as Kind says.
type Record struct {
	Kind   Kind
	Event  Event
	Batch  Batch
	Result Result
	Rules  Rules
}
