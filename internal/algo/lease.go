package algo

import "slices"

// Concurrency: at most Quota units held at once. Each holder takes a lease
// that counts until it is released or until Period (the lease TTL) has
// passed since it was taken, so a holder that crashed cannot keep capacity
// forever.
//
// Holders that wait keep a place in line (Enqueue): a request is admitted
// only when the units held, plus those asked for by live waiters ahead of
// it, plus its own, fit in Quota. A waiter is ahead of every holder that
// joined the line later, and of every holder not in line, so freed units
// go to waiters roughly in the order they arrived, and a newcomer does not
// take them first. A place lapses unless renewed (a waiter that gave up or
// crashed stops blocking others), and ends when its holder is admitted or
// refunds.

func leaseHeld(s *State, now int64) (held, reset int64) {
	for _, l := range s.Leases {
		if l.Expires > now {
			held += l.Cost
			reset = max(reset, l.Expires-now)
		}
	}
	return held, reset
}

// waitAhead is the units asked for by live waiters ahead of holder id:
// those that joined before it, or all of them when id is not in line.
func waitAhead(s *State, now int64, id string) int64 {
	if len(s.Waiters) == 0 {
		return 0
	}
	var me *Waiter
	if id != "" {
		for i := range s.Waiters {
			if w := &s.Waiters[i]; w.ID == id && w.Expires > now {
				me = w
				break
			}
		}
	}
	var ahead int64
	for i := range s.Waiters {
		w := &s.Waiters[i]
		if w.Expires <= now || w == me {
			continue
		}
		if me == nil || w.Since < me.Since || (w.Since == me.Since && w.ID < me.ID) {
			ahead = satAdd(ahead, w.Cost)
		}
	}
	return ahead
}

func leaseCheck(p *Params, s *State, now, cost int64, lease string) Result {
	held, reset := leaseHeld(s, now)
	free := p.Quota - held // may be negative when Quota was lowered
	avail := free
	ahead := waitAhead(s, now, lease)
	if ahead > 0 {
		avail = max(satAdd(free, -ahead), min(free, 0))
	}
	n := max(cost, 1)
	if n <= avail {
		if cost > 0 {
			reset = max(reset, p.Period)
		}
		return Result{Allowed: true, Remaining: avail - cost, ResetAfter: reset}
	}
	need := satAdd(satAdd(n, ahead), -free)
	return Result{Remaining: max(0, avail), RetryAfter: max(1, leaseWait(s, now, need)), ResetAfter: reset}
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
	s.Waiters = slices.DeleteFunc(s.Waiters, func(w Waiter) bool { return w.Expires <= now })
	if len(s.Waiters) == 0 {
		s.Waiters = nil
	}
}

func leaseCommit(p *Params, s *State, now, cost int64, id string) {
	leasePrune(s, now)
	leaseLeave(s, id)
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
	leaseLeave(s, id)
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

// leaseEnqueue puts holder id in line at now for cost units, or renews its
// place (keeping its turn) until the instant until.
func leaseEnqueue(s *State, now, cost int64, id string, until int64) {
	leasePrune(s, now)
	for i := range s.Waiters {
		if w := &s.Waiters[i]; w.ID == id {
			w.Expires, w.Cost = max(w.Expires, until), cost
			return
		}
	}
	s.Waiters = append(s.Waiters, Waiter{ID: id, Since: now, Expires: until, Cost: cost})
}

// leaseLeave ends holder id's place in line.
func leaseLeave(s *State, id string) {
	s.Waiters = slices.DeleteFunc(s.Waiters, func(w Waiter) bool { return w.ID == id })
	if len(s.Waiters) == 0 {
		s.Waiters = nil
	}
}
