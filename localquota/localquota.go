package localquota

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// ErrClosed is returned by Take on a closed Store. It matches
// weir.ErrUnavailable.
var ErrClosed = fmt.Errorf("localquota: store closed: %w", weir.ErrUnavailable)

// Store is a [weir.Store] that decides from units it holds locally and
// takes them from an authoritative shared store in blocks. See the package
// documentation for what it guarantees.
type Store struct {
	inner weir.Store
	cfg   config

	// entries maps an entryKey to its *entry. A decision finds its
	// entries without a lock (a read-write mutex's shared counter, written
	// by every decision, cost a tenth of the decisions' CPU); mu orders
	// the rest: creating and forgetting entries, and closing.
	entries sync.Map
	mu      sync.Mutex
	closed  atomic.Bool

	done     chan struct{}
	bgMu     sync.Mutex // orders background starts before Close's Wait
	bgClosed bool
	wg       sync.WaitGroup

	// trap is the state of trapped (the janitor's alone).
	trap struct {
		waits, local int64 // the counters at the last sweep
		since        int64 // local ns an attempt to break out began (0: none)
		rate         int64 // local decisions in the sweep that began it
		off          int64 // local ns: no attempt before then
	}

	// lat is the smoothed round trip of background refills, in ns of the
	// local clock: the refill lead (refillLead) follows it.
	lat atomic.Int64

	stats struct {
		blocks, taken, returned, wasted, local, passed, waits, fetches, created, refills, refreshes, returns atomic.Int64
		landed, landedNS                                                                                     atomic.Int64
	}
}

var (
	_ weir.Store  = (*Store)(nil)
	_ io.Closer   = (*Store)(nil)
	_ weir.Pinger = (*Store)(nil)
)

// entryKey names the state of one (limit, key): a struct, so two distinct
// pairs never share an entry whatever bytes they contain.
type entryKey struct{ name, key string }

// entry is the local allowance of one (limit, key).
type entry struct {
	mu       sync.Mutex
	blocks   []block       // oldest first
	avail    int64         // sum of blocks[i].units
	use      meter         // units spent per half hold
	unspent  bool          // units went back unspent since the last block a caller waited for
	lastUse  int64         // local ns of the last local decision
	prevUse  int64         // local ns of the one before it (0: none)
	pprevUse int64         // and of the one before that (0: none)
	landedAt int64         // local ns the last background Take landed
	fetching bool          // a background refill is in flight
	landed   chan struct{} // closed when that refill lands (or fails)
	gen      int64         // bumped by Refund and Reset: a block asked for before comes back unused
	dead     bool          // forgotten by the janitor: no longer in Store.entries
	size     int64         // the size blocks are asked for: doubles when callers wait, shrinks by what goes back unspent

	deniedUntil int64         // local ns: until then a request of at least deniedCost is denied here
	deniedCost  int64         //
	denied      weir.Decision // the store's denial, to answer with meanwhile
	deniedAt    int64         // local ns the denial was asked at

	// The optimistic mode (optimistic.go).
	check       weir.Check // the check the entry settles (exact mode: the one it last took a block for)
	optInit     bool       // settled at least once
	optCredit   int64      // units it may still admit
	optPending  int64      // units admitted and not yet charged
	optErr      error      // the last settle's error
	optSettling bool       // a settle is in flight: one at a time
	optCap      int64      // optCap of check, set with it
}

// New returns a Store that holds units of inner locally. The Store starts
// one background goroutine; Close stops it and returns the unspent units.
// It does not close inner.
func New(inner weir.Store, opts ...Option) (*Store, error) {
	if inner == nil {
		return nil, errors.New("localquota: inner store is nil")
	}
	cfg := defaults()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{inner: inner, cfg: cfg, done: make(chan struct{})}
	s.wg.Add(1)
	if cfg.sync > 0 {
		go s.settler()
	} else {
		go s.janitor()
	}
	return s, nil
}

// nowNS reads the local clock in ns: the monotonic clock (one read, no
// time.Time built) unless WithClock replaced it.
func (s *Store) nowNS() int64 {
	if !s.cfg.base.IsZero() {
		return s.cfg.base.UnixNano() + int64(time.Since(s.cfg.base))
	}
	return s.cfg.now().UnixNano()
}

// local reports whether req can be decided from local allowances: a
// positive cost, no reservation, no line and no concurrency limit. Other
// requests go to the shared store as they are.
func local(req *weir.Request) bool {
	if req.Cost <= 0 || req.MaxWait > 0 || req.Queue > 0 || req.Lease != "" || req.Force {
		return false
	}
	for i := range req.Checks {
		if req.Checks[i].Limit.Algorithm == weir.Concurrency {
			return false
		}
	}
	return true
}

