// Package storetest is the conformance suite for implementations of
// [weir.Store]. Every store of Weir (memory, Redis, SQLite) runs it, and so
// can third-party stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) weir.Store {
//			s := mystore.New(mystore.WithClock(now))
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The [Factory] must return a new, empty store (or one whose keys cannot
// collide with any other store the suite made) that reads every instant it
// decides at from now. The suite drives that fake clock: it only ever
// returns whole microseconds, moves forwards, and never sleeps in real time.
//
// What the suite checks (numbers such as R10 name entries of the test
// catalogue, docs/test-catalogue.md):
//
//   - Vectors: hand-derived tables of (instant, cost, allowed, remaining,
//     retry-after, reset-after) for every algorithm (token bucket as GCRA,
//     sliding log, sliding counter, fixed window, concurrency leases),
//     reservations with MaxWait, refunds, peeks, lease release and expiry,
//     Reset, and the Statuses of a multi-limit request.
//   - Multi-limit atomicity (R10): a request denied by one limit leaves the
//     others unchanged; limits with the same key but different names keep
//     separate state.
//   - Invalid input (R06): negative cost, cost above capacity, a missing
//     lease, a bad limit — an error matching weir.ErrInvalid that names the
//     field, and nothing charged.
//   - Key independence: distinct keys, including "", NUL bytes, braces,
//     colons and long UTF-8 strings, and (name, key) pairs that concatenate
//     to the same bytes, never share state.
//   - A reference model: random operations at random instants are applied to
//     the store and to a model that runs Weir's algorithms (internal/algo)
//     directly; every Decision must agree. This is what makes the Redis Lua
//     and the SQL ports provably the same algorithms as the memory store.
//   - Properties: the admission bound of each algorithm on random traces
//     (R01), exactly B admitted out of 1000 concurrent callers (R03), waits
//     and cancellation through a weir.Limiter (R08), an idle hour followed by
//     a herd (R09).
//
// Decisions, Remaining and Allowed must match exactly. Durations
// (RetryAfter, ResetAfter, Delay) may differ from the model by at most one
// microsecond, so a store may keep time in microseconds (as the Redis store
// does) as long as it rounds consistently.
//
// The suite makes a few tens of thousands of store operations; under
// testing.Short it makes fewer. It is meant to take seconds on an in-memory
// store and well under a minute on a networked one.
package storetest
