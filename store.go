package weir

import (
	"context"
	"time"
)

// A Check is one limit applied to one key. The pair (Limit.Name, Key) names
// the state a store keeps: two checks with the same pair share state.
type Check struct {
	Key   string
	Limit Limit
}

// A Request asks a [Store] to decide on every Check at once.
type Request struct {
	// Checks are the limits to apply. A [Limiter] fills in every name.
	Checks []Check
	// Cost is the number of units the request takes, from 0 to the smallest
	// Limit.Capacity of the checks. 0 is a peek: nothing changes and the
	// Decision says whether one unit is available.
	Cost int64
	// MaxWait, when positive, lets token-bucket limits admit a request
	// that conforms within MaxWait from now (a reservation; Decision.Delay
	// says when to act). Other algorithms ignore it.
	MaxWait time.Duration
	// Lease identifies the holder for Concurrency limits: Take records it,
	// Refund releases it. It must not contain a NUL byte.
	Lease string
	// Queue, when positive on a Take with a Lease and a Cost, makes a denial
	// put the holder in line at every Concurrency limit of the request, or
	// keep its place, for Queue from now (at most the lease TTL): until the
	// place lapses, holders that come later are not admitted ahead of it.
	// Ask again before it lapses to keep the place; an admission or a
	// Refund with the same Lease ends it. [Limiter.Acquire] does this.
	Queue time.Duration
	// At is, for Refund, the instant the refunded units were charged for:
	// the Decision's Time plus its Delay.
	At time.Time
	// Force, on a Take, charges Cost to every check whether or not it
	// fits (see [Limiter.Charge]): a limit may go into debt, up to its
	// MaxDebt, and is never denied. Cost may then exceed the capacity, up
	// to MaxDebtUnits; MaxWait and Queue are ignored; Concurrency checks
	// are invalid. On a Refund, Force gives the units back even if their
	// instant has passed (a settlement, see [Reservation.Settle]): the
	// token bucket moves its arrival time back by Cost/rate, never before
	// now; the windows give back in the window of At as a plain Refund.
	Force bool
	// Statuses, when its length equals len(Checks), receives the outcome of
	// each check. Stores leave it alone otherwise.
	Statuses []Status

	limitsValidated bool // set by a Limiter: Checks hold the limits it validated in NewLimiter
}

// LimitsValidated reports whether the limits of req's Checks are known to
// be valid: req was built by a [Limiter], which validates its limits once,
// in [NewLimiter]. A store may then skip [Limit.Validate] for them. The
// request's other fields (Cost, MaxWait, Queue, Lease) change with every
// call and must be checked on every request, whoever built it.
func (req *Request) LimitsValidated() bool { return req.limitsValidated }

// A Store keeps limiter state and decides atomically where the state lives:
// the memory store under a lock, the Redis store in one Lua script, the
// SQLite store in one transaction. All stores run the same algorithms
// (see docs/algorithms.md) and pass the same conformance suite,
// storetest.Run.
//
// A Store is safe for concurrent use. Optional capabilities are discovered
// by type assertion: io.Closer to release resources, [Pinger] for health
// checks.
type Store interface {
	// Take decides on every check of req at one instant of the store's
	// clock. If every check admits and req.Cost > 0, every check is charged;
	// if any denies, none is. With req.Force every check is charged and
	// none denies. It returns an error only for invalid input
	// (matching ErrInvalid) or when the store failed (matching
	// ErrUnavailable); a denial is a Decision with Allowed false.
	Take(ctx context.Context, req *Request) (Decision, error)
	// Refund gives back req.Cost units charged at req.At to each check,
	// never leaving more than a limit's full quota, and releases req.Lease
	// from Concurrency checks.
	Refund(ctx context.Context, req *Request) error
	// Reset forgets the state of each check, as if its key were new.
	Reset(ctx context.Context, checks []Check) error
}

// A Pinger is a Store that can report whether its backend is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}
