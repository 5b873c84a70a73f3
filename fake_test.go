package weir_test

import (
	"context"
	"sync"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/algo"
	"github.com/weir-go/weir/internal/engine"
)

// fakeStore is a simple, obviously correct store for the Limiter's own
// tests: one mutex, a map, the shared engine, time.Now (fake under
// synctest), and failure hooks.
type fakeStore struct {
	mu     sync.Mutex
	states map[[2]string]*algo.State
	fail   error // returned by every call when set
	takes  int
}

func newFake() *fakeStore { return &fakeStore{states: map[[2]string]*algo.State{}} }

func (f *fakeStore) get(c weir.Check) *algo.State {
	k := [2]string{engine.Name(c.Limit), c.Key}
	s := f.states[k]
	if s == nil {
		s = new(algo.State)
		f.states[k] = s
	}
	return s
}

func (f *fakeStore) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if err := engine.Validate(req); err != nil {
		return weir.Decision{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.takes++
	if f.fail != nil {
		return weir.Decision{}, f.fail
	}
	n := len(req.Checks)
	states := make([]*algo.State, n)
	for i, c := range req.Checks {
		states[i] = f.get(c)
	}
	d, _ := engine.Decide(req, make([]algo.Params, n), states, make([]algo.Result, n), time.Now())
	return d, nil
}

func (f *fakeStore) Refund(ctx context.Context, req *weir.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	states := make([]*algo.State, len(req.Checks))
	for i, c := range req.Checks {
		states[i] = f.get(c)
	}
	engine.Refund(req, states, time.Now())
	return nil
}

func (f *fakeStore) Reset(ctx context.Context, checks []weir.Check) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range checks {
		delete(f.states, [2]string{engine.Name(c.Limit), c.Key})
	}
	return nil
}