// Take decides on req from the units held for each of its checks, taking
// a block from the shared store first when a check holds fewer than
// req.Cost. Peeks (Cost 0), reservations (MaxWait), lines (Queue),
// charges (Force) and concurrency limits are passed to the shared store as
// they are.
func (s *Store) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if err := engine.Validate(req); err != nil {
		return weir.Decision{}, err
	}
	if !local(req) {
		s.stats.passed.Add(1)
		return s.inner.Take(ctx, req)
	}
	for {
		d, wait, f, err := s.takeLocal(ctx, req)
		if f != nil {
			// A check lacks units and none are on their way: take a
			// block while the caller waits, holding no lock (others of
			// its key wait on f.landed, the janitor goes on), then
			// decide again.
			s.stats.waits.Add(1)
			s.stats.fetches.Add(1)
			if d, ok, err := s.fetch(ctx, f); err != nil || !ok {
				return d, err
			}
			continue
		}
		if wait == yieldCh {
			// Denied while the settle that brings credit is in flight:
			// let its goroutine run (takeOptimistic).
			runtime.Gosched()
			return d, err
		}
		if wait == nil {
			return d, err
		}
		// A refill of this process is on its way with the units the
		// request lacks: asking the shared store meanwhile would be
		// denied (the refill may hold its last units) and that denial
		// remembered. Wait for it, holding no lock, then decide again.
		s.stats.waits.Add(1)
		select {
		case <-wait:
		case <-ctx.Done():
			return weir.Decision{}, ctx.Err()
		}
	}
}

// yieldCh is what takeLocal returns in place of a refill's channel when the
// optimistic mode denied a request while a settle of its key was in
// flight: Take then yields the processor before it returns the denial.
var yieldCh = make(chan struct{})

// takeLocal decides req (which is local) from the entries of its checks,
// locked for the call. When an entry lacks units while a Take of it is in
// flight, it decides nothing and returns the channel closed when that Take
// lands; when one lacks units and none are on their way, it marks the
// entry fetching and returns the Take to make (the caller waits for it).
func (s *Store) takeLocal(ctx context.Context, req *weir.Request) (weir.Decision, <-chan struct{}, *fetchPlan, error) {
	// Most requests have one or two checks: no allocation for them.
	var ebuf [2]*entry
	var obuf [2]int
	var nbuf [2]int64
	es, order, err := s.lockEntries(req, ebuf[:0], obuf[:0])
	if err != nil {
		return weir.Decision{}, nil, nil, err
	}
	defer unlock(es, order)
	// The same entry may appear twice (two checks of one limit and key):
	// it must then hold the cost twice over.
	need := nbuf[:0]
	for _, e := range es {
		var n int64
		for _, f := range es {
			if f == e {
				n += req.Cost
			}
		}
		need = append(need, n)
	}
	if s.cfg.sync > 0 {
		d, settling, err := s.takeOptimistic(ctx, req, es, need)
		if settling {
			return d, yieldCh, nil, err
		}
		return d, nil, nil, err
	}
	now := s.nowNS()
	for i, e := range es {
		s.drop(e, now)
		if e.avail < need[i] && e.fetching {
			return weir.Decision{}, e.landed, nil, nil
		}
	}
	for i, e := range es {
		if d, f := s.ensure(e, req.Checks[i], need[i], now); f != nil || !d.Allowed {
			return d, nil, f, nil
		}
	}
	var dec weir.Decision
	for i, e := range es {
		b := e.spend(req.Cost, now)
		e.use.add(req.Cost, now, int64(s.cfg.hold)/2)
		rem := e.avail
		if i == 0 || rem < dec.Remaining {
			dec = weir.Decision{
				Allowed:    true,
				Limit:      named(req.Checks[i].Limit),
				Remaining:  rem,
				ResetAfter: max(0, b.reset-time.Duration(now-b.received)),
				Time:       b.charged.Add(time.Duration(max(0, now-b.received))),
			}
		}
		if len(req.Statuses) == len(req.Checks) {
			req.Statuses[i] = weir.Status{Allowed: true, Remaining: rem, ResetAfter: max(0, b.reset-time.Duration(now-b.received))}
		}
		s.maybeRefill(e, req.Checks[i], now)
	}
	s.stats.local.Add(1)
	return dec, nil, nil, nil
}

