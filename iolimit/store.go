package iolimit

import (
	"context"
	"fmt"

	"github.com/weir-go/weir"
)

// A StoreBudget is a [Budget] kept in a Weir store, so that several
// processes (a fleet of servers sharing Redis, say) draw from one byte
// budget. It takes bytes from a [weir.Limiter] in batches and hands them
// out locally, so a store round trip is paid per batch, not per write:
// with a 64 KiB batch, 100 MiB/s costs 1,600 round trips a second per
// process however small the writes are.
//
// Local waiters are served in arrival order. At most one batch per
// process is granted but not yet used at any time; it is lost if the
// process stops.
type StoreBudget struct {
	lim   *weir.Limiter
	key   string
	batch int64
	turn  chan struct{} // a FIFO lock: channel senders queue in order
	pool  int64         // granted bytes not yet handed out; guarded by turn
}

// NewStoreBudget returns a budget drawing from key in lim, batch bytes at
// a time. lim's limits count bytes: weir.PerSecond(10<<20).WithBurst(1<<20)
// is 10 MiB/s. Token-bucket limits are best, as the limiter's WaitN then
// reserves its place and every process is served in order. batch must be
// between 1 and the limiter's smallest capacity.
func NewStoreBudget(lim *weir.Limiter, key string, batch int64) (*StoreBudget, error) {
	if lim == nil {
		return nil, fieldErr("lim", "is nil")
	}
	if batch < 1 {
		return nil, fieldErr("batch", fmt.Sprintf("must be at least 1 (got %d)", batch))
	}
	for _, l := range lim.Limits() {
		if c := l.Capacity(); batch > c {
			return nil, &weir.FieldError{Field: "batch", Reason: fmt.Sprintf("%d exceeds the capacity %d of limit %q", batch, c, l.Name), Err: weir.ErrExceedsCapacity}
		}
	}
	return &StoreBudget{lim: lim, key: key, batch: batch, turn: make(chan struct{}, 1)}, nil
}

// Burst returns the batch size.
func (s *StoreBudget) Burst() int64 { return s.batch }

// WaitN takes n bytes from the local pool, asking the limiter for more
// batches when the pool runs dry. It returns the limiter's error (for
// instance one matching weir.ErrUnavailable when the store is down, or
// weir.ErrLimited when the limiter's MaxWait is exceeded), or ctx's error
// as soon as ctx is done.
func (s *StoreBudget) WaitN(ctx context.Context, n int64) error {
	if n < 0 {
		return fieldErr("n", fmt.Sprintf("must not be negative (got %d)", n))
	}
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.turn }()
	for s.pool < n {
		if _, err := s.lim.WaitN(ctx, s.key, s.batch); err != nil {
			return err
		}
		s.pool += s.batch
	}
	s.pool -= n
	return nil
}
