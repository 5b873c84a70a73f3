package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/algo"
	"github.com/weir-go/weir/internal/engine"

	"modernc.org/sqlite" // the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Defaults of the options.
const (
	// DefaultBusyTimeout is how long a decision waits for the write lock
	// before it fails with weir.ErrUnavailable.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultCleanupInterval is how often the background cleanup deletes
	// expired state.
	DefaultCleanupInterval = time.Minute
)

// cleanupBatch is the number of rows one cleanup transaction deletes at
// most, so that it holds the write lock for a short time only.
const cleanupBatch = 256

// An Option configures a [Store].
type Option interface{ apply(*config) }

type config struct {
	clock        func() time.Time
	busyTimeout  time.Duration
	cleanupEvery time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithClock sets the clock the store decides by; the default is time.Now.
// The clock is read once per decision, after the write lock is taken, so
// decisions are ordered in time as they are in the database. Tests use it;
// in production every process sharing a file must use the same clock.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.clock = now
		}
	})
}

// WithBusyTimeout sets how long a decision waits for the write lock held by
// another process (SQLite's busy timeout) before it fails with
// weir.ErrUnavailable (default [DefaultBusyTimeout]). The wait ends sooner
// if the context ends. Decisions of the same Store queue for the lock
// without a timeout of their own: bound them with a context deadline.
func WithBusyTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	})
}

// WithCleanupInterval sets how often a background goroutine deletes the
// rows whose state has expired (default [DefaultCleanupInterval]); 0 or less
// turns it off, for callers that run [Store.Cleanup] themselves.
func WithCleanupInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.cleanupEvery = d })
}

// A Store is a [weir.Store] that keeps limiter state in a SQLite database,
// so that limits survive restarts and are shared by every process on the
// host that opens the same file.
//
// Each decision is one transaction: BEGIN IMMEDIATE takes the database's
// write lock, the rows of the request's (limit name, key) pairs are read,
// the algorithms of the core run in Go, the changed rows are written and the
// transaction commits. Multi-limit requests are therefore atomic, across
// goroutines and processes alike. Peeks (cost 0) read in a snapshot and take
// no lock.
//
// Within a process, decisions queue for the write lock in Go, first come,
// first served, for as long as their context allows; between processes, a
// decision retries BEGIN IMMEDIATE every 20µs to 1ms for at most the busy
// timeout. A decision that cannot get the lock in time, or whose
// transaction fails, returns an error matching weir.ErrUnavailable:
// nothing is admitted by mistake.
//
// A Store is safe for concurrent use. Close stops its cleanup goroutine.
type Store struct {
	db     *sql.DB
	ownDB  bool   // Open made db: Close closes it
	path   string // for error messages
	fromDB bool   // New: name the file from the database
	clock  func() time.Time
	busy   time.Duration
	rsel   *sql.Stmt // selectState for peeks, on any connection

	// sem is the process-local write lock; its holder owns w.
	sem    chan struct{}
	w      *writer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	cerr   error

	// testHookBeforeCommit, when set, runs inside every successful write
	// transaction just before COMMIT (tests crash a process there).
	testHookBeforeCommit func()
}

// Interface guards.
var (
	_ weir.Store  = (*Store)(nil)
	_ weir.Pinger = (*Store)(nil)
	_ io.Closer   = (*Store)(nil)
)

var errClosed = errors.New("store is closed")

// minInitTimeout is the least time Open and New give the database's
// setup, whatever the busy timeout.
const minInitTimeout = 10 * time.Second

// Open opens (creating it if needed) the SQLite database file at path and
// returns a Store on it. It sets WAL mode, synchronous=NORMAL and the busy
// timeout on every connection and creates or updates the schema. A file
// that cannot be opened or written, or that is not a database, is an error
// matching weir.ErrUnavailable that names path. Close the Store to close
// the database.
func Open(path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, &weir.FieldError{Field: "path", Reason: "is empty"}
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, &weir.FieldError{Field: "path", Reason: fmt.Sprintf("%q: give a file path (for a URI or an in-memory database, open the *sql.DB yourself and use New)", path)}
	}
	cfg := newConfig(opts)
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w: %w", path, weir.ErrUnavailable, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := newStore(db, cfg)
	s.ownDB, s.path = true, path
	if err := s.init(); err != nil {
		s.cancel()
		db.Close()
		return nil, err
	}
	s.start(cfg)
	return s, nil
}

