package pipe

import (
	"context"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spliceMover returns a function that moves up to n bytes from r to w
// with splice(2), without copying them through user space, when r and w
// are files and at least one of them is a pipe; otherwise nil. If the
// kernel refuses the first splice (EINVAL: a file type splice cannot
// read or write), the mover falls back to read and write.
func spliceMover(r io.Reader, w io.Writer) func(n int) (int, error) {
	in, ok1 := r.(*os.File)
	out, ok2 := w.(*os.File)
	if !ok1 || !ok2 || !(isPipe(in) || isPipe(out)) {
		return nil
	}
	rfd, wfd := int(in.Fd()), int(out.Fd())
	// Larger pipes mean fewer, larger splices. The kernel caps the size
	// (/proc/sys/fs/pipe-max-size, 1 MiB by default); failure is harmless.
	for _, fd := range []int{rfd, wfd} {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fSetPipeSize, 1<<20)
	}
	var fallback []byte
	first := true
	return func(n int) (int, error) {
		if fallback != nil {
			return readWrite(in, out, fallback[:min(n, len(fallback))])
		}
		for {
			m, err := syscall.Splice(rfd, nil, wfd, nil, n, spliceMove)
			switch {
			case err == syscall.EINTR || err == syscall.EAGAIN:
				continue
			case err == syscall.EINVAL && first:
				fallback = make([]byte, max(n, 256<<10))
				return readWrite(in, out, fallback[:n])
			case err != nil:
				return 0, &os.PathError{Op: "splice", Path: in.Name() + " -> " + out.Name(), Err: err}
			case m == 0:
				return 0, io.EOF
			}
			first = false
			return int(m), nil
		}
	}
}

// fSetPipeSize is F_SETPIPE_SZ: fcntl(2) resizing a pipe (on a file that
// is not a pipe it fails with EBADF and changes nothing).
const fSetPipeSize = 1031

// spliceMove is SPLICE_F_MOVE: a hint to move pages rather than copy them.
const spliceMove = 1

func isPipe(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// pollerSleeper returns a sleep function that waits on a timerfd(2) read
// through Go's network poller, and a function that releases it; nil if
// the kernel refuses the timer. A Go timer wakes the thread that polls
// it, which hands the goroutine to another thread, and wakes the runtime's
// monitor thread, which then polls a few times before sleeping again: at
// one wake-up a tenth of a second that costs more than the copy at low
// rates. A goroutine blocked on a file in the poller, with no Go timer
// pending, lets the monitor sleep, and the polling thread runs the
// goroutine itself. When ctx is done the read ends at once.
func pollerSleeper(ctx context.Context) (sleep func(context.Context, time.Duration) error, stop func()) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, nil
	}
	f := os.NewFile(uintptr(fd), "timerfd") // non-blocking: the poller serves its reads
	// A read deadline in the past ends the read in progress and every
	// later one.
	unhook := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	var buf [8]byte // the number of expirations
	sleep = func(ctx context.Context, d time.Duration) error {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
			return &os.SyscallError{Syscall: "timerfd_settime", Err: err}
		}
		if _, err := f.Read(buf[:]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		return nil
	}
	return sleep, func() { unhook(); f.Close() }
}