// lockEntries returns the entries of req's checks, each locked once (in
// order, the index of each distinct entry), in a fixed order so that two
// requests never wait on each other. An entry the janitor forgot between
// the lookup and the lock is looked up again.
func (s *Store) lockEntries(req *weir.Request, ebuf []*entry, obuf []int) (es []*entry, order []int, err error) {
	for {
		if es, err = s.lookup(req, ebuf); err != nil {
			return nil, nil, err
		}
		order = obuf[:0]
		for i := range es {
			order = append(order, i)
		}
		if len(es) > 1 {
			slices.SortFunc(order, func(a, b int) int {
				ka, kb := entryKey{engine.Name(req.Checks[a].Limit), req.Checks[a].Key}, entryKey{engine.Name(req.Checks[b].Limit), req.Checks[b].Key}
				return cmp.Or(cmp.Compare(ka.name, kb.name), cmp.Compare(ka.key, kb.key))
			})
			order = slices.CompactFunc(order, func(a, b int) bool { return es[a] == es[b] })
		}
		dead := false
		for _, i := range order {
			es[i].mu.Lock()
			dead = dead || es[i].dead
		}
		if !dead {
			return es, order, nil
		}
		for _, i := range order {
			es[i].mu.Unlock()
		}
	}
}

// unlock unlocks the entries lockEntries locked.
func unlock(es []*entry, order []int) {
	for _, i := range order {
		es[i].mu.Unlock()
	}
}

func named(l weir.Limit) weir.Limit {
	if l.Name == "" {
		l.Name = l.String()
	}
	return l
}

