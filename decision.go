package weir

import (
	"strconv"
	"time"
)

// A Decision is the answer to one request against a limiter: admitted or
// not, and what the caller may tell its own caller (remaining quota, when to
// retry, when the quota is full again). Being limited is a Decision with
// Allowed false, never an error.
type Decision struct {
	// Allowed reports whether the request was admitted (and charged to every
	// limit). For a peek (cost 0) it reports whether one unit is available.
	Allowed bool
	// Limit is the limit that decided: when denied, the denying limit with
	// the longest RetryAfter; when allowed, the limit with the fewest units
	// remaining. Its Name is never empty when the Decision comes from a
	// [Limiter].
	Limit Limit
	// Remaining is the number of units of Limit still available after this
	// request (when denied: available now). Never negative.
	Remaining int64
	// RetryAfter is, when denied, how long until the same request would be
	// admitted if nothing else is; 0 when allowed. A retry after RetryAfter
	// is admitted unless other requests took the quota first. After a
	// charge ([Limiter.Charge], a settle's excess), which is always
	// allowed, it is how long until one unit is available again: 0 unless
	// the charge emptied Limit or left it in debt.
	RetryAfter time.Duration
	// ResetAfter is how long until Limit is back to its full quota if
	// nothing else is admitted.
	ResetAfter time.Duration
	// Delay is, for an admitted reservation ([Limiter.Reserve],
	// [Limiter.Wait]), how long after Time the caller may act; 0 otherwise.
	Delay time.Duration
	// Debt is, after a charge, the number of units Limit is owed beyond
	// empty (rounded up): later requests are denied until time repays it.
	// 0 otherwise.
	Debt int64
	// Clamped reports that a charge was cut short: some limit would have
	// owed more than its MaxDebt (or MaxDebtUnits), and holds that much.
	Clamped bool
	// Time is the store's clock when it decided (Redis server time for
	// the Redis store).
	Time time.Time
	// Source says which path produced the decision: the store, or a
	// failure policy when the store could not be reached.
	Source Source
}

// A Source says which path produced a [Decision].
type Source uint8

// The sources of a decision.
const (
	// SourceStore: the store decided.
	SourceStore Source = iota
	// SourceFailOpen: the store failed and the failure policy admitted.
	SourceFailOpen
	// SourceFailClosed: the store failed and the failure policy denied.
	SourceFailClosed
	// SourceFallback: the store failed and a local fallback limiter decided.
	SourceFallback
)

var sourceNames = [...]string{"store", "fail-open", "fail-closed", "fallback"}

// String returns "store", "fail-open", "fail-closed" or "fallback".
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// A Status is the outcome of one [Check] of a multi-limit request, filled in
// when [Request.Statuses] has room for it.
type Status struct {
	Allowed    bool          // this limit alone admits the request
	Remaining  int64         // units left under this limit: after the request if the request was admitted, else now
	RetryAfter time.Duration // when this limit alone denies: how long until it would admit
	ResetAfter time.Duration // until this limit is full again
	Delay      time.Duration // reservation delay imposed by this limit
	Debt       int64         // after a charge: units owed beyond empty (rounded up)
	Clamped    bool          // a charge was cut short by this limit's MaxDebt
}
