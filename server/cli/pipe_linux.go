package cli

import (
	"io"
	"os"
	"syscall"
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
