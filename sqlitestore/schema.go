package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The schema is a series of migrations, schema/NNNN_name.sql, applied in
// order. The table weir_schema records the versions applied (a table rather
// than PRAGMA user_version, which belongs to whoever owns the database file
// when the store shares it through New).
//
//go:embed schema/*.sql
var schemaFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order, numbered 1, 2, ...
func migrations() ([]migration, error) {
	entries, err := schemaFS.ReadDir("schema")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("schema file %q: name must be NNNN_description.sql", name)
		}
		b, err := schemaFS.ReadFile(path.Join("schema", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("schema file %q: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings the schema up to date inside the caller's write
// transaction on conn. It refuses a database written by a newer version.
func migrate(ctx context.Context, conn *sql.Conn, now int64) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS weir_schema (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return err
	}
	var cur int
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM weir_schema`).Scan(&cur); err != nil {
		return err
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("schema version %d is newer than this sqlitestore supports (%d)", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if _, err := conn.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("schema %s: %w", m.name, err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO weir_schema (version, applied_at) VALUES (?, ?)`, m.version, now); err != nil {
			return err
		}
	}
	return nil
}
