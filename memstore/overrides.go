package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/weir-go/weir"
)

// overrides is the store's override table: one map under one lock, since
// it changes rarely and is read in whole by each refreshing PlanTable.
type overrides struct {
	mu      sync.Mutex
	m       map[ovKey]weir.Override
	version int64
}

type ovKey struct{ scope, key string }

// SetOverride stores o (see [weir.OverrideStore]). Expired overrides are
// removed first, so they never count against [weir.MaxOverrides].
func (s *Store) SetOverride(_ context.Context, o weir.Override) error {
	if err := o.Validate(); err != nil {
		return err
	}
	now := s.now()
	o.Updated = now
	o.Limits = append([]weir.Limit(nil), o.Limits...)
	t := &s.ov
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[ovKey]weir.Override{}
	}
	k := ovKey{o.Scope, o.Key}
	if _, ok := t.m[k]; !ok && len(t.m) >= weir.MaxOverrides {
		for k, v := range t.m {
			if v.Expired(now) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= weir.MaxOverrides {
			return &weir.FieldError{Field: "overrides", Reason: fmt.Sprintf("the store holds %d overrides, the most it keeps", weir.MaxOverrides), Err: weir.ErrTooManyOverrides}
		}
	}
	t.m[k] = o
	t.version++
	return nil
}

// GetOverride returns the live override of (scope, key).
func (s *Store) GetOverride(_ context.Context, scope, key string) (weir.Override, error) {
	t := &s.ov
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.m[ovKey{scope, key}]
	if !ok || o.Expired(s.now()) {
		return weir.Override{}, weir.ErrNoOverride
	}
	o.Limits = append([]weir.Limit(nil), o.Limits...)
	return o, nil
}

// ListOverrides returns the live overrides of scope ("" for all), ordered
// by scope and key.
func (s *Store) ListOverrides(_ context.Context, scope string) ([]weir.Override, error) {
	now := s.now()
	t := &s.ov
	t.mu.Lock()
	out := []weir.Override{}
	for k, o := range t.m {
		if (scope == "" || k.scope == scope) && !o.Expired(now) {
			o.Limits = append([]weir.Limit(nil), o.Limits...)
			out = append(out, o)
		}
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// DeleteOverride removes the override of (scope, key).
func (s *Store) DeleteOverride(_ context.Context, scope, key string) error {
	t := &s.ov
	t.mu.Lock()
	defer t.mu.Unlock()
	k := ovKey{scope, key}
	o, ok := t.m[k]
	if !ok {
		return weir.ErrNoOverride
	}
	delete(t.m, k)
	t.version++
	if o.Expired(s.now()) {
		return weir.ErrNoOverride
	}
	return nil
}

// OverrideVersion returns a counter bumped by every SetOverride and
// DeleteOverride.
func (s *Store) OverrideVersion(context.Context) (int64, error) {
	t := &s.ov
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version, nil
}
