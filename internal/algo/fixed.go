package algo

// The fixed window: windows of length Period aligned to the Unix epoch (as
// envoyproxy/ratelimit does, so a daily limit resets at 00:00 UTC), each
// admitting at most Quota units. Two full windows meet at a boundary, so an
// interval of length T admits at most Quota*(ceil(T/Period)+1) units: up to
// 2*Quota in an arbitrarily short interval around a boundary.

func fixedUsed(p *Params, s *State, now int64) (start, used int64) {
	start = windowStart(now, p.Period)
	if s.A == start {
		return start, s.B
	}
	if s.A > start && s.B > 0 {
		// The clock went back into an earlier window: keep counting in the
		// later window so going back never mints units.
		return s.A, s.B
	}
	return start, 0
}

func fixedCheck(p *Params, s *State, now, cost int64) Result {
	start, used := fixedUsed(p, s, now)
	end := start + p.Period
	n := max(cost, 1)
	if n > p.Quota-used { // not used+n: Quota may be MaxInt64
		return Result{
			Remaining:  max(0, p.Quota-used), // a forced charge, or a lowered Quota, may pass it
			RetryAfter: end - now,
			ResetAfter: end - now,
		}
	}
	res := Result{Allowed: true, Remaining: p.Quota - used - cost}
	if used+cost > 0 {
		res.ResetAfter = end - now
	}
	return res
}

func fixedCommit(p *Params, s *State, now, cost int64) {
	start, used := fixedUsed(p, s, now)
	s.A, s.B = start, used+cost
}

func fixedRefund(p *Params, s *State, at, cost int64) {
	if s.A == windowStart(at, p.Period) {
		s.B = max(0, s.B-cost)
	}
}
