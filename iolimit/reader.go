package iolimit

import (
	"context"
	"io"
)

// A Reader is an io.Reader throttled by a [Budget]. Each Read asks the
// underlying reader for at most the budget's burst, then waits for the
// bytes actually read before returning them.
type Reader struct {
	ctx context.Context
	r   io.Reader
	lim Budget
	err error
}

// NewReader returns r throttled by lim. Reads wait as long as lim says,
// and end with ctx's error as soon as ctx is done. A nil r or lim makes
// every Read fail with an error naming it.
func NewReader(ctx context.Context, r io.Reader, lim Budget) *Reader {
	rd := &Reader{ctx: ctx, r: r, lim: lim}
	rd.err = checkBudget(lim, "lim")
	if r == nil {
		rd.err = fieldErr("r", "is nil")
	}
	return rd
}

// Read reads up to min(len(p), burst) bytes from the underlying reader,
// then waits until the budget lets them pass. If ctx ends during the wait,
// Read returns the bytes it read together with ctx's error.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if b := r.lim.Burst(); int64(len(p)) > b {
		p = p[:b]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := waitN(r.ctx, r.lim, int64(n)); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// A Writer is an io.Writer throttled by a [Budget]. Each Write waits for
// the budget, then writes, in pieces no larger than the budget's burst.
type Writer struct {
	ctx context.Context
	w   io.Writer
	lim Budget
	err error
}

// NewWriter returns w throttled by lim. Writes wait as long as lim says,
// and end with ctx's error as soon as ctx is done. A nil w or lim makes
// every Write fail with an error naming it.
func NewWriter(ctx context.Context, w io.Writer, lim Budget) *Writer {
	wr := &Writer{ctx: ctx, w: w, lim: lim}
	wr.err = checkBudget(lim, "lim")
	if w == nil {
		wr.err = fieldErr("w", "is nil")
	}
	return wr
}

// Write writes p in pieces of at most the budget's burst, waiting for the
// budget before each piece. It returns the bytes written and the first
// error: the underlying writer's, or ctx's when ctx ends while waiting.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	return writeThrottled(w.ctx, w.w, w.lim, p)
}

func writeThrottled(ctx context.Context, w io.Writer, lim Budget, p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(int64(len(p)), lim.Burst())
		if err := waitN(ctx, lim, c); err != nil {
			return written, err
		}
		n, err := w.Write(p[:c])
		written += n
		if err != nil {
			return written, err
		}
		if int64(n) < c {
			return written, io.ErrShortWrite
		}
		p = p[c:]
	}
	return written, nil
}
