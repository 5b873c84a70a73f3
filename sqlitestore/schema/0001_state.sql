-- Version 1: one row per (limit name, key) holding the algo.State.
--
-- kind        the algorithm (algo.Kind) the state was written by; a row of
--             another kind is read as a fresh state.
-- a, b, c     the fixed fields of algo.State (see internal/algo).
-- extra       the variable part, NULL when empty: sliding-window log events
--             and concurrency leases, in the compact binary form of codec.go.
-- expires_at  algo.ExpiresAt in Unix nanoseconds: from then on the row is
--             equivalent to no row, and the cleanup may delete it.
CREATE TABLE weir_state (
	name       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	kind       INTEGER NOT NULL,
	a          INTEGER NOT NULL,
	b          INTEGER NOT NULL,
	c          INTEGER NOT NULL,
	extra      BLOB,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (name, key)
) WITHOUT ROWID;

CREATE INDEX weir_state_expires_at ON weir_state (expires_at);