// lookup returns the entry of every check, creating missing ones.
// It appends them to es[:0]. Finding entries takes no lock.
func (s *Store) lookup(req *weir.Request, es []*entry) ([]*entry, error) {
	es = es[:0]
	for i := range req.Checks {
		e, ok := s.entries.Load(entryKey{engine.Name(req.Checks[i].Limit), req.Checks[i].Key})
		if !ok {
			break
		}
		es = append(es, e.(*entry))
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(es) == len(req.Checks) {
		return es, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	for i := len(es); i < len(req.Checks); i++ {
		k := entryKey{engine.Name(req.Checks[i].Limit), req.Checks[i].Key}
		// Entries are only stored under mu: Load then Store is atomic here.
		if e, ok := s.entries.Load(k); ok {
			es = append(es, e.(*entry))
			continue
		}
		e := &entry{}
		s.entries.Store(k, e)
		s.stats.created.Add(1)
		es = append(es, e)
	}
	return es, nil
}

// snapshot returns every entry and its key.
func (s *Store) snapshot() (keys []entryKey, es []*entry) {
	s.entries.Range(func(k, e any) bool {
		keys = append(keys, k.(entryKey))
		es = append(es, e.(*entry))
		return true
	})
	return keys, es
}

// drop removes spent and lapsed blocks from the front of e.blocks at now,
// counting lapsed units as wasted.
func (s *Store) drop(e *entry, now int64) {
	stale := false
	for i := range e.blocks {
		stale = stale || e.blocks[i].units == 0 || e.blocks[i].expires <= now
	}
	if !stale {
		return
	}
	n := 0
	for n < len(e.blocks) && (e.blocks[n].units == 0 || e.blocks[n].expires <= now) {
		if u := e.blocks[n].units; u > 0 {
			e.avail -= u
			e.wentBack(u)
			s.stats.wasted.Add(u)
		}
		n++
	}
	if n > 0 {
		e.blocks = slices.Delete(e.blocks, 0, n)
	}
	// A later block may lapse before an earlier one (a fixed window ended).
	e.blocks = slices.DeleteFunc(e.blocks, func(b block) bool {
		if b.expires > now {
			return false
		}
		e.avail -= b.units
		e.wentBack(b.units)
		s.stats.wasted.Add(b.units)
		return true
	})
}

// ensure checks that e (locked, dropped at now) holds at least need units
// for check c. It returns an allowed Decision when it does, the Take to
// make (e marked fetching) when it does not, or a denial when the shared
// store denied a Take of need since and said when it would fit.
func (s *Store) ensure(e *entry, c weir.Check, need, now int64) (weir.Decision, *fetchPlan) {
	if e.avail >= need {
		return weir.Decision{Allowed: true}, nil
	}
	if now < e.deniedUntil && need >= e.deniedCost {
		d := e.denied
		d.RetryAfter = time.Duration(e.deniedUntil - now)
		d.Time = d.Time.Add(time.Duration(now - e.deniedAt))
		return d, nil
	}
	missing := need - e.avail
	f := &fetchPlan{
		e: e, c: c, missing: missing, now: now, gen: e.gen, landed: make(chan struct{}),
		size: syncSize(e.size, e.unspent, firstBlock(c.Limit, s.cfg.hold), e.use.demand(now, int64(s.cfg.hold)/2), missing, s.cfg.maxBlock, c.Limit.Capacity()),
	}
	e.fetching, e.landed = true, f.landed
	return weir.Decision{}, f
}

// fetchPlan is a Take of a block that a caller waits for: ensure plans it
// (and marks its entry fetching), fetch makes it.
type fetchPlan struct {
	e       *entry
	c       weir.Check
	size    int64 // the block asked for
	missing int64 // units the request lacks: the least worth taking
	now     int64 // local ns it was planned at
	gen     int64 // e.gen then
	landed  chan struct{}
}

// fetch makes the Take f with no lock held and adds its block to f.e. ok
// false means the request is denied (or decided by the shared store's
// failure policy) with the returned Decision; ok true, that it should be
// decided again.
func (s *Store) fetch(ctx context.Context, f *fetchPlan) (weir.Decision, bool, error) {
	d, b, err := s.takeBlock(ctx, f.c, f.size, f.missing)
	now := s.nowNS()
	e := f.e
	e.mu.Lock()
	e.fetching, e.landed = false, nil
	close(f.landed)
	stale := e.gen != f.gen
	switch {
	case err != nil:
		e.mu.Unlock()
		return weir.Decision{}, false, err
	case b == nil:
		if d.Source == weir.SourceStore && !d.Allowed && !stale {
			e.deniedUntil, e.deniedCost, e.denied, e.deniedAt = b0(d, f.now), f.missing, d, f.now
		}
		e.mu.Unlock()
		return d, false, nil
	case stale:
		// Taken around a Refund or Reset of the key: hand the units back
		// and decide again.
		e.mu.Unlock()
		s.giveBack(b, b.units, now)
		return weir.Decision{}, true, nil
	case b.expires <= now:
		// The store answered slower than the hold: too late to spend,
		// not too late to give back.
		e.mu.Unlock()
		s.giveBack(b, b.units, now)
		return weir.Decision{Limit: named(f.c.Limit), Time: d.Time, RetryAfter: time.Millisecond}, false, nil
	}
	e.size, e.unspent, e.check = f.size, false, f.c
	s.add(e, *b)
	e.mu.Unlock()
	return weir.Decision{}, true, nil
}

// wentBack notes that u units of e lapsed or went back unspent: blocks
// shrink by as much, and the next block a caller waits for is not doubled.
func (e *entry) wentBack(u int64) {
	if u > 0 {
		e.unspent = true
		e.size = max(1, e.size-u)
	}
}

// b0 is the local instant before which a denial with d.RetryAfter, asked
// at now, stands. RetryAfter counts from the store's instant, which came
// after now, so this never denies past what the store would.
func b0(d weir.Decision, now int64) int64 { return now + int64(d.RetryAfter) }

func (s *Store) add(e *entry, b block) {
	now := s.nowNS()
	if b.expires <= now {
		// The store answered slower than the hold: too late to spend,
		// not too late to give back.
		s.giveBack(&b, b.units, now)
		return
	}
	e.blocks = append(e.blocks, b)
	e.avail += b.units
	e.deniedUntil = 0
}

// takeBlock takes at most size (and at least need) units of check c from
// the shared store. A Take of size is tried first; when it is denied with
// fewer remaining, the remaining units are taken if they cover need, else
// need alone is asked for, so the denial says when need would fit. The
// Decision is returned with a nil block when nothing was taken.
func (s *Store) takeBlock(ctx context.Context, c weir.Check, size, need int64) (weir.Decision, *block, error) {
	try := size
	for range 3 {
		sent := s.nowNS()
		d, err := s.inner.Take(ctx, &weir.Request{Checks: []weir.Check{c}, Cost: try})
		if err != nil || d.Source != weir.SourceStore {
			return d, nil, err
		}
		if d.Allowed {
			recv := s.nowNS()
			s.stats.blocks.Add(1)
			s.stats.taken.Add(try)
			return d, &block{
				units: try, key: c.Key, limit: c.Limit, charged: d.Time, sent: sent, received: recv,
				expires: expiry(c.Limit, d.Time, sent, s.cfg.hold), reset: d.ResetAfter,
			}, nil
		}
		switch {
		case d.Remaining >= need && d.Remaining < try:
			try = d.Remaining
		case try > need:
			try = need
		default:
			return d, nil, nil
		}
	}
	return weir.Decision{Limit: named(c.Limit), RetryAfter: time.Millisecond}, nil, nil
}

// spend takes cost units from the oldest blocks of e (which holds them)
// and returns the block the last unit came from.
func (e *entry) spend(cost, now int64) block {
	e.avail -= cost
	e.pprevUse, e.prevUse, e.lastUse = e.prevUse, e.lastUse, now
	var last block
	for i := range e.blocks {
		if cost == 0 {
			break
		}
		b := &e.blocks[i]
		n := min(b.units, cost)
		b.units -= n
		cost -= n
		last = *b
	}
	return last
}

// maybeRefill starts a background Take when the units e (locked) holds
// beyond the next half hold (a block closer to its end may go back before
// it is spent) would not cover the demand of that half hold, so that
// callers rarely wait on the shared store.
func (s *Store) maybeRefill(e *entry, c weir.Check, now int64) {
	if e.fetching {
		return
	}
	d := e.use.demand(now, int64(s.cfg.hold)/2)
	if e.use.prev < 1 {
		// Nothing spent in the last half hold (sparse, or too new to
		// tell): a unit taken ahead would likely lapse unspent.
		return
	}
	// Count only the units that will still be spendable when a refill
	// asked now has landed.
	lead := s.refillLead()
	horizon := now + lead
	var usable int64
	for i := range e.blocks {
		if s.spendableUntil(&e.blocks[i]) > horizon {
			usable += e.blocks[i].units
		}
	}
	// A block is sized for the demand of the ¾ hold it is spendable, and
	// asked for when what is held would not cover a half hold's demand.
	// A fast bucket's block, spent until it expires (returnEarly), is
	// sized for a whole hold, and asked for when what is held would not
	// cover the demand of the lead, with half as much again for its
	// noise: one Take per hold minus the lead, instead of per half hold.
	size, low := max(e.size, ahead(d)), d
	if want := max(e.size, 2*d); s.fastBucket(c.Limit, want) {
		size = want
		if n, ok := ceilMulDiv(d, 2*lead, int64(s.cfg.hold)); ok {
			low = ahead(n)
		}
	}
	if usable > low {
		return
	}
	if s.startRefill(e, c, size) {
		s.stats.refills.Add(1)
	}
}

// startRefill starts a background Take of size units of check c for e
// (locked, not fetching) and reports whether it started.
func (s *Store) startRefill(e *entry, c weir.Check, size int64) bool {
	if !s.startBackground() {
		return false
	}
	e.fetching = true
	landed := make(chan struct{})
	e.landed = landed
	gen := e.gen
	size = clampSize(size, 1, s.cfg.maxBlock, c.Limit.Capacity())
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		defer cancel()
		sent := s.nowNS()
		d, b, _ := s.takeBlock(ctx, c, size, 1)
		now := s.nowNS()
		s.noteLatency(now - sent)
		s.stats.landed.Add(1)
		s.stats.landedNS.Add(max(0, now-sent))
		e.mu.Lock()
		e.fetching, e.landed, e.landedAt = false, nil, now
		close(landed)
		stale := e.gen != gen
		if b != nil && !stale {
			s.add(e, *b)
		}
		if b == nil && !stale && d.Source == weir.SourceStore && !d.Allowed {
			// Not a unit left: callers are denied here until the store
			// said one would fit, as after a Take they waited for.
			e.deniedUntil, e.deniedCost, e.denied, e.deniedAt = b0(d, sent), 1, d, sent
		}
		e.mu.Unlock()
		if b != nil && stale {
			// Taken around a Refund or Reset, whose ceiling may already
			// count these units as available again: hand them back.
			s.giveBack(b, b.units, s.nowNS())
		}
	}()
	return true
}

// startBackground counts a background goroutine about to start in s.wg
// and reports true, or reports false once Close has begun (Close waits
// for those counted before it). It takes bgMu, not mu: its callers hold an
// entry's lock, and sweep holds mu while it locks entries.
func (s *Store) startBackground() bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return false
	}
	s.wg.Add(1)
	return true
}

