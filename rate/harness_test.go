package rate_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/weir-go/weir/rate"
	xrate "golang.org/x/time/rate"
)

// The differential harness drives a weir Limiter and an x/time Limiter with
// the same explicit times and compares every observable result.
//
// Tolerances, and why they exist:
//
//   - Tokens: x/time keeps tokens in a float64 that is updated incrementally;
//     weir keeps an integer zero point and an integer interval in ticks of
//     2^-f ns. Long whole-nanosecond intervals are exact. Other intervals are
//     rounded to at least min(2^40, interval_ns*2^20) ticks, a relative error
//     of at most 0.5/that, which shows up in proportion to the tokens refilled
//     since the bucket was last full. So token counts are compared with
//     1e-6 + 1e-12*|x| + relErr(r)*r*elapsed (see tokTol).
//   - Delays: x/time truncates a float product to whole ns, weir floors an
//     integer tick count, so results can differ by a nanosecond, plus the
//     token tolerance converted to time at the current limit. Compared within
//     max(1µs, tokTol/limit).
//   - lastEvent: for the same reason the two sides' time-to-act can differ by
//     a nanosecond; a CancelAt converts that into limit*1ns tokens, so tokTol
//     grows by 2ns worth of tokens per cancel.
//   - Decisions: identical except when x/time's float state is within the
//     above tolerance of the decision boundary. Such a "marginal" mismatch
//     ends the sequence (states may diverge after it) and is counted; any
//     non-marginal mismatch fails the test.
type harness struct {
	tb testing.TB
	w  *rate.Limiter
	x  *xrate.Limiter
	t0 time.Time
	wr []*rate.Reservation
	xr []*xrate.Reservation

	// clamp: the test may go back in time. weir never moves its notion of
	// "last" backwards (the golang/go#56287 fix), so x/time is driven at
	// max(t, lastMut), which is exactly weir's semantics for every method
	// (the delay of a backwards ReserveN is compared from each side's own t).
	// CancelAt is not issued in this mode.
	clamp   bool
	lastMut time.Duration
	minT    time.Duration // span of times used, for the refill error bound
	maxT    time.Duration
	nseen   int
	peakR   float64 // largest limit used, for the refill error bound

	cancels int // CancelAt calls so far (see tokTol)
	// saturated: a reservation's time to act is beyond weir's ±292-year
	// nanosecond axis (e.g. any wait at a zero or tiny limit). weir saturates
	// such times, x/time's time.Time keeps them apart, so CancelAt, which
	// subtracts them, is no longer compared.
	saturated bool
	marginal  bool // a marginal decision mismatch ended the run
	log       []string
}

func newHarness(tb testing.TB, t0 time.Time, r rate.Limit, b int, clamp bool) *harness {
	h := &harness{tb: tb, t0: t0, clamp: clamp, w: rate.NewLimiter(r, b), x: xrate.NewLimiter(xrate.Limit(r), b), lastMut: math.MinInt64}
	h.notice(r)
	return h
}

func (h *harness) notice(r rate.Limit) {
	if r != rate.Inf && float64(r) > h.peakR {
		h.peakR = float64(r)
	}
}

func (h *harness) fail(format string, args ...any) {
	h.tb.Helper()
	h.tb.Errorf("%s\nhistory:\n%s", fmt.Sprintf(format, args...), h.history())
}

func (h *harness) history() string {
	s := ""
	start := max(0, len(h.log)-40)
	for _, l := range h.log[start:] {
		s += "  " + l + "\n"
	}
	return s
}

func (h *harness) xt(off time.Duration) time.Time {
	if h.clamp {
		off = max(off, h.lastMut)
	}
	return h.t0.Add(off)
}

func (h *harness) mutated(off time.Duration) {
	h.lastMut = max(h.lastMut, off)
}

func (h *harness) seen(off time.Duration) {
	if h.nseen == 0 {
		h.minT, h.maxT = off, off
	}
	h.nseen++
	h.minT, h.maxT = min(h.minT, off), max(h.maxT, off)
}

// relErr bounds weir's relative interval error for limit r (see state.go).
func relErr(r float64) float64 {
	if r <= 0 || r >= float64(rate.Inf) {
		return 0
	}
	iv := 1e9 / r
	if iv == math.Trunc(iv) && iv*0x1p20 >= 0x1p40 {
		return 1e-15
	}
	return 0.5 / math.Min(0x1p40, iv*0x1p20)
}

func (h *harness) tokTol(x float64) float64 {
	refill := h.peakR * (h.maxT - h.minT).Seconds()
	// Each side rounds a reservation's time to act to whole nanoseconds
	// (x/time truncates a float, weir floors ticks), so the two lastEvent
	// values can differ by a nanosecond; CancelAt turns that difference back
	// into tokens at the reservation's limit.
	rounding := float64(2*(h.cancels+1)) * 1e-9 * h.peakR
	return 1e-6 + 1e-12*math.Abs(x) + 2*relErr(h.peakR)*refill + rounding
}

// delayTol is the delay tolerance: 1µs, or the token tolerance expressed as
// time at the current limit, whichever is larger.
func (h *harness) delayTol() time.Duration {
	tol := time.Microsecond
	if l := float64(h.x.Limit()); l > 0 && l < float64(xrate.Inf) {
		if d := h.tokTol(0) / l * 1e9; d > float64(tol) {
			tol = time.Duration(math.Min(d, 1<<62))
		}
	}
	return tol
}

