package service

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/metrics"
)

// timedStore observes the latency of every call to a store.
type timedStore struct {
	weir.Store
	takeOK, takeErr, refundOK, refundErr, resetOK, resetErr prometheus.Observer
	obs                                                     Observer // nil: none
}

var _ weir.Store = (*timedStore)(nil)

func newTimedStore(s weir.Store, m *metrics.Metrics) *timedStore {
	h := m.StoreDuration
	return &timedStore{
		Store:  s,
		takeOK: h.WithLabelValues("take", "ok"), takeErr: h.WithLabelValues("take", "error"),
		refundOK: h.WithLabelValues("refund", "ok"), refundErr: h.WithLabelValues("refund", "error"),
		resetOK: h.WithLabelValues("reset", "ok"), resetErr: h.WithLabelValues("reset", "error"),
	}
}

func observe(ok, bad prometheus.Observer, start time.Time, err error) time.Duration {
	dur := time.Since(start)
	if err != nil {
		bad.Observe(dur.Seconds())
		return dur
	}
	ok.Observe(dur.Seconds())
	return dur
}

func (t *timedStore) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	start := time.Now()
	d, err := t.Store.Take(ctx, req)
	dur := observe(t.takeOK, t.takeErr, start, err)
	if t.obs != nil {
		t.notify(ctx, "take", req.Checks, req.Cost, &d, start, dur, err)
	}
	return d, err
}

func (t *timedStore) Refund(ctx context.Context, req *weir.Request) error {
	start := time.Now()
	err := t.Store.Refund(ctx, req)
	dur := observe(t.refundOK, t.refundErr, start, err)
	if t.obs != nil {
		t.notify(ctx, "refund", req.Checks, req.Cost, nil, start, dur, err)
	}
	return err
}

func (t *timedStore) Reset(ctx context.Context, checks []weir.Check) error {
	start := time.Now()
	err := t.Store.Reset(ctx, checks)
	dur := observe(t.resetOK, t.resetErr, start, err)
	if t.obs != nil {
		t.notify(ctx, "reset", checks, 0, nil, start, dur, err)
	}
	return err
}

// Ping reports whether the store is reachable, when it can tell.
func (t *timedStore) Ping(ctx context.Context) error {
	if p, ok := t.Store.(weir.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Close closes the store when it is an io.Closer.
func (t *timedStore) Close() error {
	if c, ok := t.Store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
