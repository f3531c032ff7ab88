package push

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Refusals of the source-side gate. A *SourceError wraps one of them.
var (
	ErrSourceGone     = errors.New("cannot be read")
	ErrNotDir         = errors.New("is not a directory")
	ErrDeviceChanged  = errors.New("is on another filesystem than when rpush first saw it (unmounted, or something mounted over it?)")
	ErrSubmountGone   = errors.New("has lost a filesystem that was mounted inside it")
	ErrEmptySource    = errors.New("is empty and the run deletes")
	ErrTooManyDeletes = errors.New("the run would delete more than --max-delete allows")
)

// SourceError is a refusal by the gate: the source root is not what it
// was, so a run that deletes would make the target lose what the source
// still has (somewhere the gate cannot see it).
type SourceError struct {
	Root   string
	Err    error  // one of the Err* sentinels above
	Detail string // the device numbers, the mount point, the count ...
}

func (e *SourceError) Error() string {
	s := "source root " + e.Root + " " + e.Err.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s + "; refusing to sync"
}

func (e *SourceError) Unwrap() error { return e.Err }

// Gate is the one check every rsync run passes just before it starts — the
// first attempt, each retry, the dry runs excepted — in rpush, failreplay,
// full syncs, filter mode, -j slices and --init alike (see Pusher.attempt).
// It refuses a source root that is missing or not a directory, whose
// filesystem changed since the gate first saw it (an unmounted source shows
// the empty mount point; a filesystem mounted over it is not the data),
// and, for runs that delete, a root that lost a sub-mount. Counting what a
// run would delete (empty root, --max-delete) needs rsync and is done by
// the Pusher around it.
//
// Sub-mounts are part of the source (rsync runs without -x): a filesystem
// mounted inside the root when the gate first sees it (or later, before a
// deleting run) is recorded; when it is gone, every run that deletes is
// refused, so the next full sync does not delete its files on the target.
// After an intended umount, restart rpush.
//
// Gate is safe for concurrent use. The zero value is ready.
type Gate struct {
	// Mountinfo is the mount table to read (default /proc/self/mountinfo).
	Mountinfo string

	mu    sync.Mutex
	roots map[string]*rootSeen
}

type rootSeen struct {
	dev    uint64
	mounts map[string]uint64 // mount point under the root -> its st_dev when first seen
}

// Check runs the gate for root (a directory path ending in "/") before a run
// that deletes on the target (deletes) or only adds and updates.
func (g *Gate) Check(root string, deletes bool) error {
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil {
		return &SourceError{Root: root, Err: ErrSourceGone, Detail: err.Error()}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return &SourceError{Root: root, Err: ErrNotDir}
	}
	dev := uint64(st.Dev)
	g.mu.Lock()
	if g.roots == nil {
		g.roots = map[string]*rootSeen{}
	}
	rs := g.roots[root]
	first := rs == nil
	if first {
		rs = &rootSeen{dev: dev, mounts: map[string]uint64{}}
		g.roots[root] = rs
	}
	g.mu.Unlock()
	if rs.dev != dev {
		return &SourceError{Root: root, Err: ErrDeviceChanged, Detail: fmt.Sprintf("device %d, was %d", dev, rs.dev)}
	}
	if first || deletes {
		if err := g.checkMounts(root, rs); err != nil {
			return err
		}
	}
	if deletes {
		f, err := os.Open(root)
		if err != nil {
			return &SourceError{Root: root, Err: ErrSourceGone, Detail: err.Error()}
		}
		names, _ := f.Readdirnames(1)
		f.Close()
		if len(names) == 0 {
			return &SourceError{Root: root, Err: ErrEmptySource}
		}
	}
	return nil
}

// checkMounts compares the sub-mounts of root now with those recorded, and
// records new ones.
func (g *Gate) checkMounts(root string, rs *rootSeen) error {
	now, err := g.submounts(root)
	if err != nil {
		return nil // no mount table (not Linux, no /proc): nothing to compare
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for mp, dev := range rs.mounts {
		var st syscall.Stat_t
		if _, ok := now[mp]; !ok || syscall.Stat(mp, &st) != nil || uint64(st.Dev) != dev {
			return &SourceError{Root: root, Err: ErrSubmountGone, Detail: mp + " is no longer mounted; restart rpush after an intended umount"}
		}
	}
	for mp := range now {
		if _, ok := rs.mounts[mp]; ok {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(mp, &st) == nil {
			rs.mounts[mp] = uint64(st.Dev)
		}
	}
	return nil
}

// submounts lists the mount points strictly inside root.
func (g *Gate) submounts(root string) (map[string]bool, error) {
	name := g.Mountinfo
	if name == "" {
		name = "/proc/self/mountinfo"
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := strings.TrimSuffix(root, "/") + "/"
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) && len(mp) > len(prefix) {
			out[mp] = true
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space, ...)
// in a mountinfo path.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
