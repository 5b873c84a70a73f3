package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

var _ weir.Noter = (*Store)(nil)

// maxNotes is the most notes the store keeps; past it, setting a new one
// forgets the note that expires first.
const maxNotes = 10000

// noteBook holds the notes of a Store ([weir.Noter]), by the store's
// clock.
type noteBook struct {
	mu    sync.Mutex
	notes map[string]note
}

type note struct {
	value   []byte
	expires int64 // unix ns
}

// SetNote keeps a copy of value under name for ttl ([weir.Noter]).
func (s *Store) SetNote(_ context.Context, name string, value []byte, ttl time.Duration) error {
	if err := engine.ValidateNote(name, value, ttl); err != nil {
		return err
	}
	now := s.now().UnixNano()
	b := &s.notes
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.notes == nil {
		b.notes = map[string]note{}
	}
	if _, ok := b.notes[name]; !ok && len(b.notes) >= maxNotes {
		first := ""
		for k, n := range b.notes {
			if n.expires <= now {
				delete(b.notes, k)
			} else if first == "" || n.expires < b.notes[first].expires {
				first = k
			}
		}
		if len(b.notes) >= maxNotes {
			delete(b.notes, first)
		}
	}
	b.notes[name] = note{value: append([]byte{}, value...), expires: now + engine.NoteTTL(ttl)*int64(time.Millisecond)}
	return nil
}

// Note returns a copy of the value under name, or nil ([weir.Noter]).
func (s *Store) Note(_ context.Context, name string) ([]byte, error) {
	if err := engine.ValidateNote(name, nil, -1); err != nil {
		return nil, err
	}
	now := s.now().UnixNano()
	b := &s.notes
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.notes[name]
	if !ok {
		return nil, nil
	}
	if n.expires <= now {
		delete(b.notes, name)
		return nil, nil
	}
	return append([]byte{}, n.value...), nil
}
