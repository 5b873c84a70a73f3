package rate

import (
	"math"
	"time"
)

// A Reservation holds information about events that are permitted by a
// Limiter to happen after a delay. A Reservation may be canceled, which may
// enable the Limiter to permit additional events.
//
// The zero Reservation is not OK.
type Reservation struct {
	ok     bool
	lim    *Limiter
	tokens int
	at     int64 // the caller's t, ns on the internal axis
	wait   int64 // ns from at until the tokens are available
	end    int64 // end of the reservation on the limiter's timeline (lastEvent)
	start  int64 // end minus the time its tokens take to accrue
	limit  Limit // the limit when the reservation was made
}

// OK reports whether the limiter can provide the requested number of tokens
// within the maximum wait time. If OK is false, Delay returns InfDuration and
// Cancel does nothing.
func (r *Reservation) OK() bool {
	return r.ok
}

// Delay is shorthand for DelayFrom(time.Now()), reading only the monotonic
// clock.
func (r *Reservation) Delay() time.Duration {
	return r.delayFrom(nowNs())
}

// DelayFrom returns how long the reservation holder must wait from t before
// taking the reserved action. Zero means act immediately. InfDuration means
// the limiter cannot grant the requested tokens within the maximum wait time.
func (r *Reservation) DelayFrom(t time.Time) time.Duration {
	return r.delayFrom(timeToNs(t))
}

func (r *Reservation) delayFrom(t int64) time.Duration {
	if !r.ok {
		return InfDuration
	}
	d := addSat(r.wait, subSat(r.at, t))
	if d < 0 {
		return 0
	}
	return time.Duration(d)
}

// act is the time at which the reservation holder may act.
func (r *Reservation) act() int64 {
	return addSat(r.at, r.wait)
}

// Cancel is shorthand for CancelAt(time.Now()).
func (r *Reservation) Cancel() {
	r.cancelAt(nowNs())
}

// CancelAt indicates that the reservation holder will not perform the
// reserved action, and reverses the effect of the Reservation on the rate
// limit as far as possible given that other reservations may have been made
// since. It does nothing if the Reservation is not OK, reserved no tokens, was
// made while the limit was Inf (and the limit still is), or if its time to act
// is before t.
func (r *Reservation) CancelAt(t time.Time) {
	r.cancelAt(timeToNs(t))
}

func (r *Reservation) cancelAt(t int64) {
	if !r.ok {
		return
	}
	lim := r.lim
	lim.mu.Lock()
	defer lim.mu.Unlock()
	v := lim.viewLocked()
	s := v.s
	if s.kind == kindInf || r.tokens == 0 || r.act() < t {
		v.unfreeze()
		return
	}
	// Tokens reserved after r (between r's end and the latest reservation's
	// end) cannot be given back without invalidating those reservations.
	restore := float64(r.tokens) - tokensFor(r.limit, subSat(v.ev, r.end))
	if restore <= 0 {
		v.unfreeze()
		return
	}
	te := max(t, v.last)
	tokens := min(v.tokensAt(te)+restore, float64(s.burst))
	ev := v.ev
	if r.end == v.ev {
		// r was the latest reservation: the queue now ends where r began,
		// unless that is already in the past. (x/time recomputes this point
		// in floating point; weir recorded it in integer ticks when r was
		// made, so it equals the previous reservation's end exactly.)
		if r.start >= t {
			ev = r.start
		}
	}
	if s.kind == kindZero {
		s.tok.Store(math.Float64bits(tokens))
		s.last.Store(te)
		s.ev = ev
		return
	}
	lim.st.Store(build(s.limit, s.burst, snap{at: te, tokens: tokens, last: te, ev: ev}, te))
}
