package weir

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"sync"
	"time"
)

// An Option configures a [Limiter]. Every [Limit] is an Option (it adds the
// limit), and so are [MaxWait] and [WithLeaseID].
type Option interface{ apply(*config) }

type config struct {
	limits  []Limit
	maxWait time.Duration
	leaseID func() string
}

func (l Limit) apply(c *config) { c.limits = append(c.limits, l) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// MaxWait makes Wait, Acquire and Do give up at once, with a *LimitError,
// when admission would take longer than d (the "raise rather than delay"
// choice). 0, the default, waits as long as the context allows.
func MaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait = max(d, 0) })
}

// WithLeaseID sets the function that names concurrency leases. The default
// returns 128 random bits; ids must be unique among live holders.
func WithLeaseID(f func() string) Option {
	return optionFunc(func(c *config) { c.leaseID = f })
}

// A Limiter applies one or more limits to keys, all at once: a request is
// admitted only if every limit admits it, and then charged to all of them;
// a denied request is charged to none. State lives in a [Store], so the same
// limiter works in memory, in SQLite, or across machines through Redis.
//
//	lim, err := weir.NewLimiter(memstore.New(), weir.PerSecond(10), weir.PerDay(1000))
//	d, err := lim.Allow(ctx, "user:42")
//	if !d.Allowed { /* answer 429, retry after d.RetryAfter */ }
//
// Most servers call [Limiter.Allow] and reject what it denies; most clients
// and workers call [Limiter.Wait], which blocks until the request may go.
// [Limiter.Reserve] takes now and tells when to act; [Limiter.Acquire] holds
// units of a Concurrency limit until released. When the cost is known only
// after the work, [Limiter.TryReserve] (or Reserve) an estimate and
// [Reservation.Settle] it, or [Limiter.Charge] the cost afterwards; a
// limit may then go into debt (see docs/costs.md). Errors mean bad input
// ([ErrInvalid]) or a failed store ([ErrUnavailable]), never "limited".
//
// A Limiter is safe for concurrent use and holds no goroutines.
type Limiter struct {
	store    Store
	limits   []Limit
	capacity int64 // smallest Capacity
	maxWait  time.Duration
	leaseID  func() string
	allTB    bool // every limit is a token bucket: waits can reserve
	conc     []int
	reqs     sync.Pool

	relMu sync.Mutex
	relCh chan struct{} // closed when a lease of this limiter is released
}

// released returns a channel closed at the next Release of a lease of l.
func (l *Limiter) released() <-chan struct{} {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	if l.relCh == nil {
		l.relCh = make(chan struct{})
	}
	return l.relCh
}

func (l *Limiter) notifyRelease() {
	l.relMu.Lock()
	if l.relCh != nil {
		close(l.relCh)
		l.relCh = nil
	}
	l.relMu.Unlock()
}

// Waiting for leases polls the store with this backoff, since holders in
// other processes release without telling us; releases through this
// Limiter wake waiters at once. Between polls a waiter keeps its place in
// line for leaseQueue (Request.Queue), several polls' worth, so a waiter
// that crashed blocks the line for at most that long.
const (
	minLeasePoll = 5 * time.Millisecond
	maxLeasePoll = 100 * time.Millisecond
	leaseQueue   = 500 * time.Millisecond
)

// NewLimiter returns a limiter over store with the given limits and
// options. Every limit is validated; limits without a Name are named by
// their text form, and two limits may not share a Name.
func NewLimiter(store Store, opts ...Option) (*Limiter, error) {
	if store == nil {
		return nil, &FieldError{Field: "store", Reason: "is nil"}
	}
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if len(c.limits) == 0 {
		return nil, &FieldError{Field: "limits", Reason: "at least one Limit is needed"}
	}
	l := &Limiter{store: store, maxWait: c.maxWait, leaseID: c.leaseID, allTB: true, capacity: math.MaxInt64}
	if l.leaseID == nil {
		l.leaseID = randomID
	}
	seen := map[string]bool{}
	for i, lim := range c.limits {
		if err := lim.Validate(); err != nil {
			fe := err.(*FieldError)
			return nil, &FieldError{Field: fmt.Sprintf("limits[%d].%s", i, fe.Field[len("Limit."):]), Reason: fe.Reason}
		}
		lim = lim.Named()
		if seen[lim.Name] {
			return nil, &FieldError{Field: fmt.Sprintf("limits[%d].Name", i), Reason: fmt.Sprintf("duplicate name %q", lim.Name)}
		}
		seen[lim.Name] = true
		l.limits = append(l.limits, lim)
		l.capacity = min(l.capacity, lim.Capacity())
		if lim.Algorithm != TokenBucket {
			l.allTB = false
		}
		if lim.Algorithm == Concurrency {
			l.conc = append(l.conc, i)
		}
	}
	l.reqs.New = func() any {
		r := &Request{Checks: make([]Check, len(l.limits)), limitsValidated: true}
		for i, lim := range l.limits {
			r.Checks[i].Limit = lim
		}
		return r
	}
	return l, nil
}

