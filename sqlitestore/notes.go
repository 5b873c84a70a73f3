package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// Notes (weir.Noter) live in their own table, made by the first SetNote
// (so a database that never keeps a note has no such table, and the
// numbered migrations are left to limiter state). Every process on the
// file sees them; expiry is by the store's clock, and each SetNote
// deletes the notes that have expired.
const (
	createNotes = `CREATE TABLE IF NOT EXISTS weir_notes (
	name    TEXT PRIMARY KEY,
	value   BLOB NOT NULL,
	expires INTEGER NOT NULL -- unix ns, by the store's clock
) WITHOUT ROWID`
	deleteExpiredNotes = `DELETE FROM weir_notes WHERE expires <= ?`
	upsertNote         = `INSERT INTO weir_notes (name, value, expires) VALUES (?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires = excluded.expires`
	selectNote = `SELECT value, expires FROM weir_notes WHERE name = ?`
)

var _ weir.Noter = (*Store)(nil)

// SetNote keeps value under name for ttl, shared by every process on the
// database ([weir.Noter]).
func (s *Store) SetNote(ctx context.Context, name string, value []byte, ttl time.Duration) error {
	if err := engine.ValidateNote(name, value, ttl); err != nil {
		return err
	}
	return s.write(ctx, "note", func(ctx context.Context, w *writer, now time.Time) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{createNotes, nil},
			{deleteExpiredNotes, []any{now.UnixNano()}},
			{upsertNote, []any{name, append([]byte{}, value...), now.UnixNano() + engine.NoteTTL(ttl)*int64(time.Millisecond)}},
		} {
			if _, err := w.c.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// Note returns the value under name, or nil if there is none or it has
// expired ([weir.Noter]).
func (s *Store) Note(ctx context.Context, name string) ([]byte, error) {
	if err := engine.ValidateNote(name, nil, -1); err != nil {
		return nil, err
	}
	var value []byte
	err := s.read(ctx, "note", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		var v []byte
		var exp int64
		err := tx.QueryRowContext(ctx, selectNote, name).Scan(&v, &exp)
		switch {
		case errors.Is(err, sql.ErrNoRows) || err != nil && strings.Contains(err.Error(), "no such table"):
			return nil
		case err != nil:
			return err
		case exp > now.UnixNano():
			value = append([]byte{}, v...)
		}
		return nil
	})
	return value, err
}
