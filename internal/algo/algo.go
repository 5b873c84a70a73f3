// Package algo holds Weir's rate-limiting math as pure functions of
// (parameters, state, now, cost). It does no I/O, reads no clock and never
// allocates on the token-bucket, window and counter paths.
//
// Every store (memory, SQLite, Redis) runs exactly this logic: the memory and
// SQLite stores call it directly, and the Redis Lua scripts are ports that the
// shared conformance suite checks against it.
//
// Time is an int64 count of nanoseconds since the Unix epoch. All arithmetic is
// integer; the token bucket keeps its theoretical arrival time as an exact
// rational (nanoseconds plus a remainder over Quota), so no error accumulates.
//
// The multi-limit protocol is [Decide]: every limit is checked with [Check]
// and, only if all admit, every limit is charged with [Commit].
package algo

import (
	"errors"
	"fmt"
	"math"
)

// Kind selects an algorithm. The values match weir.Algorithm.
type Kind uint8

// The algorithms.
const (
	TokenBucket          Kind = iota // GCRA, virtual scheduling
	SlidingWindowLog                 // exact log of admitted events
	SlidingWindowCounter             // two-window weighted estimate
	FixedWindow                      // epoch-aligned counter
	Concurrency                      // leases held at once
	numKinds
)

// MaxPeriod is the longest period (and token-bucket span Burst*Period/Quota)
// accepted: 100 years of 365 days, so that now + 2*MaxPeriod stays within
// int64 nanoseconds for any present-day now.
const MaxPeriod = 100 * 365 * 24 * 3600 * int64(1e9)

// Params describes one limit.
type Params struct {
	Kind Kind
	// Quota is the number of units admitted per Period (Concurrency: the
	// number of units held at once).
	Quota int64
	// Period is the window length in nanoseconds (Concurrency: the lease TTL).
	Period int64
	// Burst is the token-bucket capacity; 0 means Quota. Other kinds must
	// leave it 0.
	Burst int64
	// MaxDebt caps the debt a forced charge ([Force]) can leave, in units
	// beyond an empty limit; 0 means MaxDebtUnits, and for the
	// token bucket also at most a span of MaxPeriod. Concurrency must
	// leave it 0.
	MaxDebt int64
}

// MaxDebtUnits is the largest debt of any limit and the largest cost of
// one forced charge: 2^50 units, exact in every store (the Redis scripts
// compute in doubles).
const MaxDebtUnits = 1 << 50

// ErrParams is wrapped by every error of [Params.Validate].
var ErrParams = errors.New("invalid limit")

// ParamError names the field of Params that is wrong.
type ParamError struct {
	Field  string // "Quota", "Period", "Burst" or "Kind"
	Reason string
}