// Limits returns the limiter's limits, with their names filled in.
func (l *Limiter) Limits() []Limit { return append([]Limit(nil), l.limits...) }

// Capacity is the largest cost one request may have: the smallest
// [Limit.Capacity] of the limiter's limits.
func (l *Limiter) Capacity() int64 { return l.capacity }

// Store returns the limiter's store.
func (l *Limiter) Store() Store { return l.store }

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (l *Limiter) checkCost(n int64) error {
	if n < 0 {
		return &FieldError{Field: "cost", Reason: fmt.Sprintf("must not be negative (got %d)", n)}
	}
	if n > l.capacity {
		return &FieldError{Field: "cost", Reason: fmt.Sprintf("%d exceeds the capacity %d of the limiter: it can never be admitted", n, l.capacity), Err: ErrExceedsCapacity}
	}
	return nil
}

// An ask is what one store decision asks for, beyond the key.
type ask struct {
	cost    int64         // units to take; 0 peeks
	maxWait time.Duration // token buckets may admit within it: a reservation
	lease   string        // the holder at Concurrency limits
	queue   time.Duration // a denied holder keeps its place in line this long (Request.Queue)
	force   bool          // charge whether or not it fits (Request.Force)
}

// take runs one store decision for key with pooled request memory.
func (l *Limiter) take(ctx context.Context, key string, a ask) (Decision, error) {
	r := l.reqs.Get().(*Request)
	for i := range r.Checks {
		r.Checks[i].Key = key
	}
	r.Cost, r.MaxWait, r.Lease, r.Queue, r.Force = a.cost, a.maxWait, a.lease, a.queue, a.force
	d, err := l.store.Take(ctx, r)
	r.Lease, r.Queue, r.Force = "", 0, false
	l.reqs.Put(r)
	return d, err
}

// giveBack refunds n units charged at at to every limit of key: a
// reservation that will not be used.
func (l *Limiter) giveBack(ctx context.Context, key string, n int64, at time.Time) error {
	return l.refund(ctx, key, n, at, "", nil)
}

// releaseLease releases lease (n units, granted at at; zero for a place in
// line) at the Concurrency limits of key. The rate limits stay charged:
// the work happened.
func (l *Limiter) releaseLease(ctx context.Context, key string, n int64, at time.Time, lease string) error {
	return l.refund(ctx, key, n, at, lease, l.conc)
}

// refund gives back n units charged at at, and lease, to the limits of key
// whose indexes are in only (nil: every limit).
func (l *Limiter) refund(ctx context.Context, key string, n int64, at time.Time, lease string, only []int) error {
	r := &Request{Cost: n, At: at, Lease: lease}
	if only == nil {
		for _, lim := range l.limits {
			r.Checks = append(r.Checks, Check{Key: key, Limit: lim})
		}
	} else {
		for _, i := range only {
			r.Checks = append(r.Checks, Check{Key: key, Limit: l.limits[i]})
		}
	}
	// A refund must happen even if ctx was just cancelled (that is often
	// why we refund), but not hang.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return l.store.Refund(rctx, r)
}

// Allow is shorthand for AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	return l.AllowN(ctx, key, 1)
}

// AllowN reports whether n units may pass for key now, and if so charges
// them to every limit. It never waits.
func (l *Limiter) AllowN(ctx context.Context, key string, n int64) (Decision, error) {
	if len(l.conc) > 0 {
		return Decision{}, ErrConcurrency
	}
	if err := l.checkCost(n); err != nil {
		return Decision{}, err
	}
	return l.take(ctx, key, ask{cost: n})
}

