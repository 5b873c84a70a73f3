package algo

// The sliding-window counter: windows of length Period aligned to the epoch;
// the units in the previous window are weighted by the part of it that the
// sliding window (now-Period, now] still covers:
//
//	estimate = prev*(Period-elapsed)/Period + curr
//
// and a request of cost n is admitted when estimate + n <= Quota, computed
// exactly in integers. The estimate assumes the previous window's traffic was
// spread evenly; against an exact log it can admit up to 2*Quota in one
// Period in the adversarial worst case (everything at the end of one window,
// then everything at the start of the next is still partly counted), and
// it never rejects while the exact count is below Quota minus the previous
// window's weighted share.

// counterRoll returns the current window start and the units in the
// current and previous windows at now.
func counterRoll(p *Params, s *State, now int64) (start, curr, prev int64) {
	start = windowStart(now, p.Period)
	switch {
	case s.A == start:
		return start, s.B, s.C
	case s.A == start-p.Period:
		return start, 0, s.B
	case s.A > start && (s.B > 0 || s.C > 0):
		// Clock went back: keep the later windows so no units are minted.
		return s.A, s.B, s.C
	}
	return start, 0, 0
}

// counterFits reports whether prev*(Period-elapsed) + (curr+n)*Period <= Quota*Period.
func counterFits(p *Params, prev, curr, n, elapsed int64) bool {
	if n > p.Quota-curr { // not curr+n: Quota may be MaxInt64
		return false
	}
	if prev == 0 || elapsed >= p.Period {
		return true
	}
	// prev*(Period-elapsed) <= (Quota-curr-n)*Period, in 128 bits.
	lq, lr, lok := mulDiv(prev, p.Period-elapsed, p.Period)
	// lhs/Period = lq + lr/Period; compare with Quota-curr-n.
	free := p.Quota - curr - n
	if !lok {
		return false
	}
	return lq < free || (lq == free && lr == 0)
}

// counterAvail is floor(Quota - curr - prev*(Period-elapsed)/Period), at least 0.
func counterAvail(p *Params, prev, curr, elapsed int64) int64 {
	used := curr
	if prev > 0 && elapsed < p.Period {
		lq, lr, _ := mulDiv(prev, p.Period-elapsed, p.Period)
		used = satAdd(used, lq)
		if lr > 0 {
			used = satAdd(used, 1)
		}
	}
	return max(0, p.Quota-used)
}

// counterWait is how long after now a request of n units fits.
func counterWait(p *Params, start, curr, prev, n, now int64) int64 {
	elapsed := now - start
	if n <= p.Quota-curr {
		// Wait inside this window for prev's weight to fall:
		// prev*(Period-e) <= free*Period  <=>  e >= Period - free*Period/prev.
		free := p.Quota - curr - n
		q, _, _ := mulDiv(free, p.Period, prev)
		need := p.Period - q // smallest e with prev*(Period-e) <= free*Period
		if need < elapsed {
			need = elapsed
		}
		return need - elapsed
	}
	// Wait for the next window, where prev := curr and curr := 0.
	if curr == 0 {
		return start + p.Period - now
	}
	free := p.Quota - n
	q, _, _ := mulDiv(free, p.Period, curr)
	need := max(0, p.Period-q)
	return start + p.Period + need - now
}

func counterCheck(p *Params, s *State, now, cost int64) Result {
	start, curr, prev := counterRoll(p, s, now)
	elapsed := now - start
	n := max(cost, 1)
	// reset is ResetAfter when the current window holds c units.
	reset := func(c int64) int64 {
		switch {
		case c > 0:
			return start + 2*p.Period - now
		case prev > 0:
			return start + p.Period - now
		}
		return 0
	}
	if !counterFits(p, prev, curr, n, elapsed) {
		// A denial charges nothing: the reset is that of the state as is.
		r := counterAvail(p, prev, curr, elapsed)
		return Result{
			Remaining:  r,
			RetryAfter: max(1, counterWait(p, start, curr, prev, n, now)),
			ResetAfter: reset(curr),
		}
	}
	return Result{
		Allowed:    true,
		Remaining:  counterAvail(p, prev, curr+cost, elapsed),
		ResetAfter: reset(curr + cost),
	}
}

func counterCommit(p *Params, s *State, now, cost int64) {
	start, curr, prev := counterRoll(p, s, now)
	s.A, s.B, s.C = start, curr+cost, prev
}

func counterRefund(p *Params, s *State, now, at, cost int64) {
	start, curr, prev := counterRoll(p, s, now)
	switch windowStart(at, p.Period) {
	case start:
		curr = max(0, curr-cost)
	case start - p.Period:
		prev = max(0, prev-cost)
	}
	s.A, s.B, s.C = start, curr, prev
}
