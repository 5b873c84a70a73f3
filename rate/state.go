package rate

import (
	"math"
	"sync/atomic"
)

// Internal representation
//
// A finite, positive Limit is kept as a generic cell rate algorithm (GCRA)
// "zero point" z: the instant at which the bucket would hold exactly zero
// tokens if it had never been capped. At any time x the bucket holds
//
//	min(burst, (x - z) / interval)
//
// tokens, so refill is implicit and a reservation of n tokens is a single
// integer addition z += n*interval. Time is integer nanoseconds on an internal
// axis (see clock.go) scaled into "ticks" of 2^-f ns so that intervals which
// are not a whole number of nanoseconds (for example 1/3 s or 1/7e6 s) are
// still represented to better than one part in 2^40 where possible. The scale
// f and the origin (base) are fixed for one state value; the hot path works on
// ticks relative to base and falls back to the mutex-protected slow path,
// which builds a fresh state, when a time or the zero point leaves the
// representable window.
//
// The zero point lives in the hot word together with two flag bits and is
// updated with a single compare-and-swap. The time of the most recent
// state-changing call ("last") lives in a second word that only ever grows;
// it is raised before the compare-and-swap of the operation that needs it, so
// a slow-path operation that has frozen the hot word always sees a last that
// is at least as new as every committed reservation.

const (
	flagFrozen = 1 << 0 // a slow-path operation owns the state; hot path must wait
	flagEvent  = 1 << 1 // state.ev holds lastEvent; otherwise it is derived from z
	flagBits   = 2

	zLimit = 1 << 61 // |z| < zLimit so that z<<flagBits fits in an int64
	tLimit = 1 << 60 // |time - base| in ticks stays within ±tLimit
	bLimit = 1 << 59 // |burst*interval| and |tokens*interval| in ticks stay within bLimit

	// zFull marks a bucket that is full at every representable time (a new
	// Limiter). Any time in range satisfies tt-bIv >= zFull.
	zFull = -(tLimit + bLimit)

	// fMax bounds the sub-nanosecond scale. With f = 20 the window is ±2^40 ns
	// (about 18 minutes) around base before a rebase is needed, and the interval
	// keeps a relative precision of at least 0.5/(interval_ns*2^20).
	fMax = 20
)

type kind uint8

const (
	kindZero   kind = iota // Limit <= 0, NaN, or so small that no token ever accrues
	kindFinite             // 0 < Limit < Inf
	kindInf                // Limit == Inf
)

// state is one immutable configuration of a Limiter plus the mutable words
// that belong to it. SetLimitAt, SetBurstAt, effective CancelAt calls and
// rebases publish a new state; the old one stays frozen forever, so a
// compare-and-swap prepared against it can never succeed (no ABA).
type state struct {
	limit Limit
	burst int
	kind  kind

	// kindFinite only.
	fl, fr uint    // ticks = ns << fl >> fr (one of them is zero)
	base   int64   // ns on the internal axis that maps to tick 0
	maxD   int64   // largest |ns - base| the hot path converts to ticks
	iv     int64   // interval between tokens, in ticks (>= 1)
	bIv    int64   // burst*iv, clamped to ±bLimit
	nMax   int64   // largest n for which n*iv <= bLimit
	capTok float64 // min(burst, bIv/iv): the token ceiling

	// hot holds z<<flagBits | flags (kindFinite only).
	hot atomic.Int64
	// last is the latest time (ns) at which the state changed; it never
	// decreases. math.MinInt64 means "never" (x/time's zero Time).
	last atomic.Int64
	// tok holds the token count as float64 bits: kindZero (mutable under
	// Limiter.mu) and kindInf (immutable), both measured at last.
	tok atomic.Uint64
	// ev is lastEvent in ns: always for kindZero and kindInf, and for
	// kindFinite while flagEvent is set. Accessed under Limiter.mu only.
	ev int64
}

func kindOf(l Limit) kind {
	switch {
	case l == Inf:
		return kindInf
	case l > 0:
		// Rates below ~8e-22/s cannot accrue a token in 292 years; treat them
		// as zero so the scale search below always terminates.
		if 1e9/float64(l) < 0x1p100 {
			return kindFinite
		}
	}
	return kindZero
}

// snap is a limiter state expressed in limit-independent terms, used to build
// a new state value.
type snap struct {
	at     int64   // ns at which tokens is measured
	tokens float64 // tokens at at, already capped by the old burst
	full   bool    // the bucket is full at every time (a fresh limiter)
	last   int64   // new value for last
	ev     int64   // lastEvent
}

