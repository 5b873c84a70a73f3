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
//
// So a process admits at most cap units per settle of a key, and its
// throughput on the key is at most cap per settle cycle: a process alone
// fills a limit only if its settles come about every S. The ticker's
// rounds do not: a round waits for the slowest settle of all keys, and a
// busy process (the one with the demand) schedules them late. In
// BenchmarkLocalQuota's skewed load (⌈rate·S⌉ = 1 at 20/s and S = 10 ms)
// the hot process's rounds came 24-49 ms apart on average, up to 1 s,
// while a settle's round trip took 1.2-1.9 ms on average, and it admitted
// 77-98% of the limit. So a key whose credit falls under half of cap after
// an admission settles at once, on its own (settleSoon): a cycle is then
// one round trip, and a unit is charged about a round trip after it was
// admitted. The bound is unchanged: pending + credit ≤ cap still holds,
// one settle of a key at a time.

// optCap is cap = ⌈Quota·S/Period⌉, at least 1, at most the capacity.
func optCap(l weir.Limit, sync time.Duration) int64 {
	c, ok := ceilMulDiv(int64(sync), l.Quota, int64(l.Period))
	if !ok {
		c = l.Capacity()
	}
	return max(1, min(c, l.Capacity()))
}

// takeOptimistic decides req from the credits of its entries, which are
// locked. An entry never settled settles first, synchronously. settling
// reports a denial for lack of credit while a settle of that entry is in
// flight: the caller should then yield the processor once the entries are
// unlocked. Callers denied in a loop (a process far over its limit) would
// otherwise keep the settle's goroutine waiting for a processor, which the
// Go scheduler shares between runnable goroutines in slices of up to 10
// ms: in BenchmarkLocalQuota's skewed load on one core, 68 ms per settle
// of a key, one unit per key each time (⌈rate·S⌉ = 1), 58-72% of the
// limit admitted; 96-98% with the yield.
func (s *Store) takeOptimistic(ctx context.Context, req *weir.Request, es []*entry, need []int64) (d weir.Decision, settling bool, err error) {
	for i, e := range es {
		if !e.optInit {
			e.check, e.optCap = req.Checks[i], optCap(req.Checks[i].Limit, s.cfg.sync)
			e.optInit = true
			s.settleLocked(ctx, e)
		}
		if e.optCredit < need[i] {
			if e.optErr != nil {
				return weir.Decision{}, false, e.optErr
			}
			return weir.Decision{Limit: named(req.Checks[i].Limit), Remaining: e.optCredit, RetryAfter: s.cfg.sync, Time: s.cfg.now()}, e.optSettling, nil
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
		s.settleSoon(e)
	}
	dec.Time = s.cfg.now()
	s.stats.local.Add(1)
	return dec, false, nil
}

// settleLocked settles e, which the caller holds locked throughout.
func (s *Store) settleLocked(ctx context.Context, e *entry) {
	p0, c0 := e.optPending, e.optCredit
	g, r, err := s.charge(ctx, e.check, p0)
	s.applySettle(e, p0, c0, g, r, err)
}

// settle settles e without holding its lock during the round trip, unless
// a settle of e is in flight.
func (s *Store) settle(ctx context.Context, e *entry) {
	e.mu.Lock()
	if !e.optInit || e.optSettling {
		e.mu.Unlock()
		return
	}
	e.optSettling = true
	p0, c0, c := e.optPending, e.optCredit, e.check
	e.mu.Unlock()
	s.finishSettle(ctx, e, p0, c0, c)
}

// finishSettle charges p0 units of c for e, whose settle the caller began
// (setting optSettling) when p0 units were pending and c0 credited, and
// applies the answer.
func (s *Store) finishSettle(ctx context.Context, e *entry, p0, c0 int64, c weir.Check) {
	g, r, err := s.charge(ctx, c, p0)
	e.mu.Lock()
	e.optSettling = false
	s.applySettle(e, p0, c0, g, r, err)
	e.mu.Unlock()
}

// settleSoon starts a background settle of e (locked, just admitted from)
// when its credit has fallen under half of cap, unless a settle of it is
// in flight, its last settle failed (the settler retries every S) or the
// store is closing. A key in debt has no credit to admit from, so it is
// never settled here more often than it admits.
func (s *Store) settleSoon(e *entry) {
	if e.optSettling || e.optErr != nil || e.optPending == 0 || 2*e.optCredit >= e.optCap {
		return
	}
	if !s.startBackground() {
		return
	}
	e.optSettling = true
	p0, c0, c := e.optPending, e.optCredit, e.check
	s.stats.refills.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		defer cancel()
		s.finishSettle(ctx, e, p0, c0, c)
	}()
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
	e.optCredit = max(0, min(r, e.optCap)-during)
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
	s.settleEach(es)
}

// settleDebts is Close's last step in the optimistic mode: while entries
// still owe units that the shared store, which answered, could not take
// (another process spent what it had), it settles them again every S, for
// up to the store timeout. Units still owed then, or owed to a store that
// failed, stay uncharged; they are within the N·⌈rate·S⌉ of the bound.
func (s *Store) settleDebts() {
	deadline := time.Now().Add(s.cfg.timeout)
	for {
		var owing []*entry
		_, es := s.snapshot()
		for _, e := range es {
			e.mu.Lock()
			if e.optPending > 0 && e.optErr == nil {
				owing = append(owing, e)
			}
			e.mu.Unlock()
		}
		if len(owing) == 0 || !time.Now().Add(s.cfg.sync).Before(deadline) {
			return
		}
		time.Sleep(s.cfg.sync)
		s.settleEach(owing)
	}
}

// settleEach settles es, up to 16 at once.
func (s *Store) settleEach(es []*entry) {
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
