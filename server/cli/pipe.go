package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/iolimit"
)

func init() { subcommands = append(subcommands, newPipeCmd) }

// pipeOptions are the flags of weir pipe, as typed.
type pipeOptions struct {
	rate, burst, size, buffer string
	stop, quiet, force        bool
	noSplice                  bool
	interval                  time.Duration
}

func newPipeCmd(stdio IO) *cobra.Command {
	var o pipeOptions
	cmd := &cobra.Command{
		Use:   "pipe [flags] [FILE...]",
		Short: "Copy stdin (or FILEs) to stdout at a limited rate, like pv -L",
		Long: `Copy standard input, or the FILEs in turn ("-" is standard input), to
standard output, at no more than the rate given by -L, showing a pv-style
progress line on standard error when it is a terminal.

Sizes and rates are a number with an optional unit: k, m, g, t (and KiB,
MiB, GiB, TiB) are powers of 1024, as in pv; KB, MB, GB, TB are powers of
1000; fractions are allowed: 2.5m is 2,621,440 bytes. A trailing "/s" is
ignored.

  weir pipe -L 256k < in > out        (pv -q -L 256k < in > out)
  tar c dir | weir pipe -L 2.5m -s 1g | ssh host tar x

Exit status: 0 on success, and when standard output is closed early
(| head); 1 on an I/O error; 2 for bad flags or values; 130 on interrupt.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPipe(cmd.Context(), stdio, &o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.rate, "rate-limit", "L", "", "limit the transfer to `RATE` bytes per second (e.g. 256k, 2.5m, 100MB)")
	f.StringVar(&o.burst, "burst", "", "bytes that may pass at once to catch up after a stall (default: one second's worth)")
	f.StringVarP(&o.size, "size", "s", "", "assume the total is `SIZE` bytes, for the percentage and ETA (default: the size of regular input files)")
	f.BoolVarP(&o.stop, "stop-at-size", "S", false, "stop after --size bytes")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress line")
	f.BoolVarP(&o.force, "force", "f", false, "show the progress line even when standard error is not a terminal")
	f.StringVarP(&o.buffer, "buffer-size", "B", "256k", "copy in pieces of at most `SIZE` bytes")
	f.BoolVarP(&o.noSplice, "no-splice", "C", false, "never use splice(2); always read and write through a buffer")
	f.DurationVarP(&o.interval, "interval", "i", time.Second, "update the progress line every `DURATION`")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: 2, Err: fmt.Errorf("pipe: %w", err)}
	})
	return cmd
}

// usageErr is a one-line error with exit status 2.
func usageErr(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf("pipe: "+format, args...)}
}

// parseBytes parses a byte count: a decimal number, possibly with a
// fraction, and an optional unit. k, m, g, t, KiB, MiB, GiB, TiB (any case)
// are powers of 1024; KB, MB, GB, TB are powers of 1000; b or no unit is
// bytes. A trailing "/s" is allowed. Fractions of a byte are dropped.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "/S")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("%q is not a number with an optional unit (like 256k, 2.5m, 100MB)", s)
	}
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kib", "ki":
		mult = 1 << 10
	case "m", "mib", "mi":
		mult = 1 << 20
	case "g", "gib", "gi":
		mult = 1 << 30
	case "t", "tib", "ti":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("%q: unknown unit %q (want k, m, g, t, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, t[i:])
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n.Int64(), nil
}

func runPipe(ctx context.Context, stdio IO, o *pipeOptions, args []string) error {
	var (
		lim          *iolimit.Limit
		size, burst  int64
		err          error
		sizeExplicit = o.size != ""
	)
	buf, err := parseBytes(o.buffer)
	if err != nil || buf < 1 || buf > 1<<30 {
		if err == nil {
			err = fmt.Errorf("must be from 1 byte to 1g (got %s)", o.buffer)
		}
		return usageErr("invalid buffer size: %v", err)
	}
	if o.burst != "" {
		if burst, err = parseBytes(o.burst); err != nil || burst < 1 {
			if err == nil {
				err = fmt.Errorf("must be at least 1 byte (got %s)", o.burst)
			}
			return usageErr("invalid burst: %v", err)
		}
	}
	if o.rate != "" {
		rate, err := parseBytes(o.rate)
		if err == nil && (rate < 1 || rate > iolimit.MaxRate) {
			err = fmt.Errorf("must be from 1 byte/s to %d bytes/s (got %s)", int64(iolimit.MaxRate), o.rate)
		}
		if err != nil {
			return usageErr("invalid rate: %v", err)
		}
		if burst == 0 {
			// A second's worth: after a stall (a busy machine, a slow
			// reader) the copy makes up for up to a second.
			burst = min(max(rate, iolimit.DefaultBurst(rate)), iolimit.MaxBurst)
		}
		if lim, err = iolimit.NewLimit(rate, burst); err != nil {
			var fe *weir.FieldError
			if errors.As(err, &fe) {
				return usageErr("invalid %s: %s", fe.Field, fe.Reason)
			}
			return usageErr("%v", err)
		}
		// Start with an empty bucket, so that the first second is not
		// faster than the rest.
		_ = lim.WaitN(ctx, burst)
	} else if o.burst != "" {
		return usageErr("--burst needs --rate-limit (-L)")
	}
	if sizeExplicit {
		if size, err = parseBytes(o.size); err == nil && size < 1 {
			err = fmt.Errorf("must be at least 1 byte (got %s)", o.size)
		}
		if err != nil {
			return usageErr("invalid size: %v", err)
		}
	} else if o.stop {
		return usageErr("--stop-at-size (-S) needs --size (-s)")
	}
	if o.interval <= 0 {
		return usageErr("invalid interval %v: must be positive", o.interval)
	}

	srcs, total, err := openInputs(stdio.Stdin, args)
	defer func() {
		for _, s := range srcs {
			if s.close {
				s.r.(*os.File).Close()
			}
		}
	}()
	if err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("pipe: %w", err)}
	}
	if !sizeExplicit {
		size = total
	}

	if _, ok := stdio.Stdout.(*os.File); ok {
		// Make a closed standard output an EPIPE error rather than a
		// SIGPIPE death, so that `weir pipe | head` ends quietly.
		signal.Ignore(syscall.SIGPIPE)
	}

	c := &copier{lim: lim, buf: int(buf), stopAt: -1}
	if lim != nil && sleepInPoller {
		// Sleep on a timer file in Go's network poller rather than on a
		// Go timer: one thread wakes per step, not four to eight
		// (docs/bandwidth.md). Nil where there is no such file.
		if sleep, stop := pollerSleeper(ctx); sleep != nil {
			c.sleep = sleep
			defer stop()
		}
	}
	if o.stop {
		c.stopAt = size
	}
	if lim != nil {
		// Pay for a tenth of a second's worth at a time, as pv does (or
		// the burst, if smaller): few, long sleeps cost the least CPU.
		// Above 640 MiB/s the step stays at 64 MiB: a larger one drains
		// a feeding pipe in one gulp and then splices in small pieces.
		c.step = min(lim.Burst(), max(min(lim.Rate()/10, maxStep), min(lim.Rate(), 4096)))
	}

	var prog *progress
	if !o.quiet && (o.force || isTerminal(stdio.Stderr)) {
		prog = startProgress(stdio.Stderr, &c.done, size, o.interval)
	}
	err = c.run(ctx, srcs, stdio.Stdout, !o.noSplice)
	if prog != nil {
		prog.stop()
	}
	switch {
	case err == nil, isClosedPipe(err):
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return &ExitError{Code: 130}
	}
	return &ExitError{Code: 1, Err: fmt.Errorf("pipe: %w", err)}
}

// isClosedPipe reports whether err means the reader of our output went
// away: the end of a pipeline such as `| head`.
func isClosedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type input struct {
	r     io.Reader
	name  string
	close bool
}

// openInputs opens the inputs in order and adds up their sizes when all
// are regular files (0 otherwise).
func openInputs(stdin io.Reader, args []string) ([]input, int64, error) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	var (
		srcs  []input
		total int64
		known = true
	)
	for _, a := range args {
		in := input{r: stdin, name: "standard input"}
		if a != "-" {
			f, err := os.Open(a)
			if err != nil {
				return srcs, 0, err
			}
			in = input{r: f, name: a, close: true}
		}
		srcs = append(srcs, in)
		if f, ok := in.r.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
				continue
			}
		}
		known = false
	}
	if !known {
		total = 0
	}
	return srcs, total, nil
}

// A copier moves bytes from its inputs to the output, no faster than lim
// allows. It moves up to step bytes (at most buf per system call), then
// pays for what it moved (move, then wait: a tenth of a second's worth at
// a time, pv's own granularity, up to maxStep, so that fast rates cost
// few wake-ups).
// Paying after moving means the end of the input costs nothing that was
// not moved, so a run's average is the rate; in any interval of length T
// at most burst + step + rate·T bytes pass.
type copier struct {
	lim    *iolimit.Limit                                   // nil: no limit
	sleep  func(ctx context.Context, d time.Duration) error // nil: a Go timer
	step   int64                                            // bytes moved per wait
	debt   int64                                            // bytes moved and not yet paid for
	buf    int
	stopAt int64 // -1: copy everything
	done   atomic.Int64
}

// run copies srcs to dst, and returns soon after ctx is done even if the
// copy is stuck in a read that nothing will end (a terminal with no input):
// the process is about to exit, and takes the stuck thread with it.
func (c *copier) run(ctx context.Context, srcs []input, dst io.Writer, useSplice bool) error {
	done := make(chan error, 1)
	go func() { done <- c.copyAll(ctx, srcs, dst, useSplice) }()
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

// maxStep is the most bytes the copy moves per wait.
const maxStep = 64 << 20

// errStop ends a copy at --size with -S.
var errStop = errors.New("stop at size")

func (c *copier) copyAll(ctx context.Context, srcs []input, dst io.Writer, useSplice bool) error {
	var b []byte
	for _, src := range srcs {
		var move func(n int) (int, error)
		if useSplice {
			move = spliceMover(src.r, dst)
		}
		if move == nil {
			if b == nil {
				b = make([]byte, c.buf)
			}
			move = func(n int) (int, error) { return readWrite(src.r, dst, b[:n]) }
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

// copyOne calls move until it reports io.EOF.
func (c *copier) copyOne(ctx context.Context, move func(n int) (int, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(c.buf)
		if c.stopAt >= 0 {
			left := c.stopAt - c.done.Load()
			if left <= 0 {
				if err := c.pay(ctx); err != nil {
					return err
				}
				return errStop
			}
			n = min(n, left)
		}
		if c.lim != nil {
			n = min(n, c.step-c.debt)
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

// pay waits until the bytes moved and not yet paid for may pass.
func (c *copier) pay(ctx context.Context) error {
	if c.lim == nil || c.debt == 0 {
		c.debt = 0
		return nil
	}
	d, err := c.lim.Reserve(c.debt)
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

// sleepInPoller says whether weir pipe may sleep on a timer file (see
// pollerSleeper). The in-process tests turn it off: they run under
// testing/synctest, whose fake clock only Go timers follow.
var sleepInPoller = true

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

// progress draws a pv-style line on w every interval, and once more,
// with a newline, at stop.
type progress struct {
	w        io.Writer
	done     *atomic.Int64
	size     int64
	start    time.Time
	interval time.Duration
	last     int64
	lastAt   time.Time
	width    int  // length of the last line drawn
	failed   bool // writing to w failed
	quit     chan struct{}
	finished chan struct{}
}

func startProgress(w io.Writer, done *atomic.Int64, size int64, interval time.Duration) *progress {
	now := time.Now()
	p := &progress{w: w, done: done, size: size, start: now, lastAt: now, interval: interval,
		quit: make(chan struct{}), finished: make(chan struct{})}
	go p.run()
	return p
}

func (p *progress) run() {
	defer close(p.finished)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw(false)
		case <-p.quit:
			p.draw(true)
			return
		}
	}
}

func (p *progress) stop() {
	close(p.quit)
	<-p.finished
}

func (p *progress) draw(final bool) {
	now := time.Now()
	n := p.done.Load()
	elapsed := now.Sub(p.start)
	cur := 0.0
	if d := now.Sub(p.lastAt).Seconds(); d > 0 {
		cur = float64(n-p.last) / d
	}
	avg := 0.0
	if s := elapsed.Seconds(); s > 0 {
		avg = float64(n) / s
	}
	if final {
		cur = avg
	}
	p.last, p.lastAt = n, now
	line := progressLine(n, elapsed, cur, avg, p.size, final)
	if pad := p.width - len(line); pad > 0 {
		line += strings.Repeat(" ", pad) // cover a longer previous line
	}
	p.width = len(line)
	if final {
		line += "\n"
	}
	if p.failed {
		return
	}
	if _, err := io.WriteString(p.w, "\r"+line); err != nil {
		p.failed = true // standard error is gone: stop drawing
	}
}

// progressLine formats one progress line:
//
//	1.50MiB 0:00:06 [ 256KiB/s] [ 255KiB/s] [=====>        ] 37% ETA 0:00:10
//
// The bar, percentage and ETA appear only when size is known.
func progressLine(n int64, elapsed time.Duration, cur, avg float64, size int64, final bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%8s %s [%9s/s] [%9s/s]", humanBytes(float64(n)), clock(elapsed), humanBytes(cur), humanBytes(avg))
	if size > 0 {
		frac := min(float64(n)/float64(size), 1)
		const width = 20
		fill := int(frac * width)
		bar := strings.Repeat("=", fill)
		if fill < width {
			bar += ">" + strings.Repeat(" ", width-fill-1)
		}
		fmt.Fprintf(&b, " [%s] %3d%%", bar, int(frac*100))
		switch {
		case final:
			b.WriteString("            ")
		case avg > 0 && n < size:
			eta := time.Duration(float64(size-n) / avg * float64(time.Second))
			fmt.Fprintf(&b, " ETA %s", clock(eta))
		default:
			b.WriteString(" ETA -:--:--")
		}
	}
	return b.String()
}

// humanBytes writes a byte count or rate with three significant digits and
// a binary unit, as pv does: 512B, 1.00KiB, 12.3MiB, 999GiB.
func humanBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1024
		i++
	}
	switch {
	case i == 0:
		return fmt.Sprintf("%.0fB", math.Floor(v))
	case v < 10:
		return fmt.Sprintf("%.2f%s", v, units[i])
	case v < 100:
		return fmt.Sprintf("%.1f%s", v, units[i])
	}
	return fmt.Sprintf("%.0f%s", v, units[i])
}

// clock formats d as H:MM:SS.
func clock(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
