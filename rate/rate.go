package rate

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limit defines the maximum frequency of some events, in events per second.
// A zero Limit allows no events beyond the initial burst.
type Limit float64

// Inf is the infinite rate limit; it allows all events, even if burst is zero.
const Inf = Limit(math.MaxFloat64)

// InfDuration is the duration returned by Delay when a Reservation is not OK.
const InfDuration = time.Duration(math.MaxInt64)

// Every converts a minimum time interval between events to a Limit.
// A non-positive interval yields Inf.
func Every(interval time.Duration) Limit {
	if interval <= 0 {
		return Inf
	}
	return Limit(1 / interval.Seconds())
}

// A Limiter controls how frequently events are allowed to happen. It is a
// token bucket of size b, initially full and refilled at r tokens per second.
// If r == Inf, b is ignored.
//
// The zero value is a valid Limiter that rejects every event; use NewLimiter
// to create a useful one.
//
// Allow, Reserve and Wait each consume one token and differ in what they do
// when none is available: Allow reports false, Reserve returns a Reservation
// for a future token, and Wait blocks until the token is available or its
// context is done. AllowN, ReserveN and WaitN consume n tokens.
//
// A Limiter is safe for concurrent use; see the package documentation for its
// concurrency guarantees. A Limiter must not be copied after first use.
type Limiter struct {
	st atomic.Pointer[state]
	mu sync.Mutex // serialises slow-path changes; see state.go
}

// NewLimiter returns a new Limiter that allows events up to rate r and
// permits bursts of at most b tokens. The bucket starts full.
func NewLimiter(r Limit, b int) *Limiter {
	lim := &Limiter{}
	lim.st.Store(build(r, b, snap{full: true, last: math.MinInt64, ev: math.MinInt64}, 0))
	return lim
}

// zeroState is the state of a zero Limiter.
func zeroState() *state {
	return build(0, 0, snap{last: math.MinInt64, ev: math.MinInt64}, 0)
}

// Limit returns the maximum overall event rate.
func (lim *Limiter) Limit() Limit {
	if s := lim.st.Load(); s != nil {
		return s.limit
	}
	return 0
}

// Burst returns the maximum burst size: the largest number of tokens that a
// single call to Allow, Reserve or Wait can consume. A zero Burst allows no
// events, unless the limit is Inf.
func (lim *Limiter) Burst() int {
	if s := lim.st.Load(); s != nil {
		return s.burst
	}
	return 0
}

// TokensAt returns the number of tokens available at time t.
// A t earlier than the latest state change is treated as that time.
func (lim *Limiter) TokensAt(t time.Time) float64 {
	return lim.tokensAt(timeToNs(t))
}

// Tokens returns the number of tokens available now.
func (lim *Limiter) Tokens() float64 {
	return lim.tokensAt(nowNs())
}

func (lim *Limiter) tokensAt(t int64) float64 {
	s := lim.st.Load()
	if s == nil {
		return 0
	}
	te := max(t, s.last.Load())
	switch s.kind {
	case kindFinite:
		// A frozen word still holds the state before the pending slow-path
		// change, which is a consistent snapshot to read.
		return s.finiteTokens(te, s.hot.Load()>>flagBits)
	case kindInf:
		if t > s.last.Load() {
			return float64(s.burst)
		}
	}
	return min(math.Float64frombits(s.tok.Load()), float64(s.burst))
}

// Allow reports whether an event may happen now. It is shorthand for
// AllowN(time.Now(), 1) but reads only the monotonic clock.
func (lim *Limiter) Allow() bool {
	return lim.reserve(nowNs(), 1, 0).ok
}

// AllowN reports whether n events may happen at time t, consuming the tokens
// if so. Use it to drop or skip events that exceed the rate limit; use
// Reserve or Wait to delay them instead.
func (lim *Limiter) AllowN(t time.Time, n int) bool {
	return lim.reserve(timeToNs(t), n, 0).ok
}

// Reserve is shorthand for ReserveN(time.Now(), 1).
func (lim *Limiter) Reserve() *Reservation {
	return lim.reserveAt(nowNs(), 1)
}

