package event

import (
	"fmt"
	"strings"
)

// Op is a set of event kinds. The low bits are the Linux inotify(7) mask bits
// (the kernel ABI values, so that the watcher can pass a mask through
// unchanged); Resync is inopipe's own and uses a bit the kernel never sets.
type Op uint32

// The event kinds, with the values of <sys/inotify.h>.
const (
	Access       Op = 0x00000001
	Modify       Op = 0x00000002
	Attrib       Op = 0x00000004
	CloseWrite   Op = 0x00000008
	CloseNowrite Op = 0x00000010
	Open         Op = 0x00000020
	MovedFrom    Op = 0x00000040
	MovedTo      Op = 0x00000080
	Create       Op = 0x00000100
	Delete       Op = 0x00000200
	DeleteSelf   Op = 0x00000400
	MoveSelf     Op = 0x00000800
	Unmount      Op = 0x00002000
	QOverflow    Op = 0x00004000
	Ignored      Op = 0x00008000
	IsDir        Op = 0x40000000

	// Resync asks downstream for a whole-root sync. inowait emits it once
	// per root after its watches are in place (--resync).
	Resync Op = 0x00100000

	// Close and Move are the inotifywait shorthands (both halves).
	Close Op = CloseWrite | CloseNowrite
	Move  Op = MovedFrom | MovedTo

	// AllEvents is what inotifywait watches when no -e is given.
	AllEvents Op = Access | Modify | Attrib | CloseWrite | CloseNowrite | Open |
		MovedFrom | MovedTo | Create | Delete | DeleteSelf | MoveSelf

	// ChangeEvents are the events that change the tree: every event
	// but the reads (ACCESS, OPEN, CLOSE_NOWRITE). inowait watches these
	// when it prints JSON and no -e is given: a web server or a backup
	// reading the source then costs the pipeline nothing.
	ChangeEvents Op = AllEvents &^ (Access | Open | CloseNowrite)

	// Control is the set of records every stage must pass on or act on.
	Control Op = QOverflow | Resync | Unmount
)

// opNames lists the names in the order inotifywait prints them in %e
// (libinotifytools' inotifytools_event_to_str_sep), which is not bit order:
// CLOSE comes after IGNORED and ISDIR is last. Verified against
// inotifywait 3.22 ("CLOSE_NOWRITE,CLOSE,ISDIR").
var opNames = [...]struct {
	op   Op
	name string
}{
	{Access, "ACCESS"},
	{Modify, "MODIFY"},
	{Attrib, "ATTRIB"},
	{CloseWrite, "CLOSE_WRITE"},
	{CloseNowrite, "CLOSE_NOWRITE"},
	{Open, "OPEN"},
	{MovedFrom, "MOVED_FROM"},
	{MovedTo, "MOVED_TO"},
	{Create, "CREATE"},
	{Delete, "DELETE"},
	{DeleteSelf, "DELETE_SELF"},
	{Unmount, "UNMOUNT"},
	{QOverflow, "Q_OVERFLOW"},
	{Ignored, "IGNORED"},
	{Close, "CLOSE"}, // printed whenever either close bit is set
	{MoveSelf, "MOVE_SELF"},
	{IsDir, "ISDIR"},
	{Resync, "RESYNC"},
}

// Names returns the event names of op in inotifywait's order.
func (op Op) Names() []string {
	var out []string
	for _, n := range opNames {
		if op&n.op != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// Join returns the names of op separated by sep, as inotifywait's %Xe does.
func (op Op) Join(sep string) string {
	return strings.Join(op.Names(), sep)
}

// String returns the comma-separated names, as inotifywait's %e.
func (op Op) String() string { return op.Join(",") }

// Has reports whether op has any of the bits in o.
func (op Op) Has(o Op) bool { return op&o != 0 }

// OpFromName converts one event name (case-insensitive; CLOSE and MOVE are
// accepted as the pair of bits they stand for, as in inotifywait -e).
func OpFromName(name string) (Op, error) {
	u := strings.ToUpper(strings.TrimSpace(name))
	switch u {
	case "CLOSE":
		return Close, nil
	case "MOVE":
		return Move, nil
	case "ALL_EVENTS":
		return AllEvents, nil
	}
	for _, n := range opNames {
		if n.name == u {
			return n.op, nil
		}
	}
	return 0, fmt.Errorf("unknown event %q", name)
}

// ParseOps parses a comma-separated list of event names, as given to -e.
func ParseOps(list string) (Op, error) {
	var op Op
	for _, f := range strings.Split(list, ",") {
		if f == "" {
			return 0, fmt.Errorf("empty event name in %q", list)
		}
		o, err := OpFromName(f)
		if err != nil {
			return 0, err
		}
		op |= o
	}
	return op, nil
}

// opFromWireName is the decoder's view: CLOSE is implied by the close bits
// and adds nothing of its own, so it decodes to 0.
func opFromWireName(name string) (Op, bool) {
	if name == "CLOSE" {
		return 0, true
	}
	for _, n := range opNames {
		if n.name == name {
			return n.op, true
		}
	}
	return 0, false
}
