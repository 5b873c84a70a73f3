// Package sqlitestore is a [weir.Store] that keeps limiter state in a SQLite
// database file, so that limits survive restarts and are shared by every
// process on the host that opens the same file. It uses the pure Go driver
// modernc.org/sqlite: no cgo.
//
//	store, err := sqlitestore.Open("/var/lib/myapp/limits.db")
//	if err != nil { ... }
//	defer store.Close()
//	lim, err := weir.NewLimiter(store, weir.PerMinute(60), weir.PerDay(1000))
//
// # When to choose it
//
// Choose the SQLite store when limits must outlive the process (a daily
// quota that a restart must not refill) or when a few processes on one host
// (workers, CGI-style handlers, cron jobs, several instances of a CLI) must
// share them, and there is no Redis to run. The memory store is a hundred
// times faster but forgets everything on exit and is private to its process;
// the Redis store is shared across hosts. See docs/sqlite.md for figures.
//
// # How it decides
//
// Each decision is one transaction: BEGIN IMMEDIATE takes the database's
// write lock, the rows of the request's (limit name, key) pairs are read,
// the algorithms of the core (internal/algo, the same code the memory store
// runs) decide, the changed rows are written, and the transaction commits.
// A multi-limit request is therefore all-or-nothing across goroutines and
// processes. The clock is read after the lock is taken, so decisions are
// ordered in time as they are in the file. A peek (cost 0) reads a snapshot
// without the lock.
//
// The file is in WAL mode with synchronous=NORMAL: a crash of a process (even
// SIGKILL in the middle of a transaction) loses nothing committed; a power
// failure may lose the last transactions, which only ever forgets recent
// admissions.
//
// # State
//
// Table weir_state holds one row per (limit name, key): the algorithm, the
// fixed fields of the state as integers, the variable part (sliding-log
// events, concurrency leases) as a compact varint blob, and expires_at, the
// instant from which the row is equivalent to no row. A background
// goroutine (see [WithCleanupInterval]) deletes expired rows a few hundred
// at a time, so it never holds the lock for long; Close stops it. The
// schema lives in schema/*.sql and is created or migrated on Open; table
// weir_schema records the version.
//
// # Failures
//
// Nothing is admitted by mistake: when the lock cannot be had within the
// busy timeout ([WithBusyTimeout]; other processes hold it), when the file
// is read-only, corrupt or gone, or when the context ends, the call returns
// an error matching weir.ErrUnavailable that names the file, and the caller's
// failure policy decides. A row that cannot be decoded is reported the same
// way, naming the limit and key; [Store.Reset] on it starts it afresh.
package sqlitestore
