// Package sim answers "what would this policy do?" before it is deployed:
// it runs limits against a traffic pattern in virtual time, with the same
// algorithm code the stores run, and summarises what each one admitted.
//
// A [Scenario] is a set of limits applied together, as a [weir.Limiter]
// applies them; [Run] drives each scenario's own [memstore.Store], whose
// clock is the run's virtual time, with every request of a [Pattern]
// (constant, Poisson, bursts, a daily curve, or a [Replay] of recorded
// timestamps with optional keys and costs). Nothing sleeps: a day of
// traffic at 1,000 requests per second (86.4 million decisions) takes
// about 20 seconds of CPU time (docs/sim.md has the measurements).
//
// The one liberty taken with the store: a request that repeats a denied
// request on the same key (same cost) before the denial's RetryAfter has
// passed is counted as denied, with the remaining RetryAfter, without
// asking the store. This is exact, not an estimate: a denial changes no
// state and RetryAfter is the earliest instant the same request is
// admitted (docs/algorithms.md); the tests check that the results are
// identical to asking the store every time. It is what makes overload
// cheap to simulate.
//
// Each [Result] counts admitted, denied and rejected requests, the units
// admitted over time (for pictures, see [Plot]), the distribution of
// RetryAfter, and per limit the largest number of units admitted for one
// key in any window of the limit's Period, beside the algorithm's exact
// bound on it ([WindowBound]). The picture is drawn with gonum.org/v1/plot,
// which is why this package lives in the server module and not in the
// standard-library-only root module.
package sim
