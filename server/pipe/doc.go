// Package pipe copies byte streams at a limited rate, as pv -L does, and
// draws pv's progress line: the engine of `weir pipe`.
//
// A [Copier] moves bytes from its inputs to one output, no faster than an
// [iolimit.Limit] allows. It moves up to a tenth of a second's worth (one
// step, pv's own granularity), then waits until that much may pass: few,
// long sleeps cost the least CPU, and paying after moving means the end of
// the input costs nothing that was not moved, so a whole run's average is
// the rate. The bucket starts empty and the first step is paid for before
// it moves, so by any time t after the start at most rate·t bytes have
// passed; after a stall (a slow reader, a busy machine) the copy catches up
// by at most the limit's burst. In any interval of length T at most
// burst + step + rate·T bytes pass.
//
// On Linux, when the input or the output is a pipe, bytes move with
// splice(2) and never enter user space, and the copy sleeps on a timer
// file in Go's network poller rather than on a Go timer (one thread wakes
// per step, not four to eight: docs/bandwidth.md). Elsewhere it reads and
// writes through a buffer and sleeps on Go timers.
//
// A [Progress] draws the progress line (bytes, time, current and average
// rate, and with a known size a bar, the percentage and the ETA) on a
// terminal every interval, fitted to the terminal's width as the caller
// reports it. The package reads no terminal itself: the weir command line
// asks golang.org/x/term for the width.
package pipe
