package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/weir-go/weir"
)

var _ weir.OverrideStore = (*Store)(nil)

// live is the SQL condition of an override that has not expired at ?;
// expired is its negation, in the form the partial index serves.
const (
	live    = `(expires_at = 0 OR expires_at > ?)`
	expired = `expires_at != 0 AND expires_at <= ?`
)

// errInvalid carries a validation error out of a write transaction
// unwrapped (write wraps every other error as a store failure).
type errInvalid struct{ err error }

func (e errInvalid) Error() string { return e.err.Error() }

// SetOverride stores o in the database, shared by every process on the
// file and kept across restarts (see [weir.OverrideStore]). Expired
// overrides are deleted first, so they never count against
// [weir.MaxOverrides].
func (s *Store) SetOverride(ctx context.Context, o weir.Override) error {
	if err := o.Validate(); err != nil {
		return err
	}
	err := s.write(ctx, "set override", func(ctx context.Context, w *writer, now time.Time) error {
		n := now.UnixNano()
		o.Updated = now
		body, err := json.Marshal(o)
		if err != nil {
			return err
		}
		res, err := w.c.ExecContext(ctx, `DELETE FROM weir_override WHERE `+expired, n)
		if err != nil {
			return err
		}
		gone, _ := res.RowsAffected()
		var rows, exists int64
		if err := w.c.QueryRowContext(ctx, `SELECT rows - ?, EXISTS (SELECT 1 FROM weir_override WHERE scope = ? AND key = ?) FROM weir_override_version WHERE id = 1`, gone, o.Scope, o.Key).Scan(&rows, &exists); err != nil {
			return err
		}
		if exists == 0 && rows >= weir.MaxOverrides {
			return errInvalid{&weir.FieldError{Field: "overrides", Reason: fmt.Sprintf("the store holds %d overrides, the most it keeps", weir.MaxOverrides), Err: weir.ErrTooManyOverrides}}
		}
		if _, err := w.c.ExecContext(ctx, `INSERT INTO weir_override (scope, key, body, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (scope, key) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at`,
			o.Scope, o.Key, string(body), expiresNano(o.Expires)); err != nil {
			return err
		}
		_, err = w.c.ExecContext(ctx, `UPDATE weir_override_version SET version = version + 1, rows = ? WHERE id = 1`, rows+1-exists)
		return err
	})
	var inv errInvalid
	if errors.As(err, &inv) {
		return inv.err
	}
	return err
}

func expiresNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// GetOverride returns the live override of (scope, key).
func (s *Store) GetOverride(ctx context.Context, scope, key string) (weir.Override, error) {
	var o weir.Override
	found := false
	err := s.read(ctx, "get override", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		var body string
		err := tx.QueryRowContext(ctx, `SELECT body FROM weir_override WHERE scope = ? AND key = ? AND `+live, scope, key, now.UnixNano()).Scan(&body)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return json.Unmarshal([]byte(body), &o)
	})
	if err == nil && !found {
		err = weir.ErrNoOverride
	}
	return o, err
}

// ListOverrides returns the live overrides of scope ("" for all), ordered
// by scope and key.
func (s *Store) ListOverrides(ctx context.Context, scope string) ([]weir.Override, error) {
	out := []weir.Override{}
	err := s.read(ctx, "list overrides", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
		rows, err := tx.QueryContext(ctx, `SELECT body FROM weir_override WHERE (? = '' OR scope = ?) AND `+live+` ORDER BY scope, key`, scope, scope, now.UnixNano())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				return err
			}
			var o weir.Override
			if err := json.Unmarshal([]byte(body), &o); err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteOverride removes the override of (scope, key).
func (s *Store) DeleteOverride(ctx context.Context, scope, key string) error {
	found := false
	err := s.write(ctx, "delete override", func(ctx context.Context, w *writer, now time.Time) error {
		var exp int64
		err := w.c.QueryRowContext(ctx, `DELETE FROM weir_override WHERE scope = ? AND key = ? RETURNING expires_at`, scope, key).Scan(&exp)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = exp == 0 || exp > now.UnixNano()
		_, err = w.c.ExecContext(ctx, `UPDATE weir_override_version SET version = version + 1, rows = rows - 1 WHERE id = 1`)
		return err
	})
	if err == nil && !found {
		err = weir.ErrNoOverride
	}
	return err
}

// OverrideVersion returns a counter bumped by every SetOverride and
// DeleteOverride of any process on the file.
func (s *Store) OverrideVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.read(ctx, "override version", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		return tx.QueryRowContext(ctx, `SELECT version FROM weir_override_version WHERE id = 1`).Scan(&v)
	})
	return v, err
}