// ReserveN returns a Reservation that indicates how long the caller must wait
// before n events happen. The Limiter takes the Reservation into account when
// allowing future events. The Reservation's OK method reports false if n
// exceeds the Limiter's burst size (and the limit is not Inf). Usage:
//
//	r := lim.ReserveN(time.Now(), 1)
//	if !r.OK() {
//		// Not allowed to act: is the burst at least 1?
//		return
//	}
//	time.Sleep(r.Delay())
//	act()
//
// Use ReserveN to slow down without dropping events. To respect a deadline or
// to be able to give up, use Wait; to drop events, use Allow.
func (lim *Limiter) ReserveN(t time.Time, n int) *Reservation {
	return lim.reserveAt(timeToNs(t), n)
}

func (lim *Limiter) reserveAt(t int64, n int) *Reservation {
	o := lim.reserve(t, n, math.MaxInt64)
	r := &Reservation{ok: o.ok, lim: lim, limit: o.limit}
	if o.ok {
		r.tokens = n
		r.at = t
		r.wait = o.wait
		r.end = o.end
		r.start = o.start
	}
	return r
}

// SetLimit is shorthand for SetLimitAt(time.Now(), newLimit).
func (lim *Limiter) SetLimit(newLimit Limit) {
	lim.setAt(nowNs(), newLimit, 0, false)
}

// SetLimitAt sets a new Limit for the limiter as of time t. Tokens accrued up
// to t are kept. Outstanding reservations keep the delays they were given, so
// the new Limit and Burst may be briefly violated or under-used.
func (lim *Limiter) SetLimitAt(t time.Time, newLimit Limit) {
	lim.setAt(timeToNs(t), newLimit, 0, false)
}

// SetBurst is shorthand for SetBurstAt(time.Now(), newBurst).
func (lim *Limiter) SetBurst(newBurst int) {
	lim.setAt(nowNs(), 0, newBurst, true)
}

// SetBurstAt sets a new burst size for the limiter as of time t.
func (lim *Limiter) SetBurstAt(t time.Time, newBurst int) {
	lim.setAt(timeToNs(t), 0, newBurst, true)
}

func (lim *Limiter) setAt(t int64, newLimit Limit, newBurst int, burst bool) {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	v := lim.viewLocked()
	te := max(t, v.last)
	limit, b := newLimit, v.s.burst
	if burst {
		limit, b = v.s.limit, newBurst
	}
	lim.st.Store(build(limit, b, snap{at: te, tokens: v.tokensAt(te), last: te, ev: v.ev}, te))
}

// outcome is the result of one token-bucket transaction.
type outcome struct {
	ok    bool
	wait  int64 // ns to wait from the caller's t
	end   int64 // the reservation's end on the limiter's own timeline
	start int64 // where the reservation's tokens begin (end minus their duration)
	limit Limit // limit in force (zero for Inf, like x/time)
}

// reserve takes n tokens at time t (ns) if they are available within maxWait
// ns. This is the lock-free hot path; it defers to reserveSlow for anything
// outside the integer fast case.
func (lim *Limiter) reserve(t int64, n int, maxWait int64) outcome {
	for {
		s := lim.st.Load()
		if s == nil {
			if n > 0 {
				return outcome{} // the zero Limiter has burst 0
			}
			return lim.reserveSlow(t, n, maxWait)
		}
		switch s.kind {
		case kindInf:
			return outcome{ok: true, end: t, start: t}
		case kindZero:
			if n > s.burst {
				return outcome{limit: s.limit}
			}
			return lim.reserveSlow(t, n, maxWait)
		}
		if n > s.burst {
			return outcome{limit: s.limit}
		}
		h := s.hot.Load()
		if h&flagFrozen != 0 {
			// A slow-path change is in progress; it holds mu until done.
			lim.mu.Lock()
			//lint:ignore SA2001 the empty critical section waits for that writer.
			lim.mu.Unlock()
			continue
		}
		last := s.last.Load()
		te := max(t, last)
		tt, inRange := s.ticks(te)
		if !inRange || uint64(n) > uint64(s.nMax) {
			return lim.reserveSlow(t, n, maxWait)
		}
		z := max(h>>flagBits, tt-s.bIv) + int64(n)*s.iv
		if z >= zLimit {
			return lim.reserveSlow(t, n, maxWait)
		}
		var wait int64
		if z > tt {
			wait = s.ticksToNs(z - tt)
			if wait > maxWait {
				return outcome{limit: s.limit}
			}
		}
		if t > last && !s.last.CompareAndSwap(last, t) {
			s.raiseLast(t)
		}
		// Committing clears flagEvent: lastEvent is now derivable from z.
		if s.hot.CompareAndSwap(h, z<<flagBits) {
			start := addSat(s.base, s.ticksToNs(z-int64(n)*s.iv))
			return outcome{ok: true, wait: wait, end: addSat(te, wait), start: start, limit: s.limit}
		}
	}
}