// Charge takes n units for key under every limit, whether or not they are
// available: the cost of work already done (tokens an LLM answered with,
// bytes sent, a failed login). It is never denied. A limit that had fewer
// than n units left goes into debt, and later requests are denied until
// time repays it (the token bucket: its arrival time moves past now plus
// the burst; the windows: the count passes the quota for the window; see
// docs/costs.md for what each algorithm carries and its exact bound). A
// limit's MaxDebt caps the debt: the rest of the charge is dropped and the
// Decision says Clamped (so does a charge above MaxDebtUnits, cut to it).
//
// The Decision is Allowed; its Remaining, Debt and RetryAfter (until one
// unit is back) describe the limit that is worst off after the charge.
// When the store failed and a failure policy answered (Decision.Source is
// not SourceStore), the charge went where the policy says: nowhere for
// fail-open and fail-closed (whose Decision is then not Allowed), to the
// fallback store for a fallback.
// Charge is not for Concurrency limits (units there are held and given
// back, not spent): on a limiter with one it returns an error naming the
// algorithm that matches ErrInvalid and ErrConcurrency. A negative n is an
// error naming "cost"; 0 charges nothing and reports the limits as they are
// (Allowed, like any charge).
func (l *Limiter) Charge(ctx context.Context, key string, n int64) (Decision, error) {
	if len(l.conc) > 0 {
		lim := l.limits[l.conc[0]]
		return Decision{}, &FieldError{Field: "Limit.Algorithm", Reason: fmt.Sprintf("limit %q is a concurrency limit: units are held and released, not charged", lim.Name), Err: ErrConcurrency}
	}
	if n < 0 {
		return Decision{}, &FieldError{Field: "cost", Reason: fmt.Sprintf("must not be negative (got %d)", n)}
	}
	clamped := n > MaxDebtUnits
	n = min(n, MaxDebtUnits)
	d, err := l.take(ctx, key, ask{cost: n, force: true})
	d.Clamped = d.Clamped || (clamped && err == nil)
	return d, err
}

// Settle accounts for reserved units, taken for key at the instant at
// (a Decision's Time plus its Delay), at their actual cost: a smaller
// actual gives reserved-actual units back (never above a limit's full
// quota, even if at has passed), a larger one charges actual-reserved as
// [Limiter.Charge] does; equal changes nothing. It returns the Decision of
// the charge when actual is larger, and a zero Decision otherwise.
//
// Settle keeps no record: it is for callers that carry a reservation
// across processes (a server's settle call); in one process use
// [Reservation.Settle], which also refuses to settle twice. After the key
// was Reset, a larger actual is charged against the fresh state, and a
// smaller one gives back to it as any refund does: nothing if it is full,
// else units taken since the Reset (one state per key cannot tell them
// apart), never above the full quota.
func (l *Limiter) Settle(ctx context.Context, key string, reserved int64, at time.Time, actual int64) (Decision, error) {
	if reserved < 0 {
		return Decision{}, &FieldError{Field: "reserved", Reason: fmt.Sprintf("must not be negative (got %d)", reserved)}
	}
	if actual < 0 {
		return Decision{}, &FieldError{Field: "actual", Reason: fmt.Sprintf("must not be negative (got %d)", actual)}
	}
	switch {
	case actual > reserved:
		return l.Charge(ctx, key, actual-reserved)
	case actual < reserved:
		if len(l.conc) > 0 {
			return Decision{}, ErrConcurrency
		}
		return Decision{}, l.settleBack(ctx, key, reserved-actual, at)
	}
	return Decision{}, nil
}

// settleBack gives back n units reserved at at, even if at has passed.
func (l *Limiter) settleBack(ctx context.Context, key string, n int64, at time.Time) error {
	r := l.reqs.Get().(*Request)
	for i := range r.Checks {
		r.Checks[i].Key = key
	}
	r.Cost, r.At, r.Force = n, at, true
	// Like a refund, a settlement must happen even if ctx was just
	// cancelled, but not hang.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	err := l.store.Refund(rctx, r)
	cancel()
	r.At, r.Force = time.Time{}, false
	l.reqs.Put(r)
	return err
}

// Peek reports what a request of one unit would get now, changing nothing.
func (l *Limiter) Peek(ctx context.Context, key string) (Decision, error) {
	return l.take(ctx, key, ask{cost: 0})
}

// Reset forgets key's state under every limit of l.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	checks := make([]Check, len(l.limits))
	for i, lim := range l.limits {
		checks[i] = Check{Key: key, Limit: lim}
	}
	return l.store.Reset(ctx, checks)
}

// Wait is shorthand for WaitN(ctx, key, 1).
func (l *Limiter) Wait(ctx context.Context, key string) (Decision, error) {
	return l.WaitN(ctx, key, 1)
}

