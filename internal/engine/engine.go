// Package engine is the glue between weir's Store contract and the pure
// algorithms of internal/algo, shared by the stores that run the algorithms
// in Go (memory, SQLite): request validation, the all-or-nothing decision,
// and the conversion of results into a weir.Decision.
package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/algo"
)

// Params converts a limit into algorithm parameters.
func Params(l weir.Limit) algo.Params {
	return algo.Params{Kind: algo.Kind(l.Algorithm), Quota: l.Quota, Period: int64(l.Period), Burst: l.Burst, MaxDebt: l.MaxDebt}
}

// Name is the state name of a limit (see weir.Limit.Named).
func Name(l weir.Limit) string { return l.Named().Name }

// Validate checks a request a store is asked to take: every limit valid
// (skipped for a Limiter's, which it validated once: see
// Request.LimitsValidated), 0 <= Cost <= every capacity, no negative wait,
// a lease id without NUL bytes, and one when a Concurrency limit is
// charged. Errors are *weir.FieldError.
func Validate(req *weir.Request) error {
	if req == nil || len(req.Checks) == 0 {
		return &weir.FieldError{Field: "checks", Reason: "at least one Check is needed"}
	}
	if req.Cost < 0 {
		return &weir.FieldError{Field: "cost", Reason: fmt.Sprintf("must not be negative (got %d)", req.Cost)}
	}
	if req.Force && req.Cost > weir.MaxDebtUnits {
		return &weir.FieldError{Field: "cost", Reason: fmt.Sprintf("a forced charge must be at most 2^50 (got %d)", req.Cost)}
	}
	if req.MaxWait < 0 {
		return &weir.FieldError{Field: "max_wait", Reason: fmt.Sprintf("must not be negative (got %v)", req.MaxWait)}
	}
	if req.Queue < 0 {
		return &weir.FieldError{Field: "queue", Reason: fmt.Sprintf("must not be negative (got %v)", req.Queue)}
	}
	if strings.IndexByte(req.Lease, 0) >= 0 {
		return &weir.FieldError{Field: "lease", Reason: "must not contain a NUL byte"}
	}
	for i := range req.Checks {
		l := &req.Checks[i].Limit
		if !req.LimitsValidated() {
			if err := l.Validate(); err != nil {
				fe := err.(*weir.FieldError)
				return &weir.FieldError{Field: fmt.Sprintf("checks[%d].%s", i, fe.Field), Reason: fe.Reason}
			}
		}
		if req.Force && l.Algorithm == weir.Concurrency {
			return &weir.FieldError{Field: fmt.Sprintf("checks[%d].Limit.Algorithm", i), Reason: fmt.Sprintf("limit %q is a concurrency limit: a forced charge does not apply (units are held and released)", Name(*l)), Err: weir.ErrConcurrency}
		}
		if c := l.Capacity(); req.Cost > c && !req.Force {
			return &weir.FieldError{Field: "cost", Reason: fmt.Sprintf("%d exceeds the capacity %d of limit %q: it can never be admitted", req.Cost, c, Name(*l)), Err: weir.ErrExceedsCapacity}
		}
		if l.Algorithm == weir.Concurrency && req.Cost > 0 && req.Lease == "" {
			return &weir.FieldError{Field: "lease", Reason: fmt.Sprintf("limit %q is a concurrency limit: a lease id is required", Name(*l))}
		}
	}
	return nil
}

// Decide runs the all-or-nothing protocol of algo.Decide over states (one
// per check, in order) at now, puts a denied holder in line when req asks
// (algo.Enqueue), fills req.Statuses when it has room, and returns the
// Decision and whether any state changed (the store must then save the
// states). ps and out are scratch space of len(req.Checks).
func Decide(req *weir.Request, ps []algo.Params, states []*algo.State, out []algo.Result, now time.Time) (weir.Decision, bool) {
	for i := range req.Checks {
		ps[i] = Params(req.Checks[i].Limit)
	}
	var allowed, changed bool
	var k int
	var agg algo.Result
	if req.Force {
		k, agg = algo.Force(ps, states, now.UnixNano(), req.Cost, out)
		allowed, changed = true, req.Cost > 0
	} else {
		allowed, k, agg = algo.Decide(ps, states, now.UnixNano(), req.Cost, int64(req.MaxWait), req.Lease, out)
		changed = allowed && req.Cost > 0
	}
	if !allowed && req.Queue > 0 {
		changed = algo.Enqueue(ps, states, now.UnixNano(), req.Cost, req.Lease, int64(req.Queue))
	}
	d := weir.Decision{
		Allowed:    allowed,
		Limit:      req.Checks[k].Limit.Named(),
		Remaining:  agg.Remaining,
		RetryAfter: time.Duration(agg.RetryAfter),
		ResetAfter: time.Duration(agg.ResetAfter),
		Delay:      time.Duration(agg.Delay),
		Debt:       agg.Debt,
		Clamped:    agg.Clamped,
		Time:       now,
	}
	if len(req.Statuses) == len(req.Checks) {
		for i, r := range out {
			req.Statuses[i] = weir.Status{
				Allowed:    r.Allowed,
				Remaining:  r.Remaining,
				RetryAfter: time.Duration(r.RetryAfter),
				ResetAfter: time.Duration(r.ResetAfter),
				Delay:      time.Duration(r.Delay),
				Debt:       r.Debt,
				Clamped:    r.Clamped,
			}
		}
	}
	return d, changed
}

// Refund applies req as a refund to states (one per check) at now.
func Refund(req *weir.Request, states []*algo.State, now time.Time) {
	at := req.At.UnixNano()
	if req.At.IsZero() {
		at = now.UnixNano()
	}
	for i := range req.Checks {
		p := Params(req.Checks[i].Limit)
		if req.Force {
			algo.Settle(&p, states[i], now.UnixNano(), at, req.Cost, req.Lease)
		} else {
			algo.Refund(&p, states[i], now.UnixNano(), at, req.Cost, req.Lease)
		}
	}
}
