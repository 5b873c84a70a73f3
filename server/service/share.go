package service

import (
	"context"

	"github.com/weir-go/weir"
)

// sharedStore is the fallback store of a service: it divides every limit's
// quota and burst by the current share (rounded down, at least 1), so that
// N instances falling back at once admit together at most
// N·max(1, ⌊L/N⌋) ≤ max(L, N) per window of a limit L, instead of N·L.
type sharedStore struct {
	weir.Store
	share func() int64
}

// Take decides req under the shared limits. A cost above what the shared
// limits can ever hold is a denial, not an error.
func (s sharedStore) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	fr, capacity := s.divide(req)
	if fr != req && req.Cost > capacity {
		l := fr.Checks[0].Limit
		return weir.Decision{Allowed: false, Limit: l, RetryAfter: l.Period}, nil
	}
	return s.Store.Take(ctx, fr)
}

// Refund gives units back under the same shared limits.
func (s sharedStore) Refund(ctx context.Context, req *weir.Request) error {
	fr, _ := s.divide(req)
	return s.Store.Refund(ctx, fr)
}

// divide returns req with its limits divided by the share (req itself when
// the share is 1) and the smallest capacity of the divided limits.
func (s sharedStore) divide(req *weir.Request) (*weir.Request, int64) {
	n := s.share()
	if n <= 1 || len(req.Checks) == 0 {
		return req, 0
	}
	fr := *req
	fr.Checks = make([]weir.Check, len(req.Checks))
	capacity := int64(-1)
	for i, c := range req.Checks {
		fr.Checks[i] = weir.Check{Key: c.Key, Limit: divideLimit(c.Limit, n)}
		if cp := fr.Checks[i].Limit.Capacity(); capacity < 0 || cp < capacity {
			capacity = cp
		}
	}
	return &fr, capacity
}

// divideLimit returns l's share when n instances share it.
func divideLimit(l weir.Limit, n int64) weir.Limit {
	l.Quota = max(1, l.Quota/n)
	if l.Burst > 0 {
		l.Burst = max(1, l.Burst/n)
	}
	return l
}
