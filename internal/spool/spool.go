// Package spool keeps the batches rpush could not deliver, one file per
// (batch, target), until failreplay delivers them. Entries are data, never
// command lines: failreplay rebuilds the rsync argv from them.
//
// An entry file holds two lines: a JSON header (target, attempts, failure
// times, last error) and the batch itself in the event package's
// JSON-lines encoding, which keeps non-UTF-8 names exact. Files are
// written to a temporary name, fsynced, renamed into place and the
// directory fsynced, so a reader never sees half an entry; a leftover
// temporary file (a crash mid-write) is ignored and cleaned up.
package spool

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inopipe/inopipe/internal/atomicfile"
	"github.com/inopipe/inopipe/internal/event"
)

// Sentinel errors.
var (
	ErrLocked   = errors.New("spool: locked by another process")
	ErrCorrupt  = errors.New("spool: corrupt entry")
	ErrSymlink  = errors.New("is a symlink; refusing it (give the real directory)")
	ErrNotDir   = errors.New("is not a directory")
	ErrNotOwner = errors.New("is owned by another user; refusing it")
	ErrMode     = errors.New("is writable by group or others; refusing it")
)

const (
	suffix        = ".batch"
	tmpPrefix     = atomicfile.TempPrefix
	quarantineDir = "quarantine"
	stateFile     = "targets.json"
	rulesFile     = "rules.json"
)

