package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// A Policy says what Take answers when Redis fails: it is down, too slow
// (the deadline passed), or answered something the store cannot read.
// Invalid input is never a failure: it is always an error matching
// weir.ErrInvalid, whatever the policy.
type Policy uint8

// The failure policies.
const (
	// FailError returns an error matching weir.ErrUnavailable; the caller
	// decides. This is the default.
	FailError Policy = iota
	// FailClosed denies: a Decision with Allowed false, Source
	// weir.SourceFailClosed and the RetryAfter of
	// WithFailClosedRetryAfter.
	FailClosed
	// FailOpen admits: a Decision with Allowed true, Remaining 0 and Source
	// weir.SourceFailOpen.
	FailOpen
	// Fallback decides with the local store given to WithFallback, with
	// Source weir.SourceFallback.
	Fallback
)

var policyNames = [...]string{"fail-error", "fail-closed", "fail-open", "fallback"}

// String returns "fail-error", "fail-closed", "fail-open" or "fallback".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// failure applies the failure policy to a Take that failed with err (which
// matches weir.ErrUnavailable).
func (s *Store) failure(ctx context.Context, req *weir.Request, err error) (weir.Decision, error) {
	lim := req.Checks[0].Limit.Named()
	switch s.opt.policy {
	case FailClosed:
		return weir.Decision{Limit: lim, RetryAfter: s.opt.retryAfter, Time: time.Now(), Source: weir.SourceFailClosed}, nil
	case FailOpen:
		return weir.Decision{Allowed: true, Limit: lim, Time: time.Now(), Source: weir.SourceFailOpen}, nil
	case Fallback:
		fr := s.shared(req)
		if fr.Cost > minCapacity(fr.Checks) && !fr.Force { // a charge may pass the capacity
			// More than the local share of a limit can ever admit.
			return weir.Decision{Limit: lim, RetryAfter: s.opt.retryAfter, Time: time.Now(), Source: weir.SourceFallback}, nil
		}
		d, ferr := s.opt.fallback.Take(context.WithoutCancel(ctx), fr)
		if ferr != nil {
			return weir.Decision{}, fmt.Errorf("%w (and the fallback store failed: %v)", err, ferr)
		}
		d.Source = weir.SourceFallback
		k := 0
		for i := range fr.Checks {
			if fr.Checks[i].Limit == d.Limit {
				k = i
				break
			}
		}
		d.Limit = req.Checks[k].Limit.Named()
		return d, nil
	}
	return weir.Decision{}, err
}

// shared returns req with every limit divided by the fallback share.
func (s *Store) shared(req *weir.Request) *weir.Request {
	fr := *req
	fr.Checks = make([]weir.Check, len(req.Checks))
	n := max(s.opt.share, 1)
	for i, c := range req.Checks {
		l := c.Limit
		l.Name = engine.Name(l)
		if n > 1 {
			l.Quota = max(1, (l.Quota+n-1)/n)
			if l.Burst > 0 {
				l.Burst = max(1, (l.Burst+n-1)/n)
			}
		}
		fr.Checks[i] = weir.Check{Key: c.Key, Limit: l}
	}
	return &fr
}

func minCapacity(cs []weir.Check) int64 {
	c := cs[0].Limit.Capacity()
	for _, x := range cs[1:] {
		c = min(c, x.Limit.Capacity())
	}
	return c
}