// build returns a new state for limit and burst holding sn. base is the
// origin for kindFinite ticks; callers pass the time they are working at so
// that the new window is centred on it.
func build(limit Limit, burst int, sn snap, base int64) *state {
	s := &state{limit: limit, burst: burst, kind: kindOf(limit), ev: sn.ev}
	s.last.Store(sn.last)
	if s.kind != kindFinite {
		tok := sn.tokens
		if sn.full {
			tok = float64(burst)
		}
		s.tok.Store(math.Float64bits(tok))
		return s
	}

	interval := 1e9 / float64(limit) // ns per token
	mag := math.Abs(sn.tokens)
	if sn.full {
		mag = 0
	}
	f, iv := chooseScale(interval, burst, mag)
	if f >= 0 {
		s.fl = uint(f)
		s.maxD = tLimit >> s.fl
	} else {
		s.fr = uint(-f)
		s.maxD = 1 << 62
		if s.fr < 2 {
			s.maxD = tLimit << s.fr
		}
	}
	s.base = base
	s.iv = iv
	s.nMax = bLimit / iv
	s.capTok = float64(burst)
	switch {
	case int64(burst) > s.nMax:
		s.bIv = s.nMax * iv
		s.capTok = float64(s.nMax)
	case int64(burst) < -s.nMax:
		s.bIv = -s.nMax * iv
		s.capTok = float64(-s.nMax)
	default:
		s.bIv = int64(burst) * iv
	}

	z := int64(zFull)
	if !sn.full {
		var at int64
		switch d := subSat(sn.at, base); {
		case d > s.maxD:
			at = tLimit
		case d < -s.maxD:
			at = -tLimit
		default:
			at = d << s.fl >> s.fr
		}
		tv := math.Round(sn.tokens * float64(iv))
		tv = math.Max(-bLimit, math.Min(bLimit, tv))
		z = at - int64(tv)
	}
	z = min(max(z, zFull), zLimit-1)
	s.hot.Store(z<<flagBits | flagEvent)
	return s
}

// chooseScale picks the tick scale f (ticks = ns*2^f) and the interval in
// ticks. The interval gets about 41 significant bits (so fractional token
// amounts, e.g. after SetLimit, are kept to ~2^-41 of a token), limited to
// f <= fMax; long whole-nanosecond intervals use f = 0, which is exact. The
// scale is then lowered while burst or the token magnitude would not fit, but
// never below ~20 significant bits; beyond that the ceiling is clamped
// instead (only for refill periods longer than decades).
func chooseScale(interval float64, burst int, mag float64) (f int, iv int64) {
	_, e := math.Frexp(interval) // interval = m * 2^e, m in [0.5, 1)
	f = min(41-e, fMax)
	if f < 0 && interval == math.Trunc(interval) && interval <= bLimit {
		f = 0 // whole nanoseconds with 41+ bits: exact at the widest window
	}
	for ; ; f-- {
		sc := math.Ldexp(interval, f)
		if sc > bLimit {
			continue
		}
		iv = max(1, int64(math.Round(sc)))
		fits := math.Abs(float64(burst))*float64(iv) <= bLimit && mag*float64(iv) <= bLimit
		if fits || iv <= 1<<20 {
			return f, iv
		}
	}
}

// ticks converts a time on the internal axis to ticks relative to base,
// reporting false if it is outside the hot-path window.
func (s *state) ticks(t int64) (int64, bool) {
	d := t - s.base
	if (t^s.base)&(t^d) < 0 || d > s.maxD || d < -s.maxD {
		return 0, false
	}
	return d << s.fl >> s.fr, true
}

// ticksToNs converts a tick difference to nanoseconds, rounding toward
// negative infinity and saturating.
func (s *state) ticksToNs(x int64) int64 {
	x >>= s.fl
	if s.fr != 0 {
		if x > math.MaxInt64>>s.fr {
			return math.MaxInt64
		}
		if x < math.MinInt64>>s.fr {
			return math.MinInt64
		}
		x <<= s.fr
	}
	return x
}

// finiteTokens returns the tokens held at time x (ns) given zero point z.
func (s *state) finiteTokens(x, z int64) float64 {
	if z <= zFull {
		return s.capTok
	}
	var v float64
	if tt, ok := s.ticks(x); ok {
		v = float64(tt-z) / float64(s.iv)
	} else {
		d := float64(x) - float64(s.base)
		v = (math.Ldexp(d, int(s.fl)-int(s.fr)) - float64(z)) / float64(s.iv)
	}
	return min(v, s.capTok)
}

// raiseLast makes last at least t.
func (s *state) raiseLast(t int64) {
	for {
		l := s.last.Load()
		if t <= l || s.last.CompareAndSwap(l, t) {
			return
		}
	}
}

// tokensFor converts a duration to the tokens accrued at limit l during it,
// following x/time's float arithmetic.
func tokensFor(l Limit, d int64) float64 {
	if !(l > 0) {
		return 0
	}
	return durationSeconds(d) * float64(l)
}

// durationSeconds is time.Duration.Seconds for an int64 nanosecond count.
func durationSeconds(d int64) float64 {
	sec := d / 1e9
	nsec := d % 1e9
	return float64(sec) + float64(nsec)/1e9
}

// durationFor converts tokens to the time needed to accrue them at limit l,
// in ns, truncated toward zero and saturating, like x/time.
func durationFor(l Limit, tokens float64) int64 {
	if !(l > 0) {
		return math.MaxInt64
	}
	d := tokens / float64(l) * 1e9
	switch {
	case d >= math.MaxInt64:
		return math.MaxInt64
	case d <= math.MinInt64:
		return math.MinInt64
	}
	return int64(d)
}
