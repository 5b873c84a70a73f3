-- Version 2: per-key overrides (weir.OverrideStore).
--
-- scope, key  the override's Override.Scope and Override.Key.
-- body        the weir.Override as JSON (weir.Override.MarshalJSON).
-- expires_at  Override.Expires in Unix nanoseconds, 0 for never: from then
--             on the row is ignored, and the next SetOverride deletes it.
--
-- weir_override_version holds one row whose version every change bumps
-- (readers in other processes poll it to refresh their copies) and the
-- number of rows of weir_override, so that the bound on their number costs
-- no count.
CREATE TABLE weir_override (
	scope      TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	body       TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE INDEX weir_override_expires_at ON weir_override (expires_at) WHERE expires_at != 0;

CREATE TABLE weir_override_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL,
	rows    INTEGER NOT NULL
);

INSERT INTO weir_override_version (id, version, rows) VALUES (1, 0, 0);
