package algo

// Forced charges: costs known after the work.
//
// A forced charge of cost n takes n units whether or not they are
// available; a limit may go into debt (see docs/costs.md):
//
//	TokenBucket:          TAT ← max(TAT, now) + n·I, at most now + τ + D·I
//	FixedWindow:          the window's count passes Quota, at most Quota + D
//	SlidingWindowCounter: the current count passes Quota, at most until the
//	                      weighted estimate is Quota + D
//	SlidingWindowLog:     an event of n units at now, at most until the
//	                      window holds Quota + D; a charge into debt merges
//	                      into the newest live event, moved up to now
//
// where D is the debt cap (Params.DebtCap: MaxDebt, or when 0
// MaxDebtUnits, for the token bucket at most 100 years of units). The
// rest of a charge past the cap is dropped and the Result says Clamped.
// Windows forget debt as they forget any count: the fixed window at its
// end, the counter after two windows, the log Period after the event.

// DebtCap is the most units the limit may owe beyond empty: MaxDebt, or
// when 0 MaxDebtUnits, and for the token bucket at most the units of
// MaxPeriod (so that the TAT stays within now + τ + 100 years).
func (p *Params) DebtCap() int64 {
	c := int64(MaxDebtUnits)
	if p.MaxDebt > 0 {
		c = p.MaxDebt
	}
	if p.Kind == TokenBucket {
		// Validate keeps a MaxDebt within 100 years; this also covers
		// params it did not see (a store's scaled-down share of a limit).
		if u, _, ok := mulDiv(MaxPeriod, p.Quota, p.Period); ok && u < c {
			return u
		}
	}
	return c
}

// Force charges cost units to every limit of ps at now whether or not they
// fit, and returns each limit's Result (into out when len(out) == len(ps))
// and the index and Result of the limit worst off after the charge: the
// longest RetryAfter (until one unit is back), else the fewest Remaining
// (ties: the first). Every Result is Allowed. Concurrency limits must not
// be passed (they are left alone). cost must be in [0, MaxDebtUnits]; 0
// is a peek.
func Force(ps []Params, ss []*State, now, cost int64, out []Result) (decider int, agg Result) {
	decider = -1
	clamped := false
	for i := range ps {
		r := force(&ps[i], ss[i], now, cost)
		if len(out) == len(ps) {
			out[i] = r
		}
		switch {
		case decider < 0:
			decider, agg = i, r
		case r.RetryAfter > agg.RetryAfter:
			decider, agg = i, r
		case r.RetryAfter == agg.RetryAfter && r.Remaining < agg.Remaining:
			decider, agg = i, r
		}
		clamped = clamped || r.Clamped
	}
	agg.Clamped = clamped
	return decider, agg
}

// force charges one limit and returns what it holds after: a peek's
// Result (for one unit), Allowed, with Debt and Clamped.
func force(p *Params, s *State, now, cost int64) Result {
	var clamped bool
	var debt int64
	if cost > 0 {
		switch p.Kind {
		case TokenBucket:
			clamped = gcraForce(p, s, now, cost)
		case FixedWindow:
			start, used := fixedUsed(p, s, now)
			var add int64
			add, clamped = capAdd(used, cost, p.Quota, p.DebtCap())
			s.A, s.B = start, used+add
		case SlidingWindowCounter:
			start, curr, prev := counterRoll(p, s, now)
			var add int64
			add, clamped = capAdd(counterUsed(p, prev, curr, now-start), cost, p.Quota, p.DebtCap())
			s.A, s.B, s.C = start, curr+add, prev
		case SlidingWindowLog:
			used := logUsed(p, s, now)
			var add int64
			add, clamped = capAdd(used, cost, p.Quota, p.DebtCap())
			if k := len(s.Log); add > 0 && used+add > p.Quota && k > 0 && s.Log[k-1].At > now-p.Period {
				// Into debt: merge into the newest live event, moved up to
				// now, rather than add one. Its units then stay in the
				// window longer (never admitting more), and the log keeps
				// at most Quota events plus one, however many charges.
				e := &s.Log[k-1]
				e.At, e.Cost = max(e.At, now), e.Cost+add
			} else if add > 0 {
				logCommit(p, s, now, add)
			}
		default:
			return Result{}
		}
	}
	switch p.Kind {
	case TokenBucket:
		debt = gcraDebt(p, s, now)
	case FixedWindow:
		_, used := fixedUsed(p, s, now)
		debt = max(0, used-p.Quota)
	case SlidingWindowCounter:
		start, curr, prev := counterRoll(p, s, now)
		debt = max(0, counterUsed(p, prev, curr, now-start)-p.Quota)
	case SlidingWindowLog:
		debt = max(0, logUsed(p, s, now)-p.Quota)
	}
	r := check(p, s, now, 0, 0, "")
	r.Allowed, r.Debt, r.Clamped = true, debt, clamped
	return r
}

