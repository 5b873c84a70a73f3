package iolimit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/algo"
	"github.com/weir-go/weir/internal/engine"
	"github.com/weir-go/weir/iolimit"
)

// memStore is a minimal in-memory weir.Store for these tests: it counts
// round trips and can be made to fail.
type memStore struct {
	mu     sync.Mutex
	states map[string]*algo.State
	takes  int
	down   bool
}

func newMemStore() *memStore { return &memStore{states: map[string]*algo.State{}} }

func (s *memStore) lookup(req *weir.Request) []*algo.State {
	st := make([]*algo.State, len(req.Checks))
	for i, c := range req.Checks {
		k := engine.Name(c.Limit) + "\x00" + c.Key
		if s.states[k] == nil {
			s.states[k] = &algo.State{}
		}
		st[i] = s.states[k]
	}
	return st
}

func (s *memStore) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if err := engine.Validate(req); err != nil {
		return weir.Decision{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.takes++
	if s.down {
		return weir.Decision{}, weir.ErrUnavailable
	}
	n := len(req.Checks)
	d, _ := engine.Decide(req, make([]algo.Params, n), s.lookup(req), make([]algo.Result, n), time.Now())
	return d, nil
}

func (s *memStore) Refund(ctx context.Context, req *weir.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	engine.Refund(req, s.lookup(req), time.Now())
	return nil
}

func (s *memStore) Reset(ctx context.Context, checks []weir.Check) error { return nil }

// TestStoreBudget: two "processes" (two StoreBudgets) share one 1 MiB/s
// budget in a store; together they stay within it, each gets about half,
// and the store sees one round trip per batch, not per write.
func TestStoreBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			rate  = 1 * mib
			batch = 64 * kib
			span  = 20 * time.Second
		)
		store := newMemStore()
		lim, err := weir.NewLimiter(store, weir.PerSecond(rate).WithBurst(batch))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		all := newRecorder()
		recs := []*recorder{newRecorder(), newRecorder()}
		var wg sync.WaitGroup
		for _, rec := range recs {
			b, err := iolimit.NewStoreBudget(lim, "egress", batch)
			if err != nil {
				t.Fatal(err)
			}
			for range 4 { // four streams per process
				wg.Go(func() {
					r := iolimit.NewReader(ctx, zeros{}, b)
					p := make([]byte, 1*kib)
					for {
						n, err := r.Read(p)
						if err != nil {
							return
						}
						rec.note(n)
						all.note(n)
					}
				})
			}
		}
		time.Sleep(span)
		cancel()
		wg.Wait()
		// Each process may hold one unused batch besides the bucket.
		checkBound(t, all.events, rate, batch+2*batch)
		var total int64
		for _, e := range all.events {
			total += e.n
		}
		want := int64(rate * span.Seconds())
		if dev := float64(total-want) / float64(want); dev > 0.01 || dev < -0.01 {
			t.Errorf("%d bytes in %v, want %d ±1%%", total, span, want)
		}
		for i, rec := range recs {
			var got int64
			for _, e := range rec.events {
				got += e.n
			}
			if share := float64(got) / float64(total); share < 0.4 || share > 0.6 {
				t.Errorf("process %d got %.1f%% of the bytes", i, share*100)
			}
		}
		if perBatch := total / int64(store.takes); perBatch < batch*9/10 {
			t.Errorf("%d store round trips for %d bytes: %d bytes each, want about %d", store.takes, total, perBatch, batch)
		}
	})
}

func TestStoreBudgetErrors(t *testing.T) {
	store := newMemStore()
	lim, err := weir.NewLimiter(store, weir.PerSecond(1000))
	if err != nil {
		t.Fatal(err)
	}
	_, err = iolimit.NewStoreBudget(nil, "k", 10)
	checkField(t, err, "lim")
	_, err = iolimit.NewStoreBudget(lim, "k", 0)
	checkField(t, err, "batch")
	_, err = iolimit.NewStoreBudget(lim, "k", 1001)
	checkField(t, err, "batch")
	if !errors.Is(err, weir.ErrExceedsCapacity) {
		t.Errorf("batch over capacity: %v", err)
	}
	b, err := iolimit.NewStoreBudget(lim, "k", 100)
	if err != nil {
		t.Fatal(err)
	}
	store.down = true
	if err := b.WaitN(t.Context(), 10); !errors.Is(err, weir.ErrUnavailable) {
		t.Errorf("WaitN with the store down = %v, want ErrUnavailable", err)
	}
	checkField(t, b.WaitN(t.Context(), -1), "n")
}
