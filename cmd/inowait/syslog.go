package main

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// syslogPaths are where a local syslog daemon listens (Linux, the BSDs,
// macOS), in the order log/syslog tries them.
var syslogPaths = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// syslogWriter sends each Write as one message to the local syslog daemon,
// in the form log/syslog uses for a local socket:
//
//	<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE
//
// It is log/syslog's local half on a raw socket: log/syslog links the
// whole net package into inowait (0.8 MB of binary, ~0.3 MiB of RSS at
// rest) for a socket opened only with -s or -d.
type syslogWriter struct {
	pri   int
	tag   string
	paths []string

	mu sync.Mutex
	fd int // -1 when not connected
}

// newSyslog connects to the first of paths that accepts, datagram first,
// then stream (as log/syslog does).
func newSyslog(pri int, tag string, paths []string) (*syslogWriter, error) {
	w := &syslogWriter{pri: pri, tag: tag, paths: paths, fd: -1}
	if err := w.connect(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *syslogWriter) connect() error {
	var last error = errors.New("syslog: no socket path")
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_STREAM} {
		for _, p := range w.paths {
			fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return os.NewSyscallError("socket", err)
			}
			if err = unix.Connect(fd, &unix.SockaddrUnix{Name: p}); err != nil {
				unix.Close(fd)
				last = &os.PathError{Op: "syslog: connect", Path: p, Err: err}
				continue
			}
			w.fd = fd
			return nil
		}
	}
	return last
}

// format builds one message; msg keeps its own newline, or gets one.
func (w *syslogWriter) format(now time.Time, msg []byte) []byte {
	b := make([]byte, 0, len(w.tag)+len(msg)+40)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(w.pri), 10)
	b = append(b, '>')
	b = now.AppendFormat(b, time.Stamp)
	b = append(b, ' ')
	b = append(b, w.tag...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, "]: "...)
	b = append(b, msg...)
	if len(msg) == 0 || msg[len(msg)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// Write sends p as one message. A daemon that restarted since the last
// message gets one reconnect, as with log/syslog.
func (w *syslogWriter) Write(p []byte) (int, error) {
	msg := w.format(time.Now(), p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd >= 0 {
		if err := w.send(msg); err == nil {
			return len(p), nil
		}
		unix.Close(w.fd)
		w.fd = -1
	}
	if err := w.connect(); err != nil {
		return 0, err
	}
	if err := w.send(msg); err != nil {
		return 0, os.NewSyscallError("syslog: write", err)
	}
	return len(p), nil
}

// send writes msg whole (a stream socket may take it in parts).
func (w *syslogWriter) send(msg []byte) error {
	for len(msg) > 0 {
		n, err := unix.Write(w.fd, msg)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msg = msg[n:]
	}
	return nil
}

func (w *syslogWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	return err
}