// New returns a Store on db, which must be a SQLite database opened with
// the "sqlite" driver of modernc.org/sqlite. It switches the database to
// WAL mode and creates or updates the schema (tables weir_state and
// weir_schema); it leaves the connections' settings as they were. The Store keeps
// one connection of db's pool for its writes until Close, so the pool must
// allow at least two (peeks and Ping use another). Close does not close db.
func New(db *sql.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, &weir.FieldError{Field: "db", Reason: "is nil"}
	}
	cfg := newConfig(opts)
	s := newStore(db, cfg)
	s.fromDB = true
	if err := s.init(); err != nil {
		s.cancel()
		return nil, err
	}
	s.start(cfg)
	return s, nil
}

func newConfig(opts []Option) config {
	cfg := config{clock: time.Now, busyTimeout: DefaultBusyTimeout, cleanupEvery: DefaultCleanupInterval}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	return cfg
}

func newStore(db *sql.DB, cfg config) *Store {
	s := &Store{
		db:    db,
		path:  "database",
		clock: cfg.clock,
		busy:  cfg.busyTimeout,
		sem:   make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// init names the database file, switches a New database to WAL, brings
// the schema up to date and prepares the statements.
func (s *Store) init() error {
	// The busy timeout bounds the waits for other processes' locks (the
	// connections' busy_timeout, and begin's retries); this deadline is
	// only a backstop, and it must leave the work itself (WAL, the schema,
	// preparing the statements) room on a busy machine: with a busy
	// timeout of 20 ms, 40 ms were not enough under -race at load 30.
	ctx, cancel := context.WithTimeout(s.ctx, max(2*s.busy, minInitTimeout))
	defer cancel()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return s.fail("open", err)
	}
	defer c.Close()
	if s.fromDB {
		var file string
		err := c.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file)
		switch {
		case err != nil:
			return s.fail("open", err)
		case file == "":
			s.path = "in-memory database"
		default:
			s.path = file
		}
		var mode string
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
			return s.fail("open", err)
		}
	}
	if err := s.retryBusy(ctx, func() error {
		_, err := c.ExecContext(ctx, "BEGIN IMMEDIATE")
		return err
	}); err != nil {
		rollback(c)
		return s.fail("open", err)
	}
	err = migrate(ctx, c, s.clock().UnixNano())
	if err == nil {
		_, err = c.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(c)
		return s.fail("open", err)
	}
	c.Close()
	if s.rsel, err = s.db.PrepareContext(ctx, selectState); err != nil {
		return s.fail("open", err)
	}
	// Make the writer now, so the first decision does not prepare it.
	if _, err := s.writer(ctx); err != nil {
		s.rsel.Close()
		return s.fail("open", err)
	}
	return nil
}

func (s *Store) start(cfg config) {
	if cfg.cleanupEvery > 0 {
		s.wg.Add(1)
		go s.cleanupLoop(cfg.cleanupEvery)
	}
}

// fail wraps err as a failure of the store: it matches weir.ErrUnavailable
// and err, and names the database file.
func (s *Store) fail(op string, err error) error {
	return fmt.Errorf("sqlitestore: %s %s: %w: %w", op, s.path, weir.ErrUnavailable, err)
}

// lock takes the process-local write lock. Decisions of one process queue
// here, first come first served, for as long as their context allows: the
// busy timeout bounds only the wait for other processes, which SQLite
// cannot queue fairly.
func (s *Store) lock(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return errClosed
	}
}

func (s *Store) unlock() { <-s.sem }

// A writer is the connection that write transactions run on, with its
// prepared statements. Whoever holds Store.sem owns it.
type writer struct {
	c                                               *sql.Conn
	busyWas                                         int64 // the connection's busy_timeout before
	begin, commit, rollback, sel, ups, del, cleanup *sql.Stmt
}