// spendableUntil is the local instant until which b's units can be spent:
// its expiry, or a quarter hold before it when the janitor gives them back
// then (returnEarly).
func (s *Store) spendableUntil(b *block) int64 {
	if s.returnEarly(b) {
		return b.expires - int64(s.cfg.hold)/4
	}
	return b.expires
}

// returnEarly reports whether b's units are worth giving back a quarter
// hold before b expires (at the janitor's last tick before it lapses):
// whether a return made then would give the shared state anything. A
// token bucket's units refill as time passes, so a return dated ¾ hold
// after the charge gives back only what has not refilled by then: nothing
// for a fast limit (rate·hold at least the units), whose blocks are
// therefore kept, and spent, until they expire. Windows and logs refund by
// the charge's instant: always worth returning.
func (s *Store) returnEarly(b *block) bool {
	cost, _ := giveBack(b, b.units, b.expires-int64(s.cfg.hold)/4, s.cfg.slack)
	return cost > 0
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// trapped reports whether the sweep at now should refresh every recurring
// key (see refresh): whether the store is in an attempt to break out of
// the state in which most decisions wait on the shared store.
//
// An attempt starts when, since the last sweep, at least half of the
// local decisions (and 16 or more) waited. It ends when fewer than one in
// sixteen do; after 10 holds, it stops as soon as a sweep sees fewer than
// twice the decisions of the sweep that began it, and none starts for 100
// holds. A closed loop of callers that breaks out makes its decisions
// faster (TestClosedLoopManyKeys). Requests that arrive at random (keys
// merely sparse, gaps of about a hold) come no faster, are not helped much
// and would cost more Takes than decisions, so there an attempt costs 10
// holds in 110 (TestSparseKeysTakes).
func (s *Store) trapped(now int64) bool {
	hold := int64(s.cfg.hold)
	t := &s.trap
	w, l := s.stats.waits.Load(), s.stats.local.Load()
	dw, dl := w-t.waits, l-t.local
	t.waits, t.local = w, l
	switch {
	case now < t.off:
		return false
	case t.since > 0:
		switch {
		case 16*dw < dl: // out
			t.since = 0
			return false
		case now-t.since >= 10*hold && dl < 2*t.rate:
			t.since, t.off = 0, now+100*hold // no faster than before: stop
			return false
		}
		return true
	case dw >= 16 && 2*dw >= dl:
		t.since, t.rate = now, dl
		return true
	}
	return false
}

// worthReturning reports whether giving b's units back at now would
// return any of them to the shared state.
func (s *Store) worthReturning(b *block, now int64) bool {
	cost, _ := giveBack(b, b.units, now, s.cfg.slack)
	return cost > 0
}

// refresh starts a background Take for e (locked, swept at now) when it
// is a recurring key whose next decision would otherwise wait on the
// shared store, and reports whether it did.
//
// maybeRefill runs on a decision, so it keeps a key supplied only if its
// decisions come more often than a block lives. A key whose decisions come
// further apart finds its block lapsed and waits for a Take. Under a closed
// loop of callers over many keys that state sustains itself: callers
// waiting on Takes come back to each key later than its block lives, so
// they wait again (TestClosedLoopManyKeys). The janitor therefore keeps
// such keys supplied between their decisions.
//
// Recurring means its last two decisions came from a quarter hold (a busier
// key is seen at every tick: maybeRefill keeps it) to two holds apart, and
// the last within two holds: a key seen once is never refreshed, and a key
// that stops is refreshed for at most two holds more. Outside an attempt to
// break out of a trap (trapped), only a steady key is refreshed: its last
// two gaps agree within a quarter, and its last background block was
// followed by a decision. Keys whose requests arrive at random would cost
// more Takes than decisions (TestSparseKeysTakes).
//
// The next decision is expected a gap after the last. While it is ahead,
// the refresh waits until a block taken now would still be spendable a
// lead after it (one Take per decision for a steady key), and is skipped
// when a held block already is; once it is due or late, a block is kept
// spendable past the next tick.
func (s *Store) refresh(e *entry, now int64, trapped bool) bool {
	hold := int64(s.cfg.hold)
	gap := e.lastUse - e.prevUse
	if e.fetching || e.check.Limit.Quota == 0 || e.deniedUntil > now || e.prevUse == 0 ||
		gap < hold/4 || gap > 2*hold || e.lastUse < now-2*hold {
		return false
	}
	if !trapped {
		// Only a steady key, whose last two gaps agree within a quarter,
		// and only once its last background block was followed by a
		// decision: keys with irregular gaps (requests arriving at
		// random) would cost more Takes than their waits are worth.
		prev := e.prevUse - e.pprevUse
		if e.pprevUse == 0 || 4*abs(gap-prev) > gap || e.lastUse < e.landedAt {
			return false
		}
	}
	lead := s.refillLead()
	need := e.lastUse + gap + lead // spendable until then
	switch {
	case e.lastUse+gap < now+lead: // due or late
		need = now + lead + hold/4
	case e.lastUse+gap > now+hold-lead:
		return false // a block taken now would lapse before it: later
	}
	for i := range e.blocks {
		if s.spendableUntil(&e.blocks[i]) > need {
			return false
		}
	}
	c := e.check
	size := max(e.size, ahead(e.use.demand(now, hold/2)), 1)
	return s.startRefill(e, c, clampSize(size, 1, s.cfg.maxBlock, c.Limit.Capacity()))
}

// fastBucket reports whether a block of units of limit l is a fast
// bucket's: a token bucket that refills them all within the ¾ hold and
// the slack after which the janitor would give them back (so returnEarly
// is false for its blocks).
func (s *Store) fastBucket(l weir.Limit, units int64) bool {
	if l.Algorithm != weir.TokenBucket {
		return false
	}
	hold := int64(s.cfg.hold)
	n, ok := ceilMulDiv(hold-hold/4+int64(s.cfg.slack), l.Quota, int64(l.Period))
	return !ok || n >= units
}

// refillLead is how long before a key's held units stop being spendable
// a background refill of it is asked for: three times the smoothed round
// trip of refills, at least an eighth of the hold and at most half of it.
// A refill that lands later than its lead makes callers wait on the store
// (the p99 of decisions); an earlier one means more Takes per second for
// the same demand (a block is spendable for a hold, or ¾ of one when it is
// given back early, minus the lead). On an idle machine a round trip to a
// local Redis takes well under a millisecond and the lead is hold/8; on
// the busy machine of docs/localquota.md, refills took 0-60 ms.
func (s *Store) refillLead() int64 {
	hold := int64(s.cfg.hold)
	return min(max(3*s.lat.Load(), hold/8), hold/2)
}

// noteLatency folds the round trip d (ns) of a background refill into
// s.lat, an exponentially weighted mean (weight 1/8 for the newest).
func (s *Store) noteLatency(d int64) {
	d = max(d, 0)
	for {
		old := s.lat.Load()
		if s.lat.CompareAndSwap(old, old+(d-old)/8) {
			return
		}
	}
}

// Refund first returns every unit this process holds for the checks of
// req (so that the shared store's ceiling, never more than the full quota,
// counts them), then passes req to the shared store as it is.
func (s *Store) Refund(ctx context.Context, req *weir.Request) error {
	if req != nil {
		now := s.nowNS()
		for _, e := range s.existing(req.Checks) {
			e.mu.Lock()
			bs := e.blocks
			e.blocks, e.avail, e.deniedUntil = nil, 0, 0
			e.gen++
			e.mu.Unlock()
			for i := range bs {
				s.giveBack(&bs[i], bs[i].units, now)
			}
		}
	}
	return s.inner.Refund(ctx, req)
}

// Reset forgets the local allowance of each check (returning nothing: the
// shared state is reset too) and resets the shared state.
func (s *Store) Reset(ctx context.Context, checks []weir.Check) error {
	for _, e := range s.existing(checks) {
		e.mu.Lock()
		e.blocks, e.avail, e.deniedUntil = nil, 0, 0
		e.gen++
		e.mu.Unlock()
	}
	return s.inner.Reset(ctx, checks)
}

// existing returns the entries of checks that exist.
func (s *Store) existing(checks []weir.Check) []*entry {
	var es []*entry
	for _, c := range checks {
		if e, ok := s.entries.Load(entryKey{engine.Name(c.Limit), c.Key}); ok {
			es = append(es, e.(*entry))
		}
	}
	return es
}

// Ping pings the shared store when it is a [weir.Pinger].
func (s *Store) Ping(ctx context.Context) error {
	if p, ok := s.inner.(weir.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// janitor returns units of blocks about to lapse and of idle entries, and
// forgets idle entries, every hold/4.
func (s *Store) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.cfg.hold/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.sweep(false)
		}
	}
}