func (h *harness) allowN(off time.Duration, n int) bool {
	h.tb.Helper()
	h.seen(off)
	before := h.x.TokensAt(h.xt(off))
	w := h.w.AllowN(h.t0.Add(off), n)
	x := h.x.AllowN(h.xt(off), n)
	h.log = append(h.log, fmt.Sprintf("AllowN(%v, %d) = weir %v x/time %v (x/time tokens before %v)", off, n, w, x, before))
	if w != x {
		if n <= h.x.Burst() && math.Abs(before-float64(n)) <= h.tokTol(before)+h.marginTokens() {
			h.marginal = true
			return w
		}
		h.fail("AllowN(%v, %d): weir %v, x/time %v", off, n, w, x)
	}
	if x && h.x.Limit() != xrate.Inf {
		h.mutated(off)
	}
	return w
}

// marginTokens is the token amount that 2ns of refill is worth: both sides
// round the wait to whole nanoseconds.
func (h *harness) marginTokens() float64 {
	l := float64(h.x.Limit())
	if l >= float64(xrate.Inf) {
		return 0
	}
	return 2e-9 * l
}

func (h *harness) reserveN(off time.Duration, n int) {
	h.tb.Helper()
	h.seen(off)
	wr := h.w.ReserveN(h.t0.Add(off), n)
	xr := h.x.ReserveN(h.xt(off), n)
	wd, xd := wr.DelayFrom(h.t0.Add(off)), xr.DelayFrom(h.xt(off))
	h.log = append(h.log, fmt.Sprintf("ReserveN(%v, %d) #%d = weir (%v, %v) x/time (%v, %v)", off, n, len(h.wr), wr.OK(), wd, xr.OK(), xd))
	if wr.OK() != xr.OK() {
		h.fail("ReserveN(%v, %d).OK: weir %v, x/time %v", off, n, wr.OK(), xr.OK())
	}
	if !closeDur(wd, xd, h.delayTol()) {
		h.fail("ReserveN(%v, %d).DelayFrom: weir %v, x/time %v", off, n, wd, xd)
	}
	if xr.OK() && h.x.Limit() != xrate.Inf {
		h.mutated(off)
	}
	if xr.OK() && xd > 100*365*24*time.Hour {
		h.saturated = true
	}
	h.wr, h.xr = append(h.wr, wr), append(h.xr, xr)
}

func closeDur(a, b, tol time.Duration) bool {
	if a == b {
		return true
	}
	// Saturated values (InfDuration and neighbours) are compared loosely.
	if a > 1<<62 && b > 1<<62 {
		return true
	}
	d := a - b
	return d <= tol && d >= -tol
}

func (h *harness) tokensAt(off time.Duration) {
	h.tb.Helper()
	h.seen(off)
	w := h.w.TokensAt(h.t0.Add(off))
	x := h.x.TokensAt(h.xt(off))
	h.log = append(h.log, fmt.Sprintf("TokensAt(%v) = weir %v x/time %v", off, w, x))
	if math.Abs(w-x) > h.tokTol(x) && !(math.IsInf(x, 0) && w == x) {
		h.fail("TokensAt(%v): weir %v, x/time %v (tolerance %g)", off, w, x, h.tokTol(x))
	}
}

func (h *harness) setLimitAt(off time.Duration, l rate.Limit) {
	h.seen(off)
	h.notice(l)
	h.log = append(h.log, fmt.Sprintf("SetLimitAt(%v, %v)", off, l))
	h.w.SetLimitAt(h.t0.Add(off), l)
	h.x.SetLimitAt(h.xt(off), xrate.Limit(l))
	h.mutated(off)
	h.checkConfig()
}

func (h *harness) setBurstAt(off time.Duration, b int) {
	h.seen(off)
	h.log = append(h.log, fmt.Sprintf("SetBurstAt(%v, %v)", off, b))
	h.w.SetBurstAt(h.t0.Add(off), b)
	h.x.SetBurstAt(h.xt(off), b)
	h.mutated(off)
	h.checkConfig()
}

// cancelAt cancels reservation i at off. Cancels are only compared in
// forward mode: whether an x/time cancel moved its "last" is not observable,
// so the clamped model cannot track it.
func (h *harness) cancelAt(i int, off time.Duration) {
	h.tb.Helper()
	if i < 0 || i >= len(h.wr) || h.clamp || h.saturated {
		return
	}
	h.seen(off)
	h.log = append(h.log, fmt.Sprintf("CancelAt(#%d, %v)", i, off))
	h.cancels++
	h.wr[i].CancelAt(h.t0.Add(off))
	h.xr[i].CancelAt(h.xt(off))
}

func (h *harness) checkConfig() {
	h.tb.Helper()
	if float64(h.w.Limit()) != float64(h.x.Limit()) && !(math.IsNaN(float64(h.w.Limit())) && math.IsNaN(float64(h.x.Limit()))) {
		h.fail("Limit: weir %v, x/time %v", h.w.Limit(), h.x.Limit())
	}
	if h.w.Burst() != h.x.Burst() {
		h.fail("Burst: weir %v, x/time %v", h.w.Burst(), h.x.Burst())
	}
}
