// Package weir is a rate-limiting toolkit: one correct core of algorithms
// and a keyed [Limiter], over stores that keep the state in memory
// (memstore), in SQLite (sqlitestore) or in Redis (redisstore) for many
// machines.
//
// # Which algorithm
//
// A [Limit] is an [Algorithm] with a quota per period:
//
//   - [TokenBucket] (the default, GCRA): smooth rate with bursts up to Burst.
//     One int64-sized state per key, and the only algorithm that supports
//     reservations, so [Limiter.Wait] queues callers in order. Choose it
//     unless you have a reason not to.
//   - [SlidingWindowLog]: exact "at most Quota in any window of Period";
//     memory grows with the requests in a window. For small quotas that must
//     be exact (logins, OTPs).
//   - [SlidingWindowCounter]: close to the sliding log in constant memory;
//     an estimate that can err near the limit.
//   - [FixedWindow]: windows aligned to the Unix epoch, like Envoy's
//     reference rate-limit service; up to 2*Quota around a boundary.
//   - [Concurrency]: at most Quota held at once, with leases that expire
//     after Period so a crashed holder cannot leak capacity.
//
// docs/algorithms.md gives each one's exact bound.
//
// # Which method
//
// Servers call [Limiter.Allow] and refuse what it denies; the [Decision]
// says how many units remain and when to retry, for RateLimit headers.
// Clients and workers call [Limiter.Wait], which blocks until the request may
// go, or [Limiter.Do] / [Limiter.Wrap] to run a function under the limit.
// [Limiter.Reserve] takes a place now and says when to act;
// [Limiter.Acquire] holds concurrency units until [Lease.Release].
// [Limiter.Peek] looks without taking. A [Router] maps items of any type to a
// key and a limiter.
//
// When the cost is known only after the work (LLM tokens, response bytes,
// failed logins), [Limiter.Charge] takes it afterwards, whether or not it
// fits: a limit may go into debt, capped by [Limit.MaxDebt], and later
// requests wait until time repays it. Or reserve an estimate with
// [Limiter.TryReserve] and [Reservation.Settle] it to the actual cost.
// docs/costs.md states the rules and docs/algorithms.md the bounds.
//
// Several limits on one limiter ("10 per second and 1000 per day") are
// checked together: a request is admitted only if all admit it, and a denied
// request is charged to none.
//
// # Plans and per-key overrides
//
// A [PlanTable] gives each key the limits of its tier: a live [Override]
// kept in the store (a boost, a pin, a move to another [Plan], with an
// optional end), else the table's key→plan map, else the default plan.
// [PlanTable.Choose] returns the key's [Limiter] at memory speed from a
// cached copy that is refreshed from the store once a second, so a change
// made by any process sharing the store is used by all. The stores keep
// overrides through the optional [OverrideStore] capability. A key's state
// carries over when its plan changes (docs/algorithms.md, "State under a
// changed limit").
//
// # Errors
//
// Being limited is a Decision, not an error. Errors are bad input (matching
// [ErrInvalid], a [*FieldError] naming the field; a cost above a limit's
// capacity also matches [ErrExceedsCapacity]) or a failed store
// ([ErrUnavailable]). Waiting calls that give up return a [*LimitError]
// matching [ErrLimited].
//
// # Zero values and concurrency
//
// The zero Limit is invalid; build limits with [PerSecond], [Per], [Every],
// [Concurrent] or [ParseLimit]. A Limiter is made with [NewLimiter], is safe
// for concurrent use, and starts no goroutines. Time in all algorithms is
// integer nanoseconds (microseconds in Redis), so nothing drifts.
//
// For a drop-in replacement of golang.org/x/time/rate, see package
// github.com/weir-go/weir/rate.
package weir