// WaitN blocks until n units may pass for key, charges them, and returns
// the decision. It returns at once, charging nothing, when ctx is already
// done, when n can never be admitted, or when admission would come after
// ctx's deadline or after MaxWait (a *LimitError). If ctx ends while
// waiting, the units are given back and ctx's error is returned.
//
// When every limit is a token bucket, WaitN reserves its place at once (one
// store round trip) and sleeps until its time, so waiters are served in
// order. Otherwise it sleeps for the decision's RetryAfter and asks again.
func (l *Limiter) WaitN(ctx context.Context, key string, n int64) (Decision, error) {
	if len(l.conc) > 0 {
		return Decision{}, ErrConcurrency
	}
	return l.waitN(ctx, key, n, "")
}

// A wait is the time budget of one WaitN or Acquire: from start, at most
// MaxWait and at most until ctx's deadline.
type wait struct {
	start  time.Time
	budget time.Duration
	cause  error // context.DeadlineExceeded when ctx's deadline set the budget
}

func (l *Limiter) newWait(ctx context.Context) wait {
	w := wait{start: time.Now(), budget: math.MaxInt64}
	if l.maxWait > 0 {
		w.budget = l.maxWait
	}
	if dl, ok := ctx.Deadline(); ok {
		if u := time.Until(dl); u < w.budget {
			w.budget, w.cause = max(u, 0), context.DeadlineExceeded
		}
	}
	return w
}

// left is the budget not yet spent.
func (w *wait) left() time.Duration { return w.budget - time.Since(w.start) }

// exceeded is the error of a wait that gives up on d.
func (w *wait) exceeded(d Decision) error { return &LimitError{Decision: d, Cause: w.cause} }

// waitN is WaitN and Acquire (with a lease): it reserves and sleeps when
// every limit is a token bucket, and waits in line otherwise.
func (l *Limiter) waitN(ctx context.Context, key string, n int64, lease string) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	if err := l.checkCost(n); err != nil {
		return Decision{}, err
	}
	w := l.newWait(ctx)
	if l.allTB && lease == "" {
		return l.reserveAndSleep(ctx, key, n, &w)
	}
	return l.waitInLine(ctx, key, n, lease, &w)
}

// reserveAndSleep takes n units for key with one store round trip that
// reserves the place of a request conforming within the budget, then
// sleeps until its time. If ctx ends first, the units are given back.
func (l *Limiter) reserveAndSleep(ctx context.Context, key string, n int64, w *wait) (Decision, error) {
	d, err := l.take(ctx, key, ask{cost: n, maxWait: w.budget})
	if err != nil {
		return d, err
	}
	if !d.Allowed {
		return d, w.exceeded(d)
	}
	if d.Delay <= 0 {
		return d, nil
	}
	t := time.NewTimer(d.Delay - time.Since(w.start))
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		_ = l.giveBack(ctx, key, n, d.Time.Add(d.Delay))
		return Decision{}, ctx.Err()
	}
}

// waitInLine asks the store again until it admits n units for key, the
// budget is spent, or ctx ends. Between asks it sleeps for the decision's
// RetryAfter, or, when a Concurrency limit denied, polls with a backoff
// (holders in other processes release without telling us) and wakes at
// once on a release through l. A lease waiter keeps its place in line at
// the Concurrency limits (Request.Queue) while it waits, and gives the
// place up at once, with a refund of its lease, when it stops waiting
// unadmitted.
func (l *Limiter) waitInLine(ctx context.Context, key string, n int64, lease string, w *wait) (Decision, error) {
	var t *time.Timer
	poll := minLeasePoll
	queued := false
	defer func() {
		if queued {
			_ = l.releaseLease(ctx, key, n, time.Time{}, lease)
		}
	}()
	for {
		var rel <-chan struct{}
		var queue time.Duration
		if len(l.conc) > 0 {
			rel = l.released()
			if lease != "" {
				queue = min(leaseQueue, max(w.left(), minLeasePoll))
			}
		}
		d, err := l.take(ctx, key, ask{cost: n, lease: lease, queue: queue})
		if d.Allowed {
			queued = false
		}
		if err != nil || d.Allowed {
			return d, err
		}
		queued = queue > 0
		sleep, ok := nextSleep(d, w.left(), rel != nil, &poll)
		if !ok {
			return d, w.exceeded(d)
		}
		if t == nil {
			t = time.NewTimer(sleep)
			defer t.Stop()
		} else {
			t.Reset(sleep)
		}
		select {
		case <-t.C:
		case <-rel:
		case <-ctx.Done():
			return Decision{}, ctx.Err()
		}
	}
}

