package inotify

import "github.com/inopipe/inopipe/internal/event"

// kernelBits are the mask bits the kernel reports that event.Op knows.
const kernelBits = event.AllEvents | event.Unmount | event.QOverflow | event.Ignored | event.IsDir

// opFromMask turns a kernel event mask into an event.Op. event.Op uses the
// kernel's bit values, so this only drops bits inopipe does not report
// (IN_ONESHOT and the add-watch flags never appear in read events, but a
// future kernel may add some).
func opFromMask(mask uint32) event.Op {
	return event.Op(mask) & kernelBits
}

// watchMask is the mask given to inotify_add_watch: what the user asked for
// plus what the watcher itself needs to follow the tree.
func watchMask(want event.Op, recursive bool) uint32 {
	m := want & event.AllEvents
	m |= event.DeleteSelf | event.MoveSelf
	if recursive {
		m |= event.Create | event.MovedFrom | event.MovedTo
	}
	return uint32(m)
}
