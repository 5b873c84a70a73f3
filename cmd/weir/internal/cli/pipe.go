package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/iolimit"
	"github.com/weir-go/weir/server/pipe"
)

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
progress line on standard error when it is a terminal. The line fits the
terminal's width, and follows it when the terminal is resized.

With -L RATE, at most RATE·t bytes have passed t seconds after the start:
the copy pays for its first tenth of a second's worth before moving it,
then moves a tenth at a time. After a stall it catches up by at most
--burst (one second's worth).

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

// byteUnits are the units parseBytes knows, lower-cased, and their
// multipliers.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
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
	mult, ok := byteUnits[unit]
	if !ok {
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
	cfg, size, err := o.config()
	if err != nil {
		return err
	}
	srcs, total, closeAll, err := openInputs(stdio.Stdin, args)
	defer closeAll()
	if err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("pipe: %w", err)}
	}
	if o.size == "" {
		size = total
	}
	c, err := pipe.New(cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	if _, ok := stdio.Stdout.(*os.File); ok {
		// Make a closed standard output an EPIPE error rather than a
		// SIGPIPE death, so that `weir pipe | head` ends quietly.
		signal.Ignore(syscall.SIGPIPE)
	}
	stop := showProgress(stdio.Stderr, o, c, size)
	err = c.Run(ctx, srcs, stdio.Stdout)
	stop()
	return pipeExit(ctx, err)
}

// config turns the flags into the copy's configuration and the size the
// progress line counts towards (0: unknown, or the inputs' sizes).
func (o *pipeOptions) config() (cfg pipe.Config, size int64, err error) {
	cfg.NoSplice = o.noSplice
	cfg.GoTimers = pipeGoTimers
	buf, err := parseBytes(o.buffer)
	if err == nil && (buf < 1 || buf > pipe.MaxBuffer) {
		err = fmt.Errorf("must be from 1 byte to 1g (got %s)", o.buffer)
	}
	if err != nil {
		return cfg, 0, usageErr("invalid buffer size: %v", err)
	}
	cfg.Buffer = int(buf)
	if cfg.Limit, err = o.limit(); err != nil {
		return cfg, 0, err
	}
	if o.size != "" {
		if size, err = parseBytes(o.size); err == nil && size < 1 {
			err = fmt.Errorf("must be at least 1 byte (got %s)", o.size)
		}
		if err != nil {
			return cfg, 0, usageErr("invalid size: %v", err)
		}
	}
	if o.stop {
		if o.size == "" {
			return cfg, 0, usageErr("--stop-at-size (-S) needs --size (-s)")
		}
		cfg.StopAt = size
	}
	if o.interval <= 0 {
		return cfg, 0, usageErr("invalid interval %v: must be positive", o.interval)
	}
	return cfg, size, nil
}

// limit is the limit of -L and --burst; nil without -L.
func (o *pipeOptions) limit() (*iolimit.Limit, error) {
	var burst int64
	if o.burst != "" {
		var err error
		if burst, err = parseBytes(o.burst); err == nil && burst < 1 {
			err = fmt.Errorf("must be at least 1 byte (got %s)", o.burst)
		}
		if err != nil {
			return nil, usageErr("invalid burst: %v", err)
		}
	}
	if o.rate == "" {
		if o.burst != "" {
			return nil, usageErr("--burst needs --rate-limit (-L)")
		}
		return nil, nil
	}
	rate, err := parseBytes(o.rate)
	if err == nil && (rate < 1 || rate > iolimit.MaxRate) {
		err = fmt.Errorf("must be from 1 byte/s to %d bytes/s (got %s)", int64(iolimit.MaxRate), o.rate)
	}
	if err != nil {
		return nil, usageErr("invalid rate: %v", err)
	}
	if burst == 0 {
		// A second's worth: after a stall (a busy machine, a slow
		// reader) the copy makes up for up to a second.
		burst = min(max(rate, iolimit.DefaultBurst(rate)), iolimit.MaxBurst)
	}
	lim, err := iolimit.NewLimit(rate, burst)
	if fe, ok := errors.AsType[*weir.FieldError](err); ok {
		return nil, usageErr("invalid %s: %s", fe.Field, fe.Reason)
	}
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return lim, nil
}

// pipeGoTimers makes weir pipe sleep on Go timers only (pipe.Config's
// GoTimers). The in-process tests set it: they run under testing/synctest.
var pipeGoTimers = false

// showProgress starts the progress line on stderr, unless -q or stderr is
// not a terminal (and no -f), and returns the function that ends it. On a
// terminal the line fits its width, and is drawn again when it is resized.
func showProgress(stderr io.Writer, o *pipeOptions, c *pipe.Copier, size int64) (stop func()) {
	f, _ := stderr.(*os.File)
	tty := f != nil && term.IsTerminal(int(f.Fd()))
	if o.quiet || !(tty || o.force) {
		return func() {}
	}
	cfg := pipe.ProgressConfig{Size: size, Interval: o.interval}
	if tty {
		cfg.Width = func() int {
			w, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return w
		}
	}
	p := pipe.StartProgress(stderr, c, cfg)
	unwatch := func() {}
	if tty {
		unwatch = onResize(p.Refit)
	}
	return func() { unwatch(); p.Stop() }
}

// pipeExit maps the copy's end to weir pipe's exit status: 0 at the end of
// the input and when the reader of the output went away (| head), 130 on
// interrupt, 1 on an I/O error.
func pipeExit(ctx context.Context, err error) error {
	switch {
	case err == nil, pipe.IsClosedPipe(err):
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return &ExitError{Code: 130}
	}
	return &ExitError{Code: 1, Err: fmt.Errorf("pipe: %w", err)}
}

// openInputs opens the inputs in order ("-" or none: stdin), adds up their
// sizes when all are regular files (0 otherwise), and returns the function
// that closes the files it opened.
func openInputs(stdin io.Reader, args []string) (srcs []io.Reader, total int64, closeAll func(), err error) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	var opened []*os.File
	closeAll = func() {
		for _, f := range opened {
			f.Close()
		}
	}
	known := true
	for _, a := range args {
		r := stdin
		if a != "-" {
			f, err := os.Open(a)
			if err != nil {
				return srcs, 0, closeAll, err
			}
			opened = append(opened, f)
			r = f
		}
		srcs = append(srcs, r)
		if f, ok := r.(*os.File); ok {
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
	return srcs, total, closeAll, nil
}