// reserveSlow performs a reservation under mu using x/time's float
// arithmetic, then stores the result as a freshly built state (or, for
// kindZero, in place). It also rebases a finite state whose window no longer
// covers the current time.
func (lim *Limiter) reserveSlow(t int64, n int, maxWait int64) outcome {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	v := lim.viewLocked()
	s := v.s
	if s.kind == kindInf {
		v.unfreeze()
		return outcome{ok: true, end: t, start: t}
	}
	te := max(t, v.last)
	tokens := v.tokensAt(te) - float64(n)
	var wait int64
	if tokens < 0 {
		wait = durationFor(s.limit, -tokens)
	}
	ok := n <= s.burst && wait <= maxWait
	end := addSat(te, wait)
	switch {
	case s.kind == kindZero:
		if ok {
			s.tok.Store(math.Float64bits(tokens))
			s.last.Store(te)
			s.ev = end
		}
	case ok:
		lim.st.Store(build(s.limit, s.burst, snap{at: te, tokens: tokens, last: te, ev: end}, te))
	default:
		// Not granted: re-centre the window on te without changing meaning.
		// The snapshot is taken at last, so calls between last and te still
		// see the exact state.
		sn := snap{at: v.last, last: v.last, ev: v.ev}
		if v.z <= zFull {
			sn.full = true
		} else {
			sn.tokens = v.tokensAt(v.last)
		}
		lim.st.Store(build(s.limit, s.burst, sn, te))
	}
	if !ok {
		return outcome{limit: s.limit}
	}
	start := addSat(end, durationFor(s.limit, -float64(n)))
	return outcome{ok: true, wait: wait, end: end, start: start, limit: s.limit}
}

// view is a consistent snapshot of the current state, taken under mu with
// the hot word frozen.
type view struct {
	s    *state
	h    int64 // hot word before freezing (finite)
	z    int64 // zero point (finite)
	last int64
	ev   int64 // lastEvent
}

// viewLocked freezes the current state and returns a view of it. The caller
// must hold mu and must either publish a new state or call unfreeze.
func (lim *Limiter) viewLocked() view {
	s := lim.st.Load()
	if s == nil {
		s = zeroState()
		lim.st.Store(s)
	}
	v := view{s: s, ev: s.ev}
	if s.kind == kindFinite {
		for {
			h := s.hot.Load()
			if s.hot.CompareAndSwap(h, h|flagFrozen) {
				v.h, v.z = h, h>>flagBits
				break
			}
		}
	}
	// Read last after freezing: every committed reservation raised it before
	// its compare-and-swap.
	v.last = s.last.Load()
	if s.kind == kindFinite && v.h&flagEvent == 0 {
		v.ev = max(v.last, addSat(s.base, s.ticksToNs(v.z)))
	}
	return v
}

// unfreeze releases a view without changing the state.
func (v *view) unfreeze() {
	if v.s.kind == kindFinite {
		v.s.hot.Store(v.h)
	}
}

// tokensAt returns the tokens held at x (ns), which must not be before v.last.
func (v *view) tokensAt(x int64) float64 {
	s := v.s
	switch s.kind {
	case kindFinite:
		return s.finiteTokens(x, v.z)
	case kindInf:
		if x > v.last {
			return float64(s.burst)
		}
	}
	return min(math.Float64frombits(s.tok.Load()), float64(s.burst))
}