// sweep returns what should go back now (all held units when closing).
func (s *Store) sweep(all bool) {
	now := s.nowNS()
	horizon := now + int64(s.cfg.hold/4)
	idle := now - int64(s.cfg.hold)*3/4
	// An entry is forgotten after three holds without a decision: later
	// than refresh looks back (two holds), so that a recurring key keeps
	// the times of its decisions.
	forgotten := now - 3*int64(s.cfg.hold)
	trapped := !all && s.trapped(now)
	keys, es := s.snapshot()
	type ret struct {
		b     block
		units int64
	}
	var rets []ret
	var forget []entryKey
	for i, e := range es {
		e.mu.Lock()
		s.drop(e, now)
		isIdle := e.lastUse <= idle
		e.blocks = slices.DeleteFunc(e.blocks, func(b block) bool {
			// An idle key's block goes back when that gives the shared
			// state something now. A fast bucket's would give nothing (its
			// units have refilled there): it is kept, spendable until it
			// expires, so that a process that stalled (not its callers)
			// finds its units still there when it runs again.
			if all || isIdle && s.worthReturning(&b, now) || b.expires <= horizon && s.returnEarly(&b) {
				rets = append(rets, ret{b, b.units})
				e.avail -= b.units
				e.wentBack(b.units)
				return true
			}
			return false
		})
		if len(e.blocks) == 0 && !e.fetching && e.lastUse <= forgotten && e.deniedUntil <= now {
			forget = append(forget, keys[i])
		}
		if !all && s.refresh(e, now, trapped) {
			s.stats.refreshes.Add(1)
		}
		e.mu.Unlock()
	}
	for _, r := range rets {
		s.giveBack(&r.b, r.units, now)
	}
	if len(forget) > 0 {
		s.mu.Lock()
		for _, k := range forget {
			if v, ok := s.entries.Load(k); ok {
				e := v.(*entry)
				e.mu.Lock()
				if len(e.blocks) == 0 && !e.fetching && e.lastUse <= forgotten {
					e.dead = true // a Take that found it before looks it up again
					s.entries.Delete(k)
				}
				e.mu.Unlock()
			}
		}
		s.mu.Unlock()
	}
}

