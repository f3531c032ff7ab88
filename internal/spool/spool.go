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
	"strings"
	"syscall"
	"time"

	"github.com/inopipe/inopipe/internal/event"
)

// Sentinel errors.
var (
	ErrLocked  = errors.New("spool: locked by another process")
	ErrCorrupt = errors.New("spool: corrupt entry")
)

const (
	suffix        = ".batch"
	tmpPrefix     = ".tmp-"
	quarantineDir = "quarantine"
	stateFile     = "targets.json"
)

// Entry is one undelivered (batch, target).
type Entry struct {
	Target       string      `json:"target"`
	Attempts     int         `json:"attempts"`
	FirstFailure time.Time   `json:"first_failure"`
	LastFailure  time.Time   `json:"last_failure"`
	LastError    string      `json:"last_error"`
	Exit         int         `json:"exit"`
	Batch        event.Batch `json:"-"`
}

// Spool is a directory of entries.
type Spool struct {
	Dir string
	Now func() time.Time
}

// Open creates dir (mode 0700) if needed.
func Open(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
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
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if e.Target == "" {
		return nil, fmt.Errorf("%w: no target", ErrCorrupt)
	}
	var rec event.Record
	if err := event.Unmarshal(bytes.TrimSpace(rest), &rec); err != nil || rec.Kind != event.KindBatch {
		return nil, fmt.Errorf("%w: batch line: %v", ErrCorrupt, err)
	}
	if rec.Batch.Root == "" {
		return nil, fmt.Errorf("%w: batch without root", ErrCorrupt)
	}
	e.Batch = rec.Batch
	return e, nil
}

// Put writes a new entry and returns its path.
func (s *Spool) Put(e *Entry) (string, error) {
	sum := sha256.Sum256([]byte(e.Target))
	name := fmt.Sprintf("%d-%06d-%s%s", s.Now().UnixNano(), e.Batch.Seq%1000000, hex.EncodeToString(sum[:4]), suffix)
	p := filepath.Join(s.Dir, name)
	return p, s.write(p, e)
}

// Update rewrites an entry in place (attempts, last error).
func (s *Spool) Update(path string, e *Entry) error { return s.write(path, e) }

// write is the atomic file write: temp name, fsync, rename, fsync dir.
func (s *Spool) write(path string, e *Entry) (err error) {
	data, err := encode(e)
	if err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	f, err := os.CreateTemp(s.Dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	return s.syncDir()
}

func (s *Spool) syncDir() error {
	d, err := os.Open(s.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

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

// RecordPairs merges pairs into DIR/targets.json (atomically).
func (s *Spool) RecordPairs(pairs []Pair) error {
	have, _ := s.Pairs()
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
	f, err := os.CreateTemp(s.Dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := os.Rename(f.Name(), filepath.Join(s.Dir, stateFile)); err != nil {
		return err
	}
	return s.syncDir()
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
