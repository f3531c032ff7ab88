package base

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/inopipe/inopipe/internal/event"
)

// StopReader returns a reader of r that ends, as if at EOF, once ctx is
// done (the first SIGTERM/SIGINT), without losing a byte it has returned:
// a stage reads until it gets io.EOF, handles every line it got, then
// exits. That is how evbatch and rpush keep the promise that nothing read
// is ever dropped (the bytes still in the pipe are upstream's to resend:
// the supervisor restarts the pipeline with a resync).
//
// For a pipe, socket or terminal (*os.File), the descriptor is switched to
// non-blocking mode and read through Go's poller, so a read blocked in the
// kernel when the signal comes returns at once having consumed nothing
// (a read deadline); close restores blocking mode. Any other reader is
// checked before each read.
func StopReader(ctx context.Context, r io.Reader) (rd io.Reader, close func()) {
	if f, ok := r.(*os.File); ok {
		if pr, closeFn, ok := pollable(ctx, f); ok {
			return pr, closeFn
		}
	}
	return &ctxReader{ctx: ctx, r: r}, func() {}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, io.EOF
	}
	return c.r.Read(p)
}

type deadlineReader struct{ f *os.File }

func (d deadlineReader) Read(p []byte) (int, error) {
	n, err := d.f.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, io.EOF
	}
	return n, err
}

// pollable reopens f's descriptor (a dup: the original stays untouched
// but for the shared non-blocking flag) under Go's poller.
func pollable(ctx context.Context, f *os.File) (io.Reader, func(), bool) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, false
	}
	switch fi.Mode().Type() {
	case os.ModeNamedPipe, os.ModeSocket, os.ModeCharDevice | os.ModeDevice:
	default:
		return nil, nil, false // a regular file: a read never blocks for long
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	nfd := -1
	sc.Control(func(fd uintptr) {
		n, err := dupCloexec(int(fd))
		if err == nil {
			nfd = n
		}
	})
	if nfd < 0 {
		return nil, nil, false
	}
	if err := syscall.SetNonblock(nfd, true); err != nil {
		syscall.Close(nfd)
		return nil, nil, false
	}
	nf := os.NewFile(uintptr(nfd), f.Name()) // non-blocking: registered with the poller
	if err := nf.SetReadDeadline(time.Time{}); err != nil {
		// not pollable after all (e.g. no poller for this kind of file)
		syscall.SetNonblock(nfd, false)
		nf.Close()
		return nil, nil, false
	}
	stop := context.AfterFunc(ctx, func() { nf.SetReadDeadline(time.Now()) })
	return deadlineReader{nf}, func() {
		stop()
		// Blocking again, for whoever shares the descriptor (a shell's
		// terminal) after we exit.
		if sc, err := nf.SyscallConn(); err == nil {
			sc.Control(func(fd uintptr) { syscall.SetNonblock(int(fd), false) })
		}
		nf.Close()
	}, true
}

func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// ReadError gives the result of a stage's read loop (event.Decoder.Each)
// its exit code: nil stays nil, a --strict stop is ExitBadInput (the line
// was reported already), an *Error (a write failing in the loop) keeps
// its own, anything else is a read failure.
func ReadError(err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, event.ErrStrict):
		return Exit(ExitBadInput)
	case errors.As(err, &e):
		return err
	}
	return Errorf(ExitError, "read: %w", err)
}