// giveBack returns units of b (already removed from the allowance) to the
// shared store; what cannot be returned safely is counted as wasted.
func (s *Store) giveBack(b *block, units, now int64) {
	cost, at := giveBack(b, units, now, s.cfg.slack)
	if cost > 0 {
		s.stats.returns.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.slack)
		err := s.inner.Refund(ctx, &weir.Request{Checks: []weir.Check{{Key: b.key, Limit: b.limit}}, Cost: cost, At: at})
		cancel()
		if err != nil {
			cost = 0 // lost, never counted twice: the shared state keeps them charged
		}
	}
	s.stats.wasted.Add(units - cost)
	s.stats.returned.Add(cost)
}

// Close stops the background work, returns every unspent unit to the
// shared store and makes later Takes fail with [ErrClosed]. It does not
// close the shared store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	s.mu.Unlock()
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	close(s.done)
	s.wg.Wait()
	if s.cfg.sync > 0 {
		s.settleAll() // charge what was admitted
		s.settleDebts()
		return nil
	}
	s.sweep(true)
	return nil
}

// Stats counts what a Store did since New.
type Stats struct {
	Blocks    int64 // blocks taken from the shared store
	Taken     int64 // units those blocks held
	Returned  int64 // units given back to the shared store
	Wasted    int64 // units that lapsed unspent or could not be given back
	Local     int64 // requests decided from local allowances
	Passed    int64 // requests passed to the shared store as they were
	Waits     int64 // local requests that waited on the shared store: for a Take of their own or a refill in flight
	Fetches   int64 // of Waits, those that took a block of their own (no refill of the key was in flight)
	Created   int64 // entries created: a key's first local request, or its first after it was forgotten idle
	Refills   int64 // background Takes started before a key ran short (optimistic mode: settles started when a key's credit ran low)
	Refreshes int64 // background Takes the janitor started for a recurring key whose units were about to lapse between its decisions
	Returns   int64 // Refunds sent to give units back

	// Landed counts the background Takes (refills and refreshes) that came
	// back, and LandedTime their round trips in all, from sending to
	// landing: LandedTime/Landed is their mean. A refill is asked for Lead
	// before a key's units stop being spendable: three times a smoothed
	// round trip, within [hold/8, hold/2] (0 in the optimistic mode, and
	// once Close has begun). A block lives L − Lead at most, so slow round
	// trips mean more Takes (docs/localquota.md, "Blocks").
	Landed     int64
	LandedTime time.Duration
	Lead       time.Duration
}

// Stats returns the counters of s.
func (s *Store) Stats() Stats {
	return Stats{
		Blocks: s.stats.blocks.Load(), Taken: s.stats.taken.Load(), Returned: s.stats.returned.Load(),
		Wasted: s.stats.wasted.Load(), Local: s.stats.local.Load(), Passed: s.stats.passed.Load(),
		Waits: s.stats.waits.Load(), Fetches: s.stats.fetches.Load(), Created: s.stats.created.Load(),
		Refills: s.stats.refills.Load(), Refreshes: s.stats.refreshes.Load(), Returns: s.stats.returns.Load(),
		Landed: s.stats.landed.Load(), LandedTime: time.Duration(s.stats.landedNS.Load()), Lead: s.lead(),
	}
}

// lead is Stats.Lead: the refill lead, or 0 in the optimistic mode, which
// does not refill ahead, and once Close has begun.
func (s *Store) lead() time.Duration {
	select {
	case <-s.done:
		return 0
	default:
	}
	if s.cfg.sync > 0 {
		return 0
	}
	return time.Duration(s.refillLead())
}
