package algo

// The token bucket as GCRA (generic cell rate algorithm), virtual scheduling.
//
// The emission interval is I = Period/Quota and the tolerance is
// tau = Burst*I. The state is the theoretical arrival time TAT, kept as the
// exact rational A + B/Quota nanoseconds (0 <= B < Quota), so sums of
// non-integer intervals never drift. A request of cost n at now is admitted
// when max(TAT, now) + n*I - tau <= now, and then TAT becomes
// max(TAT, now) + n*I. A reservation (admitted to act at
// now + ceil(max(TAT, now) + n*I - tau - now)) sets TAT to its act time
// plus tau. In any interval of length T at most Burst + floor(T/I) units
// are admitted or act.

// rat is the exact instant ns + frac/q.
type rat struct{ ns, frac int64 }

// addDur returns x + n*Period/Quota.
func (p *Params) addDur(x rat, n int64) rat {
	q, r, _ := mulDiv(n, p.Period, p.Quota) // Validate bounds n*I by tau
	x.ns = satAdd(x.ns, q)
	// x.frac + r may exceed MaxInt64 when Quota is above MaxInt64/2.
	if x.frac >= p.Quota-r {
		x.frac -= p.Quota - r
		x.ns = satAdd(x.ns, 1)
	} else {
		x.frac += r
	}
	return x
}

// subDur returns x - n*Period/Quota.
func (p *Params) subDur(x rat, n int64) rat {
	q, r, _ := mulDiv(n, p.Period, p.Quota)
	x.ns = satAdd(x.ns, -q)
	x.frac -= r
	if x.frac < 0 {
		x.frac += p.Quota
		x.ns = satAdd(x.ns, -1)
	}
	return x
}

func (x rat) less(y rat) bool { return x.ns < y.ns || (x.ns == y.ns && x.frac < y.frac) }

// ceilSince is ceil(x - now) in ns, clamped at 0.
func (x rat) ceilSince(now int64) int64 {
	if x.ns < now || (x.ns == now && x.frac == 0) {
		return 0
	}
	d := satAdd(x.ns, -now)
	if x.frac > 0 {
		d = satAdd(d, 1)
	}
	return d
}

// unitsBetween is floor((y - x)/I) clamped to [0, limit], for x <= y.
func (p *Params) unitsBetween(x, y rat, limit int64) int64 {
	if !x.less(y) {
		return 0
	}
	// (y - x) * Quota = dns*Quota + dfrac, with dfrac in (-Quota, Quota).
	dns := y.ns - x.ns
	dfrac := y.frac - x.frac
	if dfrac < 0 {
		dns--
		dfrac += p.Quota
	}
	// floor((dns*Quota + dfrac) / Period)
	q, r, ok := mulDiv(dns, p.Quota, p.Period)
	if !ok {
		return limit
	}
	// add dfrac/Period to q + r/Period (r + dfrac may exceed MaxInt64)
	q += dfrac / p.Period
	if r+dfrac%p.Period >= p.Period {
		q++
	}
	if q > limit || q < 0 {
		return limit
	}
	return q
}

func gcraTAT(p *Params, s *State, now int64) rat {
	tat := rat{s.A, s.B}
	if tat.frac < 0 || tat.frac >= p.Quota {
		// State written under another Quota (the limit was reconfigured):
		// round the arrival time up, which never admits more.
		tat = rat{satAdd(tat.ns, 1), 0}
	}
	if tat.less(rat{now, 0}) {
		return rat{now, 0}
	}
	return tat
}

// gcraNext returns the TAT after n units taken at now from tat, and how long
// after now they conform. When they conform only later (a reservation), the
// TAT is moved up so that their conformance instant is the whole
// nanosecond they act at, now+wait: the bound then holds for act times, at
// the cost of less than 1ns of credit.
func (p *Params) gcraNext(tat rat, now, n int64) (next rat, wait int64) {
	capacity := p.Capacity()
	next = p.addDur(tat, n)
	allowAt := p.subDur(next, capacity) // next - tau
	wait = allowAt.ceilSince(now)
	if wait > 0 && allowAt.frac != 0 {
		next = p.addDur(rat{satAdd(now, wait), 0}, capacity)
	}
	return next, wait
}

func gcraCheck(p *Params, s *State, now, cost, maxWait int64) Result {
	capacity := p.Capacity()
	tat := gcraTAT(p, s, now)
	limit := p.addDur(rat{now, 0}, capacity) // now + tau
	n := max(cost, 1)
	newTAT, wait := p.gcraNext(tat, now, n)
	res := Result{Allowed: wait == 0}
	if !res.Allowed && cost > 0 && wait <= maxWait {
		res.Allowed = true
		res.Delay = wait
	}
	if !res.Allowed {
		res.RetryAfter = wait
		res.Remaining = p.unitsBetween(tat, limit, capacity)
		res.ResetAfter = tat.ceilSince(now)
		return res
	}
	if cost == 0 {
		newTAT = tat
	}
	res.Remaining = p.unitsBetween(newTAT, limit, capacity)
	res.ResetAfter = newTAT.ceilSince(now)
	return res
}

func gcraCommit(p *Params, s *State, now, cost int64) {
	t, _ := p.gcraNext(gcraTAT(p, s, now), now, cost)
	s.A, s.B = t.ns, t.frac
}

// gcraRefund returns the units of a request of the given cost whose time to
// act was at, as golang.org/x/time/rate's Reservation.Cancel does: nothing
// once the time to act has passed (the units were used, and the single TAT
// cannot tell how much of them later refill already replaced), the span
// that later requests were scheduled into after it is not returned (their
// times stay valid), and the bucket never holds more than Burst.
func gcraRefund(p *Params, s *State, now, at, cost int64) {
	tat := gcraTAT(p, s, now) // normalised; equals the stored TAT when that is after now
	if cost <= 0 || at < now || !(rat{now, 0}).less(tat) {
		return // acted already, or already full
	}
	give := p.addDur(rat{}, cost)             // cost*I
	end := p.addDur(rat{at, 0}, p.Capacity()) // at + tau
	if end.less(tat) {
		later := p.ratSub(tat, end) // reserved after this request
		if !later.less(give) {
			return
		}
		give = p.ratSub(give, later)
	}
	t := p.ratSub(tat, give)
	if t.less(rat{now, 0}) {
		t = rat{now, 0}
	}
	s.A, s.B = t.ns, t.frac
}

// ratSub returns x - y.
func (p *Params) ratSub(x, y rat) rat {
	r := rat{satAdd(x.ns, -y.ns), x.frac - y.frac}
	if r.frac < 0 {
		r.ns--
		r.frac += p.Quota
	}
	return r
}
