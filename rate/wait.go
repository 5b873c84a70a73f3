package rate

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Wait is shorthand for WaitN(ctx, 1).
func (lim *Limiter) Wait(ctx context.Context) error {
	return lim.WaitN(ctx, 1)
}

// WaitN blocks until lim permits n events to happen. It returns an error,
// without consuming tokens, if n exceeds the Limiter's burst size (unless the
// limit is Inf), if ctx is already done, or if the wait would outlast ctx's
// deadline. If ctx is done while waiting, the reservation is canceled (giving
// back what it can) and ctx.Err() is returned.
func (lim *Limiter) WaitN(ctx context.Context, n int) error {
	var (
		burst int
		limit Limit
	)
	if s := lim.st.Load(); s != nil {
		burst, limit = s.burst, s.limit
	}
	if n > burst && limit != Inf {
		return fmt.Errorf("rate: Wait(n=%d) exceeds limiter's burst %d", n, burst)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	now := nowNs()
	maxWait := int64(math.MaxInt64)
	if deadline, ok := ctx.Deadline(); ok {
		maxWait = subSat(timeToNs(deadline), now)
	}
	o := lim.reserve(now, n, maxWait)
	if !o.ok {
		return fmt.Errorf("rate: Wait(n=%d) would exceed context deadline", n)
	}
	if o.wait <= 0 {
		return nil
	}
	timer := time.NewTimer(time.Duration(o.wait))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r := Reservation{ok: true, lim: lim, tokens: n, at: now, wait: o.wait, end: o.end, start: o.start, limit: o.limit}
		r.Cancel()
		return ctx.Err()
	}
}