// nextSleep is how long waitInLine sleeps after the denial d with left of
// its budget, and false when it should give up. A denial by a Concurrency
// limit (when polling) is retried after the poll interval, which backs
// off, until the budget is spent: its RetryAfter is when leases expire,
// and holders usually release sooner. Any other denial is retried after
// its RetryAfter, if that is within the budget.
func nextSleep(d Decision, left time.Duration, polling bool, poll *time.Duration) (time.Duration, bool) {
	sleep := max(d.RetryAfter, time.Millisecond)
	if polling && d.Limit.Algorithm == Concurrency {
		sleep = min(sleep, *poll)
		*poll = min(2*(*poll), maxLeasePoll)
		if left <= 0 {
			return 0, false
		}
		return min(sleep, left), true
	}
	if d.RetryAfter > left {
		return 0, false
	}
	return sleep, true
}

// A Reservation is a place taken by [Limiter.Reserve] or
// [Limiter.TryReserve]: the units are charged, and the caller may act
// after [Reservation.Delay]. When the true cost is known only after the
// work (tokens of an LLM answer, bytes sent), reserve an estimate and
// [Reservation.Settle] it to the actual cost; [Reservation.Cancel] gives
// everything back when the work does not happen. A Reservation is
// accounted for once: after Settle or Cancel, Settle returns ErrSettled
// and Cancel does nothing. It is safe for concurrent use.
type Reservation struct {
	lim      *Limiter
	key      string
	n        int64
	decision Decision
	act      time.Time // local clock

	mu   sync.Mutex
	done bool // settled or cancelled
}

// Reserve charges n units for key now and says when the caller may act,
// without sleeping. The reservation is not OK (and charges nothing) when the
// wait would exceed MaxWait, or when a limit is not a token bucket and the
// units are not available right now. Call Cancel to give the units back if
// the caller will not act, or Settle once the true cost is known.
func (l *Limiter) Reserve(ctx context.Context, key string, n int64) (*Reservation, error) {
	wait := time.Duration(math.MaxInt64)
	if l.maxWait > 0 {
		wait = l.maxWait
	}
	return l.reserve(ctx, key, n, wait)
}

// TryReserve is Reserve that never waits: the reservation is OK only if
// the n units are available now, as AllowN would admit them. Servers that
// decide before the work and settle its cost after call it (see
// [Reservation.Settle]).
func (l *Limiter) TryReserve(ctx context.Context, key string, n int64) (*Reservation, error) {
	return l.reserve(ctx, key, n, 0)
}

func (l *Limiter) reserve(ctx context.Context, key string, n int64, wait time.Duration) (*Reservation, error) {
	if len(l.conc) > 0 {
		return nil, ErrConcurrency
	}
	if err := l.checkCost(n); err != nil {
		return nil, err
	}
	now := time.Now()
	d, err := l.take(ctx, key, ask{cost: n, maxWait: wait})
	if err != nil {
		return nil, err
	}
	return &Reservation{lim: l, key: key, n: n, decision: d, act: now.Add(d.Delay)}, nil
}

// OK reports whether the reservation holds a place.
func (r *Reservation) OK() bool { return r.decision.Allowed }

// Decision returns the decision the reservation was made with.
func (r *Reservation) Decision() Decision { return r.decision }

// Units is the number of units reserved (0 when not OK).
func (r *Reservation) Units() int64 {
	if !r.decision.Allowed {
		return 0
	}
	return r.n
}

// TimeToAct is when the caller may act, on the local clock.
func (r *Reservation) TimeToAct() time.Time { return r.act }

// Delay is how long from now until the caller may act; 0 if it may act now.
func (r *Reservation) Delay() time.Duration { return max(0, time.Until(r.act)) }

// Cancel gives the reserved units back, as far as later reservations allow
// (the same rule as golang.org/x/time/rate), and never above a limit's full
// quota. Calling it again, after Settle, or on a reservation that is not OK,
// does nothing.
func (r *Reservation) Cancel(ctx context.Context) error {
	if !r.decision.Allowed || r.n == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	return r.lim.giveBack(ctx, r.key, r.n, r.decision.Time.Add(r.decision.Delay))
}