// Entry is one undelivered (batch, target).
type Entry struct {
	Target       string    `json:"target"`
	Attempts     int       `json:"attempts"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
	LastError    string    `json:"last_error"`
	Exit         int       `json:"exit"`
	// Failures counts the replays in a row that failed for a reason
	// retrying does not cure (not a target that is down); failreplay
	// parks the entry in quarantine/ when it reaches its limit.
	Failures int         `json:"failures,omitempty"`
	Batch    event.Batch `json:"-"`
}

// Spool is a directory of entries.
type Spool struct {
	Dir string
	Now func() time.Time
}

// Open creates dir (mode 0700) if needed, and refuses a spool that someone
// else could have written: entries become rsync runs that delete on the
// targets, so a planted entry is an attack. dir must be a real directory
// (not a symlink), owned by the user running the tool, writable by no
// group or other; a mode that only lets others read is tightened to 0700.
func Open(dir string) (*Spool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("spool %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return nil, fmt.Errorf("spool %s: %w", dir, ErrSymlink)
	case !fi.IsDir():
		return nil, fmt.Errorf("spool %s: %w", dir, ErrNotDir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("spool %s: %w (uid %d, not %d)", dir, ErrNotOwner, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		// Someone else may have planted entries: tightening the mode
		// now would not remove them.
		return nil, fmt.Errorf("spool %s: %w (mode %04o; check its entries, then chmod 700 it)", dir, ErrMode, fi.Mode().Perm())
	}
	if fi.Mode().Perm() != 0o700 {
		// Readable by others (a plain mkdir): entries name files; close it.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("spool %s: %w", dir, err)
		}
	}
	return &Spool{Dir: dir, Now: time.Now}, nil
}

// DefaultDir is /var/spool/inopipe for root, $XDG_STATE_HOME/inopipe (or
// ~/.local/state/inopipe) otherwise.
func DefaultDir() string {
	if os.Geteuid() == 0 {
		return "/var/spool/inopipe"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "inopipe")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "inopipe")
}

func encode(e *Entry) ([]byte, error) {
	head, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	head = append(head, '\n')
	return event.AppendBatch(head, &e.Batch), nil
}

func decode(b []byte) (*Entry, error) {
	head, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no batch line", ErrCorrupt)
	}
	e := &Entry{}
	if err := json.Unmarshal(head, e); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if e.Target == "" {
		return nil, fmt.Errorf("%w: no target", ErrCorrupt)
	}
	var rec event.Record
	if err := event.Unmarshal(bytes.TrimSpace(rest), &rec); err != nil {
		return nil, fmt.Errorf("%w: batch line: %w", ErrCorrupt, err)
	}
	if rec.Kind != event.KindBatch {
		return nil, fmt.Errorf("%w: the second line is not a batch", ErrCorrupt)
	}
	if r := rec.Batch.Root; !strings.HasPrefix(r, "/") || !strings.HasSuffix(r, "/") {
		return nil, fmt.Errorf("%w: root %q is not an absolute directory (ending in /)", ErrCorrupt, r)
	}
	e.Batch = rec.Batch
	return e, nil
}

// targetTag is the part of an entry's file name that says its target, so
// that entries can be counted per target without reading them.
func targetTag(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:4])
}

// Put writes a new entry and returns its path. The name is
// UNIXNANO-SEQ-TAG.batch: the time it was spooled, the batch, the target.
func (s *Spool) Put(e *Entry) (string, error) {
	name := fmt.Sprintf("%d-%06d-%s%s", s.Now().UnixNano(), e.Batch.Seq%1000000, targetTag(e.Target), suffix)
	p := filepath.Join(s.Dir, name)
	return p, s.write(p, e)
}

// Update rewrites an entry in place (attempts, last error).
func (s *Spool) Update(path string, e *Entry) error { return s.write(path, e) }

// write is the atomic file write (atomicfile: temp name, fsync, rename,
// fsync dir).
func (s *Spool) write(path string, e *Entry) error {
	data, err := encode(e)
	if err == nil {
		err = atomicfile.Write(path, data, 0o600)
	}
	if err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	return nil
}

func (s *Spool) syncDir() error { return atomicfile.SyncDir(s.Dir) }

// List returns the entry files, oldest first. Temporary files older than
// a minute (left by a crash) are removed.
func (s *Spool) List() ([]string, error) {
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool list: %w", err)
	}
	var out []string
	for _, de := range des {
		n := de.Name()
		switch {
		case strings.HasPrefix(n, tmpPrefix):
			if info, err := de.Info(); err == nil && s.Now().Sub(info.ModTime()) > time.Minute {
				os.Remove(filepath.Join(s.Dir, n))
			}
		case strings.HasSuffix(n, suffix) && de.Type().IsRegular():
			out = append(out, filepath.Join(s.Dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Count is the number of entries, without reading them (for monitoring).
func (s *Spool) Count() int {
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, de := range des {
		if strings.HasSuffix(de.Name(), suffix) && de.Type().IsRegular() {
			n++
		}
	}
	return n
}

// Census is what the spool holds, from one read of its directory (and
// one of quarantine/), file names only: for monitoring and catch-up.
type Census struct {
	Entries     int
	Quarantined int
	byTag       map[string]waiting
}

type waiting struct {
	n      int
	oldest time.Time
}

// Census reads the spool's directory once.
func (s *Spool) Census() Census {
	c := Census{byTag: map[string]waiting{}, Quarantined: s.Quarantined()}
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		return c
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, suffix) || !de.Type().IsRegular() {
			continue
		}
		c.Entries++
		// UNIXNANO-SEQ-TAG.batch
		stamp, rest, _ := strings.Cut(strings.TrimSuffix(name, suffix), "-")
		_, tag, _ := strings.Cut(rest, "-")
		w := c.byTag[tag]
		w.n++
		if ns, err := strconv.ParseInt(stamp, 10, 64); err == nil {
			if t := time.Unix(0, ns); w.oldest.IsZero() || t.Before(w.oldest) {
				w.oldest = t
			}
		}
		c.byTag[tag] = w
	}
	return c
}

// Waiting counts the entries for target and tells when the oldest was
// spooled.
func (c Census) Waiting(target string) (n int, oldest time.Time) {
	w := c.byTag[targetTag(target)]
	return w.n, w.oldest
}

// Waiting is Census().Waiting(target).
func (s *Spool) Waiting(target string) (n int, oldest time.Time) {
	return s.Census().Waiting(target)
}

// Read loads one entry. A malformed file yields an error wrapping
// ErrCorrupt.
func (s *Spool) Read(path string) (*Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decode(b)
}

// Remove deletes a delivered entry.
func (s *Spool) Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool remove: %w", err)
	}
	return s.syncDir()
}

// Quarantined is the number of entries parked in DIR/quarantine (for
// monitoring).
func (s *Spool) Quarantined() int {
	des, err := os.ReadDir(filepath.Join(s.Dir, quarantineDir))
	if err != nil {
		return 0
	}
	n := 0
	for _, de := range des {
		if strings.HasSuffix(de.Name(), suffix) {
			n++
		}
	}
	return n
}

// Quarantine moves an unreadable entry aside so that it never blocks the
// others, and returns its new path.
func (s *Spool) Quarantine(path string) (string, error) {
	q := filepath.Join(s.Dir, quarantineDir)
	if err := os.MkdirAll(q, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(q, filepath.Base(path))
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("spool quarantine: %w", err)
	}
	return dst, s.syncDir()
}

// Lock takes the spool's exclusive lock (flock on DIR/.lock) without
// waiting. The lock goes away with the process, so a crash never leaves
// the spool locked.
func (s *Spool) Lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("spool lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Pair is a (root, target) that rpush has served; failreplay --full syncs
// every pair.
type Pair struct {
	Root   string `json:"root"`
	Target string `json:"target"`
}

// lockState takes the exclusive lock on DIR/.targets.lock that guards
// the read, merge and write of targets.json and rules.json, so that rpush
// processes sharing the spool never lose each other's records.
func (s *Spool) lockState() (unlock func(), err error) {
	lf, err := os.OpenFile(filepath.Join(s.Dir, ".targets.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("targets.json lock: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		lf.Close()
		return nil, fmt.Errorf("targets.json lock: %w", err)
	}
	return func() { lf.Close() }, nil
}

// RecordRules records the pipeline's rules for root in DIR/rules.json
// (nil: none), for failreplay --full: a full sync applies the rules the
// live stream applied last.
func (s *Spool) RecordRules(root string, r *event.Rules) error {
	unlock, err := s.lockState()
	if err != nil {
		return err
	}
	defer unlock()
	all, err := s.Rules()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rules.json: %w (not rewritten)", err)
	}
	if all == nil {
		all = map[string]*event.Rules{}
	}
	if all[root].Equal(r) {
		return nil
	}
	if r == nil {
		delete(all, root)
	} else {
		all[root] = r
	}
	out := map[string]rulesJSON{}
	for k, v := range all {
		r := rulesJSON{Exclude: v.Exclude}
		if v.Include != nil {
			r.Include = &v.Include
		}
		out[k] = r
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.Dir, rulesFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("rules.json: %w", err)
	}
	return nil
}

// rulesJSON is one root's entry in rules.json; an absent "include" is no
// includes, a present one (even empty) is.
type rulesJSON struct {
	Exclude []string  `json:"exclude"`
	Include *[]string `json:"include,omitempty"`
}

// Rules reads DIR/rules.json: the rules rpush last saw, per root.
func (s *Spool) Rules() (map[string]*event.Rules, error) {
	data, err := os.ReadFile(filepath.Join(s.Dir, rulesFile))
	if err != nil {
		return nil, err
	}
	var raw map[string]rulesJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("rules.json: %w", err)
	}
	out := map[string]*event.Rules{}
	for root, r := range raw {
		rs := &event.Rules{Exclude: r.Exclude}
		if r.Include != nil {
			rs.Include = append([]string{}, *r.Include...)
		}
		if err := rs.Check(); err != nil {
			return nil, fmt.Errorf("rules.json: root %q: %w", root, err)
		}
		out[root] = rs
	}
	return out, nil
}

// RecordPairs merges pairs into DIR/targets.json (atomically), under the
// state lock.
func (s *Spool) RecordPairs(pairs []Pair) error {
	unlock, err := s.lockState()
	if err != nil {
		return err
	}
	defer unlock()
	have, err := s.Pairs()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("targets.json: %w (not rewritten)", err)
	}
	seen := map[Pair]bool{}
	for _, p := range have {
		seen[p] = true
	}
	changed := false
	for _, p := range pairs {
		if !seen[p] {
			seen[p] = true
			have = append(have, p)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	data, err := json.MarshalIndent(have, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.Dir, stateFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("targets.json: %w", err)
	}
	return nil
}

// Pairs reads DIR/targets.json.
func (s *Spool) Pairs() ([]Pair, error) {
	f, err := os.Open(filepath.Join(s.Dir, stateFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Pair
	err = json.NewDecoder(bufio.NewReader(f)).Decode(&out)
	return out, err
}