// writer returns the write connection, making it if needed.
func (s *Store) writer(ctx context.Context) (*writer, error) {
	if s.w != nil {
		return s.w, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{c: c}
	// The writer waits for the write lock in begin, polling more finely
	// than SQLite's busy handler (which sleeps 1, 2, 5, 10, ... ms): once
	// in the transaction it needs no other lock.
	err = c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&w.busyWas)
	if err == nil {
		_, err = c.ExecContext(ctx, "PRAGMA busy_timeout = 0")
	}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&w.begin, "BEGIN IMMEDIATE"}, {&w.commit, "COMMIT"}, {&w.rollback, "ROLLBACK"},
		{&w.sel, selectState}, {&w.ups, upsertState}, {&w.del, deleteState}, {&w.cleanup, cleanupState},
	} {
		if err == nil {
			*p.st, err = c.PrepareContext(ctx, p.q)
		}
	}
	if err != nil {
		w.close(false)
		return nil, err
	}
	s.w = w
	return w, nil
}

// close releases the writer's statements and connection, dropping the
// connection from the pool if bad.
func (w *writer) close(bad bool) {
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.sel, w.ups, w.del, w.cleanup} {
		if st != nil {
			st.Close()
		}
	}
	if bad {
		w.c.Raw(func(any) error { return driver.ErrBadConn })
	} else {
		// Give the connection back to the pool as it was.
		w.c.ExecContext(context.Background(), "PRAGMA busy_timeout = "+strconv.FormatInt(w.busyWas, 10))
	}
	w.c.Close()
}

// write runs fn in one write transaction (BEGIN IMMEDIATE) on the writer,
// with now read once the database's write lock is held. Any error rolls
// back and is returned wrapped by fail.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, w *writer, now time.Time) error) error {
	if s.ctx.Err() != nil {
		return s.fail(op, errClosed)
	}
	if err := s.lock(ctx); err != nil {
		return s.fail(op, err)
	}
	defer s.unlock()
	if s.ctx.Err() != nil {
		return s.fail(op, errClosed) // Close is waiting for the lock
	}
	w, err := s.writer(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	if err = s.begin(ctx, w); err == nil {
		err = fn(ctx, w, s.clock())
		if err == nil && s.testHookBeforeCommit != nil {
			s.testHookBeforeCommit()
		}
		if err == nil {
			_, err = w.commit.ExecContext(ctx)
		}
	}
	if err != nil {
		// Whatever failed (BEGIN interrupted by ctx, a statement, COMMIT),
		// end the transaction; if that fails too, start afresh on another
		// connection next time.
		ctx, cancel := context.WithTimeout(context.Background(), s.busy)
		defer cancel()
		if _, rerr := w.rollback.ExecContext(ctx); rerr != nil && !noTransaction(rerr) {
			w.close(true)
			s.w = nil
		}
		return s.fail(op, err)
	}
	return nil
}

// begin starts a write transaction on w: BEGIN IMMEDIATE, retried while
// another connection holds the write lock, for at most the busy timeout.
// The retries start at 20µs and back off to at most 1ms, so a decision
// waits little longer than the transactions ahead of it.
func (s *Store) begin(ctx context.Context, w *writer) error {
	return s.retryBusy(ctx, func() error {
		_, err := w.begin.ExecContext(ctx)
		return err
	})
}

// retryBusy runs begin until it does not fail with SQLITE_BUSY, for at
// most the busy timeout.
func (s *Store) retryBusy(ctx context.Context, begin func() error) error {
	var deadline time.Time
	pause := 20 * time.Microsecond
	for {
		err := begin()
		if err == nil || !isBusy(err) {
			return err
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(s.busy)
		} else if !now.Before(deadline) {
			return fmt.Errorf("locked by another process for more than %v: %w", s.busy, err)
		}
		// Jitter keeps the processes that wait from retrying in step.
		d := min(pause/2+time.Duration(rand.Int64N(int64(pause))), deadline.Sub(now))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		pause = min(2*pause, time.Millisecond)
	}
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_BUSY
	}
	return strings.Contains(err.Error(), "database is locked")
}

