package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weir-go/weir/iolimit"
)

// Config says how a [Copier] copies. The zero Config copies everything, as
// fast as it can, 256 KiB at a time, with splice(2) where it can.
type Config struct {
	// Limit throttles the copy; nil copies as fast as the input and the
	// output allow.
	Limit *iolimit.Limit
	// Buffer is the most bytes one read and write (or one splice) moves.
	// Zero means 256 KiB; at most 1 GiB.
	Buffer int
	// StopAt ends the copy after that many bytes (pv -S); 0 copies every
	// input to its end.
	StopAt int64
	// NoSplice never uses splice(2): bytes always pass through a buffer.
	NoSplice bool
	// GoTimers makes the copy sleep on Go timers, never on a timer file
	// in the network poller: testing/synctest's fake clock moves only Go
	// timers.
	GoTimers bool
}

// DefaultBuffer is the Buffer of a zero Config.
const DefaultBuffer = 256 << 10

// MaxBuffer is the largest Buffer.
const MaxBuffer = 1 << 30

// maxStep is the most bytes the copy moves per wait: above 640 MiB/s a
// tenth of a second's worth would drain a feeding pipe in one gulp and
// then splice in small pieces.
const maxStep = 64 << 20

// A Copier copies its inputs to an output at the rate of its Config. Its
// Copied method may be called while Run runs, from any goroutine (the
// progress line does); Run itself is called once.
type Copier struct {
	cfg   Config
	sleep func(ctx context.Context, d time.Duration) error // nil: a Go timer
	step  int64                                            // bytes moved per wait
	debt  int64                                            // bytes moved and not yet paid for
	done  atomic.Int64
}

// New returns a Copier for cfg, or an error naming the field that is out
// of range.
func New(cfg Config) (*Copier, error) {
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Buffer < 1 || cfg.Buffer > MaxBuffer {
		return nil, fmt.Errorf("pipe: Buffer must be from 1 byte to 1 GiB (got %d)", cfg.Buffer)
	}
	if cfg.StopAt < 0 {
		return nil, fmt.Errorf("pipe: StopAt must not be negative (got %d)", cfg.StopAt)
	}
	c := &Copier{cfg: cfg}
	if lim := cfg.Limit; lim != nil {
		// A tenth of a second's worth, as pv does (or the burst, if
		// smaller; at least 4 KiB when the rate allows, so slow rates
		// do not crawl a few bytes at a time).
		c.step = min(lim.Burst(), max(min(lim.Rate()/10, maxStep), min(lim.Rate(), 4096)))
	}
	return c, nil
}

// Copied returns the bytes copied so far.
func (c *Copier) Copied() int64 { return c.done.Load() }

// Step returns the bytes moved between two waits; 0 without a limit.
func (c *Copier) Step() int64 { return c.step }

// errStop carries the end at Config.StopAt up from one input; Run
// returns nil for it.
var errStop = errors.New("stop at size")

// Run copies srcs in turn to dst and returns when the last ends (io.EOF),
// at Config.StopAt, on the first error, or soon after ctx is done (ctx's
// error) even if the copy is stuck in a read that nothing will end, such as
// a terminal with no input: the caller is about to exit, and takes the
// stuck goroutine with it.
func (c *Copier) Run(ctx context.Context, srcs []io.Reader, dst io.Writer) error {
	if lim := c.cfg.Limit; lim != nil {
		if !c.cfg.GoTimers {
			if sleep, stop := pollerSleeper(ctx); sleep != nil {
				c.sleep = sleep
				defer stop()
			}
		}
		// Start with an empty bucket, and pay for the first step before
		// moving it: at no time t has more than rate·t passed.
		_ = lim.WaitN(ctx, lim.Burst())
		c.debt = c.step
		if err := c.pay(ctx); err != nil {
			return err
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.copyAll(ctx, srcs, dst) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ctx.Err()
	}
}

func (c *Copier) copyAll(ctx context.Context, srcs []io.Reader, dst io.Writer) error {
	var b []byte
	for _, src := range srcs {
		var move func(n int) (int, error)
		if !c.cfg.NoSplice {
			move = spliceMover(src, dst)
		}
		if move == nil {
			if b == nil {
				b = make([]byte, c.cfg.Buffer)
			}
			move = func(n int) (int, error) { return readWrite(src, dst, b[:n]) }
		}
		err := c.copyOne(ctx, move)
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// copyOne calls move until it reports io.EOF, paying for each step.
func (c *Copier) copyOne(ctx context.Context, move func(n int) (int, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, stop := c.next()
		if stop {
			if err := c.pay(ctx); err != nil {
				return err
			}
			return errStop
		}
		m, err := move(int(n))
		c.done.Add(int64(m))
		c.debt += int64(m)
		if c.debt >= c.step || err != nil {
			if perr := c.pay(ctx); perr != nil {
				return perr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// next returns how many bytes the next move may move, or stop when the
// copy has reached Config.StopAt.
func (c *Copier) next() (n int64, stop bool) {
	n = int64(c.cfg.Buffer)
	if c.cfg.StopAt > 0 {
		left := c.cfg.StopAt - c.done.Load()
		if left <= 0 {
			return 0, true
		}
		n = min(n, left)
	}
	if c.cfg.Limit != nil {
		n = min(n, c.step-c.debt)
	}
	return n, false
}

// pay waits until the bytes moved and not yet paid for may pass.
func (c *Copier) pay(ctx context.Context) error {
	if c.cfg.Limit == nil || c.debt == 0 {
		c.debt = 0
		return nil
	}
	d, err := c.cfg.Limit.Reserve(c.debt)
	c.debt = 0
	if err != nil || d <= 0 {
		return err
	}
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readWrite reads once into b and writes what it read.
func readWrite(r io.Reader, w io.Writer, b []byte) (int, error) {
	n, rerr := r.Read(b)
	if n > 0 {
		m, werr := w.Write(b[:n])
		if werr == nil && m < n {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			return m, werr
		}
	}
	if n == 0 && rerr == nil {
		return 0, nil
	}
	return n, rerr
}

// IsClosedPipe reports whether err means the reader of the output went
// away: the end of a pipeline such as `| head`.
func IsClosedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}
