package topk

import (
	"maps"
	"sync"
	"sync/atomic"
)

// A Tracker keeps, for every name (a policy), a Window of the keys with
// the most decisions and one of the keys with the most denials. Names
// come from configuration, never from callers, so their number is bounded
// by it; a Tracker's memory is at most 4*k*(MaxKeyBytes+overhead) per
// name. It is safe for concurrent use.
type Tracker struct {
	k      int
	period int64
	now    atomic.Int64 // the last time passed to Rotate (Unix ms)

	mu    sync.Mutex                        // serialises writers of names
	names atomic.Pointer[map[string]*entry] // copy on write: readers take no lock
}

type entry struct {
	mu     sync.Mutex
	all    *Window
	denied *Window
}

// NewTracker returns a tracker of k counters per sketch and periods of
// period milliseconds, starting at now (Unix milliseconds).
func NewTracker(k int, period, now int64) *Tracker {
	t := &Tracker{k: max(k, 1), period: max(period, 1)}
	t.now.Store(now)
	m := map[string]*entry{}
	t.names.Store(&m)
	return t
}

// Count adds one decision on key under name, and one denial when denied.
func (t *Tracker) Count(name, key string, denied bool) {
	e := (*t.names.Load())[name]
	if e == nil {
		e = t.add(name)
	}
	e.mu.Lock()
	e.all.Add(key, 1)
	if denied {
		e.denied.Add(key, 1)
	}
	e.mu.Unlock()
}

// add returns the entry of name, making it if needed.
func (t *Tracker) add(name string) *entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.names.Load()
	if e := old[name]; e != nil {
		return e
	}
	now := t.now.Load()
	e := &entry{all: NewWindow(t.k, t.period, now), denied: NewWindow(t.k, t.period, now)}
	m := maps.Clone(old)
	m[name] = e
	t.names.Store(&m)
	return e
}

// Rotate moves every window along to now (Unix milliseconds): see
// Window.Rotate. The dashboard calls it once a second.
func (t *Tracker) Rotate(now int64) {
	t.now.Store(now)
	for _, e := range *t.names.Load() {
		e.mu.Lock()
		e.all.Rotate(now)
		e.denied.Rotate(now)
		e.mu.Unlock()
	}
}

// Retain forgets every name not in keep (the policies a reload removed).
func (t *Tracker) Retain(keep func(name string) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := maps.Clone(*t.names.Load())
	maps.DeleteFunc(m, func(name string, _ *entry) bool { return !keep(name) })
	t.names.Store(&m)
}

// Top is the heaviest keys of one name.
type Top struct {
	// Total and Denied are the decisions and denials counted in the
	// window (the last one to two periods).
	Total  uint64 `json:"total"`
	Denied uint64 `json:"denied"`
	// Keys are the keys with the most decisions, Denials those with the
	// most denials, each largest first.
	Keys    []Counter `json:"keys"`
	Denials []Counter `json:"denials"`
}

// Top returns, by name, up to n keys with the most decisions and up to n
// with the most denials.
func (t *Tracker) Top(n int) map[string]Top {
	out := map[string]Top{}
	for name, e := range *t.names.Load() {
		e.mu.Lock()
		out[name] = Top{Total: e.all.N(), Denied: e.denied.N(), Keys: e.all.Top(n), Denials: e.denied.Top(n)}
		e.mu.Unlock()
	}
	return out
}
