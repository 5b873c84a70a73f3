package storetest

import (
	"context"
	"sync"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/algo"
	"github.com/weir-go/weir/internal/engine"
)

// model is the reference store: Weir's algorithms run directly over a Go
// map under one mutex, with no eviction, no hashing and no encoding. Every
// store must agree with it decision for decision.
type model struct {
	now    func() time.Time
	mu     sync.Mutex
	states map[stateID]*algo.State
}

type stateID struct{ name, key string }

func newModel(now func() time.Time) *model {
	return &model{now: now, states: map[stateID]*algo.State{}}
}

func (m *model) state(c weir.Check) *algo.State {
	id := stateID{engine.Name(c.Limit), c.Key}
	s := m.states[id]
	if s == nil {
		s = &algo.State{}
		m.states[id] = s
	}
	return s
}

// Take implements weir.Store.
func (m *model) Take(_ context.Context, req *weir.Request) (weir.Decision, error) {
	if err := engine.Validate(req); err != nil {
		return weir.Decision{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(req.Checks)
	ps, out, ss := make([]algo.Params, n), make([]algo.Result, n), make([]*algo.State, n)
	for i, c := range req.Checks {
		ss[i] = m.state(c)
	}
	d, _ := engine.Decide(req, ps, ss, out, m.now())
	return d, nil
}

// Refund implements weir.Store.
func (m *model) Refund(_ context.Context, req *weir.Request) error {
	if req == nil || len(req.Checks) == 0 {
		return &weir.FieldError{Field: "checks", Reason: "at least one Check is needed"}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ss := make([]*algo.State, len(req.Checks))
	for i, c := range req.Checks {
		ss[i] = m.state(c)
	}
	engine.Refund(req, ss, m.now())
	return nil
}

// Reset implements weir.Store.
func (m *model) Reset(_ context.Context, checks []weir.Check) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range checks {
		delete(m.states, stateID{engine.Name(c.Limit), c.Key})
	}
	return nil
}