// capAdd is how much of cost a window holding used units may take when it
// may hold at most quota+debtCap, and whether that cuts cost short.
func capAdd(used, cost, quota, debtCap int64) (add int64, clamped bool) {
	room := max(0, satAdd(quota, debtCap)-used)
	if cost > room {
		return room, true
	}
	return cost, false
}

// counterUsed is the counter's estimate rounded up:
// ceil(prev·(Period−elapsed)/Period) + curr.
func counterUsed(p *Params, prev, curr, elapsed int64) int64 {
	used := curr
	if prev > 0 && elapsed < p.Period {
		lq, lr, _ := mulDiv(prev, p.Period-elapsed, p.Period)
		used = satAdd(used, lq)
		if lr > 0 {
			used = satAdd(used, 1)
		}
	}
	return used
}

// logUsed is the number of units of the log's events in (now-Period, ...].
func logUsed(p *Params, s *State, now int64) int64 {
	var used int64
	for _, e := range s.Log[logFirstLive(s.Log, now-p.Period):] {
		used = satAdd(used, e.Cost)
	}
	return used
}

// gcraDebtLimit is the latest TAT a forced charge may leave at now:
// now + τ + DebtCap·I (at most 100 years past now + τ).
func (p *Params) gcraDebtLimit(now int64) rat {
	return p.addDur(p.addDur(rat{now, 0}, p.Capacity()), p.DebtCap())
}

// gcraForce moves the TAT by cost·I, to at most the debt limit, and
// reports whether the limit cut it short. A TAT already past the limit
// (the cap was lowered) stays where it is.
func gcraForce(p *Params, s *State, now, cost int64) (clamped bool) {
	tat := gcraTAT(p, s, now)
	limit := p.gcraDebtLimit(now)
	next := limit
	if !tat.less(limit) {
		next, clamped = tat, true
	} else if room := p.unitsBetween(tat, limit, MaxDebtUnits); cost > room {
		// (room+1)·I passes the limit; room is clamped at MaxDebtUnits,
		// which no cost exceeds, so cost·I is only computed when it fits.
		clamped = true
	} else {
		next = p.addDur(tat, cost)
	}
	s.A, s.B = next.ns, next.frac
	return clamped
}

// gcraDebt is ceil((TAT − now − τ)/I), at least 0: the units owed beyond
// an empty bucket.
func gcraDebt(p *Params, s *State, now int64) int64 {
	tat := gcraTAT(p, s, now)
	base := p.addDur(rat{now, 0}, p.Capacity())
	if !base.less(tat) {
		return 0
	}
	d := p.unitsBetween(base, tat, MaxDebtUnits+1)
	if p.addDur(base, d).less(tat) {
		d++
	}
	return d
}

// Settle gives back cost units committed at the instant at even if at has
// passed: the settlement of a reservation whose actual cost was smaller.
// The token bucket moves its TAT back by cost·I, never before now (a full
// bucket); the windows give back as Refund does, in the window of at (the
// counter: also the previous window), the log from the event at at.
// Nothing ever leaves more than the full quota available.
func Settle(p *Params, s *State, now, at, cost int64, lease string) {
	if p.Kind != TokenBucket {
		Refund(p, s, now, at, cost, lease)
		return
	}
	tat := gcraTAT(p, s, now)
	if cost <= 0 || !(rat{now, 0}).less(tat) {
		return
	}
	if cost > p.unitsBetween(rat{now, 0}, tat, MaxDebtUnits) {
		tat = rat{now, 0} // cost·I reaches back past now (and may not fit)
	} else if tat = p.subDur(tat, cost); tat.less(rat{now, 0}) {
		tat = rat{now, 0}
	}
	s.A, s.B = tat.ns, tat.frac
}