// read runs fn in a read transaction on any connection: a snapshot of the
// database, taking no write lock.
func (s *Store) read(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx, now time.Time) error) error {
	if s.ctx.Err() != nil {
		return s.fail(op, errClosed)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	if err = fn(ctx, tx, s.clock()); err == nil {
		err = tx.Commit()
	}
	if err != nil {
		tx.Rollback()
		return s.fail(op, err)
	}
	return nil
}

func noTransaction(err error) bool { return strings.Contains(err.Error(), "no transaction is active") }

// rollback ends whatever transaction c is in; if that fails, it drops c
// from the pool.
func rollback(c *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultBusyTimeout)
	defer cancel()
	if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil && !noTransaction(err) {
		c.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// A row is the state of one (limit name, key) pair in a transaction.
type row struct {
	name, key string
	p         algo.Params
	st        algo.State
	stored    bool // a row exists in the database
}

// rows holds the rows of a request, small requests without allocation.
type rows struct {
	buf   [4]row
	list  []row
	ptrs  []*algo.State
	pbuf  [4]*algo.State
	ps    []algo.Params
	psbuf [4]algo.Params
	out   []algo.Result
	obuf  [4]algo.Result
}

// load reads the state of every check of checks into r. Checks with the
// same (name, key) share one state.
func (r *rows) load(ctx context.Context, sel *sql.Stmt, checks []weir.Check) error {
	n := len(checks)
	r.list, r.ptrs, r.ps, r.out = r.buf[:0], r.pbuf[:0], r.psbuf[:0], r.obuf[:0]
	if n > len(r.buf) {
		r.list = make([]row, 0, n)
		r.ptrs, r.ps, r.out = make([]*algo.State, 0, n), make([]algo.Params, 0, n), make([]algo.Result, 0, n)
	}
	r.ps, r.out = r.ps[:n], r.out[:n]
	var ibuf [4]int
	idx := ibuf[:0]
	for i := range checks {
		name, key := engine.Name(checks[i].Limit), checks[i].Key
		j := 0
		for j < len(r.list) && (r.list[j].name != name || r.list[j].key != key) {
			j++
		}
		if j == len(r.list) {
			r.list = append(r.list, row{name: name, key: key, p: engine.Params(checks[i].Limit)})
		}
		idx = append(idx, j)
	}
	for j := range r.list {
		if err := r.list[j].read(ctx, sel); err != nil {
			return err
		}
	}
	for _, j := range idx {
		r.ptrs = append(r.ptrs, &r.list[j].st)
	}
	return nil
}

const (
	selectState = `SELECT kind, a, b, c, extra FROM weir_state WHERE name = ? AND key = ?`
	upsertState = `INSERT INTO weir_state (name, key, kind, a, b, c, extra, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name, key) DO UPDATE SET kind = excluded.kind, a = excluded.a, b = excluded.b, c = excluded.c,
	extra = excluded.extra, expires_at = excluded.expires_at`
	deleteState  = `DELETE FROM weir_state WHERE name = ? AND key = ?`
	cleanupState = `DELETE FROM weir_state WHERE (name, key) IN
	(SELECT name, key FROM weir_state WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`
)

// read loads the row's state. A row written by another algorithm (the
// limit's algorithm changed) reads as fresh.
func (w *row) read(ctx context.Context, sel *sql.Stmt) error {
	var kind int64
	var extra []byte
	err := sel.QueryRowContext(ctx, w.name, w.key).Scan(&kind, &w.st.A, &w.st.B, &w.st.C, &extra)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	w.stored = true
	if algo.Kind(kind) != w.p.Kind {
		w.st = algo.State{}
		return nil
	}
	if err := decodeExtra(extra, &w.st); err != nil {
		return fmt.Errorf("state of limit %q, key %q (Reset it to start afresh): %w", w.name, w.key, err)
	}
	if w.p.Kind == algo.TokenBucket && (w.st.B < 0 || w.st.B >= w.p.Quota) {
		// Written under another Quota: round the arrival time up to the
		// next nanosecond, which never admits more.
		w.st.A, w.st.B = w.st.A+1, 0
	}
	return nil
}

// write stores the row's state at now, or deletes the row if the state is
// as good as fresh.
func (w *row) write(ctx context.Context, wr *writer, now int64, buf []byte) ([]byte, error) {
	algo.Prune(&w.p, &w.st, now)
	exp := algo.ExpiresAt(&w.p, &w.st)
	if exp <= now {
		if !w.stored {
			return buf, nil
		}
		_, err := wr.del.ExecContext(ctx, w.name, w.key)
		return buf, err
	}
	buf = encodeExtra(buf[:0], &w.st)
	var extra any
	if buf != nil {
		extra = buf
	}
	_, err := wr.ups.ExecContext(ctx, w.name, w.key, int64(w.p.Kind), w.st.A, w.st.B, w.st.C, extra, exp)
	return buf, err
}

func (r *rows) write(ctx context.Context, w *writer, now int64) error {
	var buf []byte
	for j := range r.list {
		var err error
		if buf, err = r.list[j].write(ctx, w, now, buf); err != nil {
			return err
		}
	}
	return nil
}

// Take decides on every check of req in one transaction; see [weir.Store].
// A request that costs nothing (a peek) reads a snapshot without taking the
// write lock.
func (s *Store) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if err := engine.Validate(req); err != nil {
		return weir.Decision{}, err
	}
	var r rows
	var d weir.Decision
	var err error
	if req.Cost == 0 {
		err = s.read(ctx, "take", func(ctx context.Context, tx *sql.Tx, now time.Time) error {
			if err := r.load(ctx, tx.StmtContext(ctx, s.rsel), req.Checks); err != nil {
				return err
			}
			d, _ = engine.Decide(req, r.ps, r.ptrs, r.out, now) // a peek changes nothing
			return nil
		})
	} else {
		err = s.write(ctx, "take", func(ctx context.Context, w *writer, now time.Time) error {
			if err := r.load(ctx, w.sel, req.Checks); err != nil {
				return err
			}
			var changed bool
			d, changed = engine.Decide(req, r.ps, r.ptrs, r.out, now)
			if changed {
				return r.write(ctx, w, now.UnixNano())
			}
			return nil
		})
	}
	if err != nil {
		if len(req.Statuses) == len(req.Checks) {
			clear(req.Statuses)
		}
		return weir.Decision{}, err
	}
	return d, nil
}

// Refund gives back req.Cost units charged at req.At and releases
// req.Lease, in one transaction; see [weir.Store].
func (s *Store) Refund(ctx context.Context, req *weir.Request) error {
	if err := engine.Validate(req); err != nil {
		return err
	}
	var r rows
	return s.write(ctx, "refund", func(ctx context.Context, w *writer, now time.Time) error {
		if err := r.load(ctx, w.sel, req.Checks); err != nil {
			return err
		}
		engine.Refund(req, r.ptrs, now)
		return r.write(ctx, w, now.UnixNano())
	})
}

// Reset deletes the state of every check, in one transaction.
func (s *Store) Reset(ctx context.Context, checks []weir.Check) error {
	if len(checks) == 0 {
		return nil
	}
	for i := range checks {
		if err := checks[i].Limit.Validate(); err != nil {
			var fe *weir.FieldError
			if errors.As(err, &fe) {
				return &weir.FieldError{Field: fmt.Sprintf("checks[%d].%s", i, fe.Field), Reason: fe.Reason}
			}
			return err
		}
	}
	return s.write(ctx, "reset", func(ctx context.Context, w *writer, _ time.Time) error {
		for i := range checks {
			if _, err := w.del.ExecContext(ctx, engine.Name(checks[i].Limit), checks[i].Key); err != nil {
				return err
			}
		}
		return nil
	})
}

// Ping reports whether the database can be read: an error matching
// weir.ErrUnavailable otherwise.
func (s *Store) Ping(ctx context.Context) error {
	return s.read(ctx, "ping", func(ctx context.Context, tx *sql.Tx, _ time.Time) error {
		var n int
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM weir_schema`).Scan(&n)
	})
}

// Cleanup deletes the rows whose state has expired (it would admit exactly
// as a missing row does), in transactions of at most a few hundred rows so
// that decisions wait little. It returns the number of rows deleted. The
// background cleanup calls it every cleanup interval.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, "cleanup", func(ctx context.Context, w *writer, now time.Time) error {
			res, err := w.cleanup.ExecContext(ctx, now.UnixNano(), cleanupBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < cleanupBatch {
			return total, err
		}
	}
}

func (s *Store) cleanupLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		// An error (the database busy or gone) is retried at the next
		// tick; decisions report such failures themselves.
		s.Cleanup(s.ctx)
	}
}

// Close stops the background cleanup and, for a Store made by Open, closes
// the database. Decisions after Close fail with weir.ErrUnavailable. Close
// is idempotent.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		// Wait for the decision in progress, then keep the write lock
		// forever: every later call fails as closed.
		s.sem <- struct{}{}
		if s.w != nil {
			s.w.close(false)
			s.w = nil
		}
		if s.rsel != nil {
			s.rsel.Close()
		}
		if s.ownDB {
			s.cerr = s.db.Close()
		}
	})
	return s.cerr
}
