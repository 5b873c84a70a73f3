package weir

import (
	"context"
	"time"
)

// Bounds on a note (see [Noter]).
const (
	// MaxNoteName is the longest note name, in bytes.
	MaxNoteName = 1024
	// MaxNoteValue is the longest note value, in bytes.
	MaxNoteValue = 4096
)

// A Noter is a [Store] that also keeps notes: small values under a name,
// each for a time to live, shared by everyone who uses the store (every
// process on one Redis, or on one SQLite file). A note is what one user
// of the store learnt and the others may start from; httplimit's
// Transport posts there the limit it learnt of an upstream, so that the
// transports of other processes pace to it at once.
//
// Notes are not limiter state: [Store.Reset] leaves them, and a store may
// lose them (the memory store when its process ends, an evicting Redis).
// A note's name is 1 to [MaxNoteName] bytes, its value at most
// [MaxNoteValue] bytes and its time to live positive (stores count it in
// milliseconds, rounded up); anything else is a *[FieldError] naming
// "note name", "note value" or "note ttl". The last SetNote wins.
//
// Notes are optional: callers discover them by type assertion, as they
// do [Pinger], and do without where a store has none. memstore,
// redisstore and sqlitestore keep them.
type Noter interface {
	// SetNote keeps value under name for ttl, replacing any note of that
	// name.
	SetNote(ctx context.Context, name string, value []byte, ttl time.Duration) error
	// Note returns the value under name, or nil if there is none or it
	// has expired.
	Note(ctx context.Context, name string) ([]byte, error)
}