// Settle accounts for the reservation at its actual cost, once the work is
// done and the cost known: a smaller actual gives the difference back (never
// above a limit's full quota), a larger one charges the excess as
// [Limiter.Charge] does, into debt if need be. It is [Limiter.Settle] for
// this reservation's key, units and instant.
//
// It returns the Decision of charging the excess when actual is larger
// (its Debt and Clamped say how far it went), and otherwise the
// reservation's own Decision, unchanged (call [Limiter.Peek] for a fresh
// view). A reservation is settled at most once: settling it again, or after
// Cancel, returns ErrSettled and changes nothing. A reservation that is not
// OK reserved nothing, and settling it does nothing and returns its denial:
// the work it refused should not have happened (charge it with
// [Limiter.Charge] if it did). A negative actual is an error naming
// "actual" that changes nothing.
func (r *Reservation) Settle(ctx context.Context, actual int64) (Decision, error) {
	if actual < 0 {
		return Decision{}, &FieldError{Field: "actual", Reason: fmt.Sprintf("must not be negative (got %d)", actual)}
	}
	if !r.decision.Allowed {
		return r.decision, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return Decision{}, ErrSettled
	}
	r.done = true
	d, err := r.lim.Settle(ctx, r.key, r.n, r.decision.Time.Add(r.decision.Delay), actual)
	if actual <= r.n {
		d = r.decision
	}
	return d, err
}

// A Lease holds units of the Concurrency limits of a limiter until
// [Lease.Release] is called or its TTL passes.
type Lease struct {
	lim      *Limiter
	key      string
	id       string
	n        int64
	decision Decision
	once     sync.Once
}

// ID is the lease's holder id as the store knows it.
func (s *Lease) ID() string { return s.id }

// Decision returns the decision the lease was granted with.
func (s *Lease) Decision() Decision { return s.decision }

// Release gives the lease's units back to the Concurrency limits (the rate
// limits of the same limiter stay charged: the work happened). Calling it
// again does nothing.
func (s *Lease) Release(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if len(s.lim.conc) > 0 {
			err = s.lim.releaseLease(ctx, s.key, s.n, s.decision.Time, s.id)
			s.lim.notifyRelease()
		}
	})
	return err
}

// TryAcquire takes n units for key under every limit without waiting. The
// lease is nil when the decision denies, which includes units that are free
// but wanted by holders waiting in line (see Acquire). On a limiter without Concurrency
// limits it is AllowN with a Lease whose Release does nothing.
func (l *Limiter) TryAcquire(ctx context.Context, key string, n int64) (*Lease, Decision, error) {
	if err := l.checkCost(n); err != nil {
		return nil, Decision{}, err
	}
	id := l.leaseID()
	d, err := l.take(ctx, key, ask{cost: n, lease: id})
	if err != nil || !d.Allowed {
		return nil, d, err
	}
	return &Lease{lim: l, key: key, id: id, n: n, decision: d}, d, nil
}

// Acquire is TryAcquire that waits, like WaitN, until the units are
// available, ctx ends, or MaxWait would be exceeded. Release the lease when
// the work is done.
//
// While it waits, Acquire keeps a place in line at the store's
// Concurrency limits ([Request.Queue]), so waiters in every process that
// shares the store are served roughly in the order they began waiting,
// and newcomers do not take freed units ahead of them. A freed unit is
// seen within about 100 ms (at once for a release through this Limiter).
func (l *Limiter) Acquire(ctx context.Context, key string, n int64) (*Lease, error) {
	id := l.leaseID()
	d, err := l.waitN(ctx, key, n, id)
	if err != nil {
		return nil, err
	}
	return &Lease{lim: l, key: key, id: id, n: n, decision: d}, nil
}

// Do runs fn once the limiter admits one unit for key: it waits like Wait
// (or, with Concurrency limits, acquires a lease and releases it when fn
// returns). It returns the limiter's error without calling fn, or fn's error.
func (l *Limiter) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	if len(l.conc) > 0 {
		lease, err := l.Acquire(ctx, key, 1)
		if err != nil {
			return err
		}
		defer func() { _ = lease.Release(ctx) }()
		return fn(ctx)
	}
	if _, err := l.Wait(ctx, key); err != nil {
		return err
	}
	return fn(ctx)
}

// Wrap returns fn limited by l under key: a decorator. Each call of the
// result is l.Do(ctx, key, fn).
func (l *Limiter) Wrap(key string, fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error { return l.Do(ctx, key, fn) }
}
