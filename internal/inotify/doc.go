// Package inotify is inowait's Linux watcher: inotify(7) through
// golang.org/x/sys/unix, recursive watches that miss nothing, and the
// translation of kernel records into event.Event values.
//
// # Recursion without holes
//
// inotify watches one directory, not a tree. When a directory appears under
// a watched one (CREATE or MOVED_TO with ISDIR), anything created inside it
// before its own watch is added produces no event at all: the race that
// inotifywait(1) lists under BUGS. The watcher closes it the way fsnotify and
// syncthing do: add the watch first, then read the directory and emit a
// synthetic CREATE (plus CLOSE_WRITE for regular files) for every entry
// already there, recursing into subdirectories. An entry created between the
// watch and the scan shows up twice, which is harmless downstream; none is
// lost.
//
// A directory renamed inside the tree keeps its watch (the kernel watches
// inodes, not names), so the watch table is rewritten from the MOVED_FROM /
// MOVED_TO pair (same cookie): every later event carries the new path. A
// directory moved out of the tree (a MOVED_FROM whose MOVED_TO never comes)
// loses its watches, so it cannot report events under a stale path.
//
// Reading a directory makes the kernel report OPEN, ACCESS and CLOSE_NOWRITE
// on it. Those caused by the watcher's own scans are counted and swallowed,
// so they never reach the stream.
//
// # Overflow
//
// When the kernel queue (fs.inotify.max_queued_events) fills, the kernel
// drops events and queues one IN_Q_OVERFLOW. Directories created in that gap
// would stay unwatched, so the watcher walks every root again, adds the
// missing watches, and only then emits a Q_OVERFLOW record: downstream
// resyncs the root whole, after every watch is back in place.
//
// # Linux limits
//
//   - fs.inotify.max_user_watches: one watch per directory, per user, shared
//     by every process of that user. inotify_add_watch fails with ENOSPC when
//     it is reached; the watcher stops with an error naming the sysctl, its
//     value and how many directories it had seen, rather than watch part of
//     the tree. Each watch costs about 1 KiB of unswappable kernel memory.
//   - fs.inotify.max_user_instances: inotify_init1 fails with EMFILE.
//   - fs.inotify.max_queued_events: the queue length before IN_Q_OVERFLOW.
//     The watcher reads with a large buffer, drains the kernel queue while
//     it scans a large new tree or works through a run of events (keepUp),
//     and holds up to maxQueue records it has not handled yet; its Sink
//     should not block for long (inowait's writes from a goroutine of its
//     own, holding up to 32 MiB for a slow reader).
//
// Root is not exempt from these limits on recent kernels, but
// max_queued_events is checked per instance when events are queued.
package inotify
