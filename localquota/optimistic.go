package localquota

import (
	"context"
	"sync"
	"time"

	"github.com/weir-go/weir"
)

// The optimistic mode ([WithOptimistic]): a process admits from a credit
// first and charges the shared store afterwards, every sync interval S.
//
// Per (limit, key) a process keeps credit (units it may still admit) and
// pending (units admitted and not yet charged). An admission moves a unit
// from credit to pending. A settle charges pending to the shared store,
// taking at most what the store can give (what it cannot stays pending, a
// debt), and, only when no debt is left, grants new credit: min(what the
// store says remains, cap) minus what was admitted while the settle was
// on its way, with cap = ⌈rate·S⌉ (at least 1, at most the capacity). So
// pending + credit ≤ cap at every instant, each process has at most cap
// units admitted and not charged, and with N processes the fleet admits at
// most N·cap units more than the shared store charged: over any run from
// the start, admitted ≤ the shared limit's bound + N·⌈rate·S⌉.

// optCap is cap = ⌈Quota·S/Period⌉, at least 1, at most the capacity.
func optCap(l weir.Limit, sync time.Duration) int64 {
	c, ok := ceilMulDiv(int64(sync), l.Quota, int64(l.Period))
	if !ok {
		c = l.Capacity()
	}
	return max(1, min(c, l.Capacity()))
}

// takeOptimistic decides req from the credits of its entries, which are
// locked. An entry never settled settles first, synchronously.
func (s *Store) takeOptimistic(ctx context.Context, req *weir.Request, es []*entry, need []int64) (weir.Decision, error) {
	for i, e := range es {
		if !e.optInit {
			e.check = req.Checks[i]
			e.optInit = true
			s.settleLocked(ctx, e)
		}
		if e.optCredit < need[i] {
			if e.optErr != nil {
				return weir.Decision{}, e.optErr
			}
			return weir.Decision{Limit: named(req.Checks[i].Limit), Remaining: e.optCredit, RetryAfter: s.cfg.sync, Time: s.cfg.now()}, nil
		}
	}
	dec := weir.Decision{Allowed: true}
	for i, e := range es {
		e.optCredit -= req.Cost
		e.optPending += req.Cost
		e.lastUse = s.nowNS()
		if i == 0 || e.optCredit < dec.Remaining {
			dec.Limit, dec.Remaining = named(req.Checks[i].Limit), e.optCredit
		}
		if len(req.Statuses) == len(req.Checks) {
			req.Statuses[i] = weir.Status{Allowed: true, Remaining: e.optCredit}
		}
	}
	dec.Time = s.cfg.now()
	s.stats.local.Add(1)
	return dec, nil
}

// settleLocked settles e, which the caller holds locked throughout.
func (s *Store) settleLocked(ctx context.Context, e *entry) {
	p0, c0 := e.optPending, e.optCredit
	g, r, err := s.charge(ctx, e.check, p0)
	s.applySettle(e, p0, c0, g, r, err)
}

// settle settles e without holding its lock during the round trip.
func (s *Store) settle(ctx context.Context, e *entry) {
	e.mu.Lock()
	if !e.optInit {
		e.mu.Unlock()
		return
	}
	p0, c0, c := e.optPending, e.optCredit, e.check
	e.mu.Unlock()
	g, r, err := s.charge(ctx, c, p0)
	e.mu.Lock()
	s.applySettle(e, p0, c0, g, r, err)
	e.mu.Unlock()
}

// applySettle applies a settle that charged g of the p0 units pending when
// it started (credit c0 then) and learnt that r units remain.
func (s *Store) applySettle(e *entry, p0, c0, g, r int64, err error) {
	e.optPending -= g
	e.optErr = err
	if err != nil || g < p0 {
		e.optCredit = 0 // a debt, or no answer: no new credit
		return
	}
	during := c0 - e.optCredit // admitted while the settle was on its way
	e.optCredit = max(0, min(r, optCap(e.check.Limit, s.cfg.sync))-during)
}

// charge takes at most n units of c from the shared store (a peek when n
// is 0) and returns how many it took and how many remain.
func (s *Store) charge(ctx context.Context, c weir.Check, n int64) (granted, remaining int64, err error) {
	try := n
	for range 2 {
		d, err := s.inner.Take(ctx, &weir.Request{Checks: []weir.Check{c}, Cost: try})
		if err != nil {
			return 0, 0, err
		}
		if d.Source != weir.SourceStore {
			return 0, 0, errSettle
		}
		if d.Allowed || try == 0 {
			if try > 0 {
				s.stats.blocks.Add(1)
				s.stats.taken.Add(try)
			}
			return try, d.Remaining, nil
		}
		if d.Remaining <= 0 || d.Remaining >= try {
			return 0, 0, nil
		}
		try = d.Remaining
	}
	return 0, 0, nil
}

var errSettle = weir.ErrUnavailable

// settler settles every optimistic entry every sync interval.
func (s *Store) settler() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.sync)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.settleAll()
		}
	}
}

// settleAll settles every entry, up to 16 at once (one round trip each).
func (s *Store) settleAll() {
	_, es := s.snapshot()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, e := range es {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
			defer cancel()
			s.settle(ctx, e)
		}()
	}
	wg.Wait()
}
