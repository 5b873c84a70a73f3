package algo

import "slices"

// Concurrency: at most Quota units held at once. Each holder takes a lease
// that counts until it is released or until Period (the lease TTL) has
// passed since it was taken, so a holder that crashed cannot keep capacity
// forever.

func leaseHeld(s *State, now int64) (held, reset int64) {
	for _, l := range s.Leases {
		if l.Expires > now {
			held += l.Cost
			reset = max(reset, l.Expires-now)
		}
	}
	return held, reset
}

func leaseCheck(p *Params, s *State, now, cost int64) Result {
	held, reset := leaseHeld(s, now)
	n := max(cost, 1)
	if n <= p.Quota-held { // not held+n: Quota may be MaxInt64
		if cost > 0 {
			reset = max(reset, p.Period)
		}
		return Result{Allowed: true, Remaining: p.Quota - held - cost, ResetAfter: reset}
	}
	return Result{Remaining: p.Quota - held, RetryAfter: max(1, leaseWait(s, now, n-(p.Quota-held))), ResetAfter: reset}
}

// leaseWait is how long until leases holding at least need units have
// expired: an upper bound, since holders usually release sooner.
func leaseWait(s *State, now, need int64) int64 {
	live := make([]Lease, 0, len(s.Leases))
	for _, l := range s.Leases {
		if l.Expires > now {
			live = append(live, l)
		}
	}
	slices.SortFunc(live, func(a, b Lease) int {
		switch {
		case a.Expires < b.Expires:
			return -1
		case a.Expires > b.Expires:
			return 1
		}
		return 0
	})
	var freed int64
	for _, l := range live {
		freed += l.Cost
		if freed >= need {
			return l.Expires - now
		}
	}
	return 0
}

func leasePrune(s *State, now int64) {
	k := 0
	for _, l := range s.Leases {
		if l.Expires > now {
			s.Leases[k] = l
			k++
		}
	}
	clear(s.Leases[k:])
	s.Leases = s.Leases[:k]
	if k == 0 {
		s.Leases = nil
	}
}

func leaseCommit(p *Params, s *State, now, cost int64, id string) {
	leasePrune(s, now)
	exp := satAdd(now, p.Period)
	for i := range s.Leases {
		if s.Leases[i].ID == id {
			// Re-acquiring with the same id extends and grows the lease.
			s.Leases[i].Expires = max(s.Leases[i].Expires, exp)
			s.Leases[i].Cost += cost
			return
		}
	}
	s.Leases = append(s.Leases, Lease{ID: id, Expires: exp, Cost: cost})
}

func leaseRelease(s *State, id string) {
	for i := range s.Leases {
		if s.Leases[i].ID == id {
			s.Leases = slices.Delete(s.Leases, i, i+1)
			if len(s.Leases) == 0 {
				s.Leases = nil
			}
			return
		}
	}
}