// Error returns "Field: Reason".
func (e *ParamError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns ErrParams.
func (e *ParamError) Unwrap() error { return ErrParams }

// Validate reports whether p is usable. The error is a *ParamError.
func (p *Params) Validate() error {
	if p.Kind >= numKinds {
		return &ParamError{"Kind", fmt.Sprintf("unknown algorithm %d", p.Kind)}
	}
	if p.Quota < 1 {
		return &ParamError{"Quota", fmt.Sprintf("must be at least 1 (got %d)", p.Quota)}
	}
	if p.Period < 1 {
		return &ParamError{"Period", fmt.Sprintf("must be positive (got %dns)", p.Period)}
	}
	if p.Period > MaxPeriod {
		return &ParamError{"Period", fmt.Sprintf("must be at most 100 years (got %dns)", p.Period)}
	}
	if p.Burst < 0 {
		return &ParamError{"Burst", fmt.Sprintf("must not be negative (got %d)", p.Burst)}
	}
	if p.Kind != TokenBucket && p.Burst != 0 {
		return &ParamError{"Burst", "applies only to the token bucket"}
	}
	if p.MaxDebt < 0 || p.MaxDebt > MaxDebtUnits {
		return &ParamError{"MaxDebt", fmt.Sprintf("must be from 0 to 2^50 (got %d)", p.MaxDebt)}
	}
	if p.Kind == Concurrency && p.MaxDebt != 0 {
		return &ParamError{"MaxDebt", "does not apply to concurrency limits: they cannot be charged"}
	}
	if p.Kind == TokenBucket {
		// The tolerance Burst*Period/Quota must fit comfortably in int64 so
		// that now+tolerance cannot overflow before the year 2262.
		tau, _, ok := mulDiv(p.Capacity(), p.Period, p.Quota)
		if !ok || tau > MaxPeriod {
			return &ParamError{"Burst", fmt.Sprintf("burst %d at %d per %dns spans more than 100 years", p.Capacity(), p.Quota, p.Period)}
		}
		if p.MaxDebt > 0 {
			span, _, ok := mulDiv(p.MaxDebt, p.Period, p.Quota)
			if !ok || span > MaxPeriod {
				return &ParamError{"MaxDebt", fmt.Sprintf("a debt of %d at %d per %dns spans more than 100 years", p.MaxDebt, p.Quota, p.Period)}
			}
		}
	}
	return nil
}

// Capacity is the largest cost one request may have: Burst (or Quota when
// Burst is 0) for the token bucket, Quota for the others.
func (p *Params) Capacity() int64 {
	if p.Kind == TokenBucket && p.Burst > 0 {
		return p.Burst
	}
	return p.Quota
}

// State is the stored state of one limit on one key. The zero State is fresh:
// it admits as if the key had never been seen.
//
// Field use by Kind:
//
//	TokenBucket:          A = TAT (ns), B = TAT remainder numerator in [0, Quota)
//	FixedWindow:          A = window start (ns), B = units in that window
//	SlidingWindowCounter: A = current window start, B = units in it, C = units in the previous window
//	SlidingWindowLog:     Log = admitted events, oldest first
//	Concurrency:          Leases = leases held, Waiters = holders in line
type State struct {
	A, B, C int64
	Log     []Event
	Leases  []Lease
	Waiters []Waiter
}

// Event is one admitted request of a sliding-window log.
type Event struct {
	At   int64 // when it was admitted (ns)
	Cost int64 // units it took
}

// Lease is one holder of a concurrency limit.
type Lease struct {
	ID      string // chosen by the caller, unique per holder
	Expires int64  // ns; the lease no longer counts at or after this instant
	Cost    int64  // units held
}

// Waiter is a holder waiting in line for a concurrency limit (see
// [Enqueue]): while its place lasts, holders that came later are not
// admitted ahead of it.
type Waiter struct {
	ID      string // the lease id it will hold
	Since   int64  // ns; when it joined the line (ties: the smaller ID first)
	Expires int64  // ns; its place lapses at or after this instant
	Cost    int64  // units it asks for
}

// Result is the outcome of a check. All durations are nanoseconds, never negative.
type Result struct {
	// Allowed reports whether the request is (or, for a peek, a cost-1
	// request would be) admitted.
	Allowed bool
	// Remaining is the number of units still available after the request
	// (for a denial or a peek: available now).
	Remaining int64
	// RetryAfter is, when denied, how long until the same request would be
	// admitted; 0 when allowed.
	RetryAfter int64
	// ResetAfter is how long until the limit is back to its full quota if
	// nothing else is admitted.
	ResetAfter int64
	// Delay is, for an allowed token-bucket reservation, how long the caller
	// must wait before acting; 0 otherwise.
	Delay int64
	// Debt is the number of units owed beyond an empty limit (rounded up),
	// after a forced charge; 0 otherwise.
	Debt int64
	// Clamped reports that a forced charge was cut short by the limit's
	// debt cap (MaxDebt).
	Clamped bool
}

// Check reports the outcome of taking cost units at now without changing s.
// Cost 0 is a peek: Allowed says whether one unit is available.
// maxWait > 0 lets the token bucket admit a request that conforms within
// maxWait (a reservation; Result.Delay says when); other kinds ignore it.
// p must be valid and 0 <= cost <= p.Capacity().
func Check(p *Params, s *State, now, cost, maxWait int64) Result {
	return check(p, s, now, cost, maxWait, "")
}

// check is Check for the holder lease: for Concurrency, a holder in line
// is behind only those who joined before it, and anyone else behind all.
func check(p *Params, s *State, now, cost, maxWait int64, lease string) Result {
	switch p.Kind {
	case TokenBucket:
		return gcraCheck(p, s, now, cost, maxWait)
	case FixedWindow:
		return fixedCheck(p, s, now, cost)
	case SlidingWindowCounter:
		return counterCheck(p, s, now, cost)
	case SlidingWindowLog:
		return logCheck(p, s, now, cost)
	case Concurrency:
		return leaseCheck(p, s, now, cost, lease)
	}
	return Result{}
}

// Commit charges cost units at now to s. Call it only after Check with the
// same arguments allowed the request. lease names the holder for Concurrency.
func Commit(p *Params, s *State, now, cost int64, lease string) {
	if cost <= 0 {
		return
	}
	switch p.Kind {
	case TokenBucket:
		gcraCommit(p, s, now, cost)
	case FixedWindow:
		fixedCommit(p, s, now, cost)
	case SlidingWindowCounter:
		counterCommit(p, s, now, cost)
	case SlidingWindowLog:
		logCommit(p, s, now, cost)
	case Concurrency:
		leaseCommit(p, s, now, cost, lease)
	}
}

// Enqueue puts holder lease in line, or keeps its place, on every
// Concurrency limit of ps: call it when Decide denied a request that will
// be asked again. The place lasts for queue ns from now (at most the
// limit's Period, the lease TTL, so state never outlives now + Period), and
// each call renews it; a later admission of the same holder, or its
// Refund, ends it. It reports whether any state changed (the caller must
// then save it). Other kinds are left alone.
func Enqueue(ps []Params, ss []*State, now, cost int64, lease string, queue int64) bool {
	if cost <= 0 || lease == "" || queue <= 0 {
		return false
	}
	changed := false
	for i := range ps {
		if ps[i].Kind == Concurrency {
			leaseEnqueue(ss[i], now, cost, lease, satAdd(now, min(queue, ps[i].Period)))
			changed = true
		}
	}
	return changed
}

// Refund gives back cost units that were committed at the instant at (for a
// token-bucket reservation: its time to act), as far as the algorithm can
// tell them apart, never leaving more than the full quota available. The
// token bucket follows golang.org/x/time/rate's Reservation.Cancel: it gives
// nothing back once at is before now, and keeps the span of requests
// reserved after this one. For Concurrency it releases the lease and its
// place in line (cost is ignored).
func Refund(p *Params, s *State, now, at, cost int64, lease string) {
	switch p.Kind {
	case TokenBucket:
		gcraRefund(p, s, now, at, cost)
	case FixedWindow:
		fixedRefund(p, s, at, cost)
	case SlidingWindowCounter:
		counterRefund(p, s, now, at, cost)
	case SlidingWindowLog:
		logRefund(s, at, cost)
	case Concurrency:
		leaseRelease(s, lease)
	}
}

// Fresh reports whether s, at now, admits exactly what the zero State would.
// A store may then delete s without admitting one request more (eviction).
func Fresh(p *Params, s *State, now int64) bool {
	return ExpiresAt(p, s) <= now
}

// ExpiresAt is the earliest instant from which s is fresh if nothing more is
// committed: a store may set its TTL to this. After a commit at now it is
// at most now + Period for the fixed window, log and concurrency (leases
// and places in line alike),
// now + 2*Period for the counter, now + Burst*Period/Quota for the token
// bucket (plus the Delay of a reservation).
func ExpiresAt(p *Params, s *State) int64 {
	switch p.Kind {
	case TokenBucket:
		if s.B > 0 {
			return s.A + 1
		}
		return s.A
	case FixedWindow:
		if s.B == 0 {
			return math.MinInt64
		}
		return s.A + p.Period
	case SlidingWindowCounter:
		if s.B > 0 {
			return s.A + 2*p.Period
		}
		if s.C > 0 {
			return s.A + p.Period
		}
		return math.MinInt64
	case SlidingWindowLog:
		if len(s.Log) == 0 {
			return math.MinInt64
		}
		return s.Log[len(s.Log)-1].At + p.Period
	case Concurrency:
		end := int64(math.MinInt64)
		for _, l := range s.Leases {
			end = max(end, l.Expires)
		}
		for _, w := range s.Waiters {
			end = max(end, w.Expires)
		}
		return end
	}
	return math.MinInt64
}

// Prune drops expired log events and leases from s. It never changes a
// decision; stores call it to bound memory.
func Prune(p *Params, s *State, now int64) {
	switch p.Kind {
	case SlidingWindowLog:
		s.Log = s.Log[logFirstLive(s.Log, now-p.Period):]
		if len(s.Log) == 0 {
			s.Log = nil
		}
	case Concurrency:
		leasePrune(s, now)
	}
}

// Decide runs the all-or-nothing protocol over several limits: it checks
// every limit and commits all of them only if all allow and cost > 0.
// out, if len(out) == len(ps), receives each limit's Result. It returns
// whether the request was admitted and the index of the deciding limit: when
// denied, the denying limit with the longest RetryAfter; when allowed, the
// limit with the fewest Remaining (ties: the first).
func Decide(ps []Params, ss []*State, now, cost, maxWait int64, lease string, out []Result) (allowed bool, decider int, agg Result) {
	allowed = true
	decider = -1
	var delay int64
	if len(ps) > 1 && maxWait > 0 {
		// Only token buckets can promise a future slot; a window admits
		// now or not at all, so a request that mixes them cannot reserve.
		for i := range ps {
			if ps[i].Kind != TokenBucket {
				maxWait = 0
				break
			}
		}
	}
	for i := range ps {
		r := check(&ps[i], ss[i], now, cost, maxWait, lease)
		if len(out) == len(ps) {
			out[i] = r
		}
		switch {
		case decider < 0:
			decider, agg = i, r
		case !r.Allowed && (agg.Allowed || r.RetryAfter > agg.RetryAfter):
			decider, agg = i, r
		case r.Allowed && agg.Allowed && r.Remaining < agg.Remaining:
			decider, agg = i, r
		}
		if !r.Allowed {
			allowed = false
		}
		delay = max(delay, r.Delay)
	}
	if !allowed {
		agg.Allowed = false
		agg.Delay = 0
		// Nothing is charged: limits that would have admitted report what
		// they hold now, not what they would hold after the request.
		if len(out) == len(ps) {
			for i := range out {
				if out[i].Allowed {
					pk := check(&ps[i], ss[i], now, 0, 0, lease)
					out[i].Remaining, out[i].ResetAfter, out[i].Delay = pk.Remaining, pk.ResetAfter, 0
				}
			}
		}
		return false, decider, agg
	}
	// A reservation acts when the slowest limit lets it.
	agg.Delay = delay
	if cost > 0 {
		// A reservation over several buckets acts when the slowest lets it:
		// every bucket records it at that instant, so each one's bound holds
		// for the instants requests really act at. (Each bucket conforms
		// then, since its own delay is at most the largest. One bucket alone
		// is charged at now by Commit's own reservation rule.)
		at := now
		if len(ps) > 1 && delay > 0 {
			at = satAdd(now, delay)
		}
		for i := range ps {
			Commit(&ps[i], ss[i], at, cost, lease)
		}
	}
	return true, decider, agg
}
