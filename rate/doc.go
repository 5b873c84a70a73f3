// Package rate is a token-bucket rate limiter that is a drop-in replacement
// for golang.org/x/time/rate: change the import path and the same code
// compiles and behaves the same, apart from the deliberate differences listed
// below. The types, methods, constants, error messages and Sometimes helper
// all match x/time v0.16.0.
//
// # Which method to call
//
// A Limiter holds up to Burst tokens and gains Limit tokens per second. Each
// event takes one token (or n, with the ...N variants).
//
//   - Wait (or WaitN) is what most callers want: it blocks until the event may
//     happen, honours the context's cancellation and deadline, and fails at
//     once, without sleeping or charging anything, when the deadline cannot be
//     met.
//   - Allow drops events that exceed the limit; it never blocks.
//   - Reserve schedules an event for later and lets the caller sleep and, if
//     it changes its mind, Cancel to give the tokens back.
//
// The methods without an explicit time (Allow, Reserve, Wait, Tokens,
// SetLimit, SetBurst, Reservation.Delay and Cancel) read the process's
// monotonic clock, which costs about half as much as time.Now. The methods
// with a time parameter (AllowN, ReserveN, TokensAt, SetLimitAt, SetBurstAt,
// DelayFrom, CancelAt) accept any time.Time, as in x/time, which makes them
// the right choice for simulations and tests.
//
// # The zero value
//
// The zero Limiter is valid and, as in x/time, has limit 0 and burst 0: it
// rejects every event (only requests for n <= 0 tokens succeed). Use
// NewLimiter for a useful limiter. NewLimiter(Inf, 0) allows everything. A
// Limiter must not be copied after first use. The zero Reservation is not OK,
// and the zero Sometimes runs its function exactly once.
//
// # Concurrency
//
// A Limiter is safe for concurrent use. Allow, AllowN, Reserve, ReserveN,
// Wait and the token queries are lock-free for finite positive limits: the
// bucket is an integer "zero point" (the time at which it would be empty) in
// a single machine word, updated with one compare-and-swap, and the time of
// the latest change lives in a second word that only grows. Denials perform
// no writes at all. There are no floating-point accumulators, so there is no
// drift: precision tests run 10^8 decisions over 30 simulated days and stay
// within one event of exact rational arithmetic.
//
// SetLimit, SetBurst, CancelAt, limits that are zero or negative, and rare
// re-centring of the internal time window take a mutex and publish a fresh
// immutable configuration; while one of them is in progress, reservations on
// the same Limiter wait for it (reads do not). SetLimit, SetBurst and an
// effective CancelAt therefore allocate once, where x/time does not.
// Concurrent calls are linearizable with respect to admission: under
// contention a call may be evaluated at a slightly earlier time than another
// goroutine has already seen, which can only make it see fewer tokens.
//
// # Deliberate differences from x/time
//
//   - Time never runs backwards inside the limiter (fixes golang/go#56287).
//     x/time evaluates a call stamped earlier than the previous state change
//     at the previous time's token count but then moves its clock back, so
//     alternating calls at t and t-Δ mint Δ×limit tokens every round trip
//     (100,000 alternating AllowN calls admit 100,000 events at a burst of 5).
//     Here such a call sees the tokens as of the latest time seen, consumes
//     them, and the limiter's clock stays at that latest time. The call's own
//     result (allowed or not, the Reservation's delay from its own t) is the
//     same as in x/time; only the re-minting afterwards is gone. The same
//     holds for SetLimitAt, SetBurstAt and CancelAt with an earlier time.
//     Internally a reservation made "in the past" ends, for CancelAt's
//     bookkeeping, on the limiter's timeline (the latest time plus the wait).
//   - Integer time. Times are nanoseconds on the process's monotonic clock
//     (wall-clock times without a monotonic reading are placed by their wall
//     time, as time.Time.Sub does). Explicit times further than about 292
//     years from process start saturate, and so do reservation delays of more
//     than 292 years (x/time's time.Time arithmetic can tell such far-off
//     instants apart). If a program mixes times that carry a monotonic reading
//     with times that do not, x/time measures each pair on the wall clock,
//     whereas this package places every time on one axis; the two differ by
//     however much the wall clock was stepped since process start.
//   - Rounding. A token interval that is not a whole number of nanoseconds is
//     kept in fixed point with a relative error of at most 2^-41 for rates up
//     to about 950/s and at most 2^-21/interval_ns above that (about 5e-10 at
//     10^6/s). Finite limits above about 10^15/s behave as if at that rate.
//     Token counts can therefore differ from x/time's float64 bookkeeping in
//     the last few significant digits, and a time to act can differ by a
//     nanosecond (x/time truncates a float, this package floors an integer).
//     When CancelAt gives back the latest reservation, the end of the
//     remaining queue is the one recorded when that reservation was made
//     (x/time recomputes it in floating point, and its equality test against
//     the previous reservation then sometimes fails by a nanosecond).
//   - Limits below about 8e-22 events per second and NaN limits behave like a
//     zero limit (no refill). Bursts whose complete refill takes more than
//     about 2^59 ticks (at least 18 years) are capped at what fits.
//   - Allocation: SetLimit, SetBurst, an effective CancelAt, and first use of
//     a zero Limiter with n <= 0, allocate once. Allow, AllowN, Wait (when it
//     does not block) and the token queries never allocate; Reserve and
//     ReserveN allocate the returned *Reservation, as in x/time.
package rate
