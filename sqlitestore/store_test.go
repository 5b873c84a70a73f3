package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// open opens a store on path and closes it when the test ends.
func open(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens path with the driver directly, for tests that tamper with
// the database behind the store's back.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func take(t *testing.T, s weir.Store, cost int64, checks ...weir.Check) weir.Decision {
	t.Helper()
	d, err := s.Take(context.Background(), &weir.Request{Checks: checks, Cost: cost, Lease: "lease-1"})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return d
}

// wantUnavailable fails unless err matches weir.ErrUnavailable and names
// path.
func wantUnavailable(t *testing.T, err error, path string) {
	t.Helper()
	t.Log(err)
	if !errors.Is(err, weir.ErrUnavailable) {
		t.Fatalf("error %v does not match weir.ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file %q", err, path)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	tests := []struct {
		name  string
		limit weir.Limit
	}{
		{"token-bucket", weir.PerMinute(3)},
		{"fixed-window", weir.PerMinute(3).WithAlgorithm(weir.FixedWindow)},
		{"sliding-window", weir.PerMinute(3).WithAlgorithm(weir.SlidingWindowCounter)},
		{"sliding-log", weir.PerMinute(3).WithAlgorithm(weir.SlidingWindowLog)},
		{"concurrency", weir.Concurrent(3, time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "weir.db")
			clk := newFakeClock()
			c := weir.Check{Key: "user:1", Limit: tt.limit}
			s := open(t, path, WithClock(clk.now))
			for i := range 3 {
				if d := take(t, s, 1, c); !d.Allowed {
					t.Fatalf("take %d denied: %+v", i, d)
				}
			}
			before := take(t, s, 1, c)
			if before.Allowed {
				t.Fatal("fourth take admitted")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			clk.add(time.Second)
			s = open(t, path, WithClock(clk.now))
			after := take(t, s, 1, c)
			if after.Allowed || after.Remaining != 0 {
				t.Fatalf("after reopening: %+v, want denied with 0 remaining", after)
			}
			if want := before.RetryAfter - time.Second; after.RetryAfter != want {
				t.Fatalf("after reopening: RetryAfter %v, want %v", after.RetryAfter, want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("not a database. ", 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	badHeader := filepath.Join(dir, "bad-header.db")
	if err := os.WriteFile(badHeader, append([]byte("SQLite format 3\x00"), make([]byte, 4080)...), 0o644); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	s := open(t, newer)
	s.Close()
	if _, err := rawDB(t, newer).Exec(`INSERT INTO weir_schema (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		invalid bool   // ErrInvalid rather than ErrUnavailable
		msg     string // in the error
	}{
		{"empty", "", true, "path"},
		{"memory", ":memory:", true, "path"},
		{"uri", "file:x.db?mode=ro", true, "path"},
		{"missing-dir", filepath.Join(dir, "missing", "weir.db"), false, "missing"},
		{"directory", dir, false, dir},
		{"corrupt", corrupt, false, "not a database"},
		{"bad-header", badHeader, false, badHeader},
		{"newer-schema", newer, false, "newer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.invalid {
				var fe *weir.FieldError
				if !errors.As(err, &fe) || fe.Field != "path" || !errors.Is(err, weir.ErrInvalid) {
					t.Fatalf("error %v: want a weir.FieldError on path", err)
				}
				return
			}
			wantUnavailable(t, err, tt.path)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestReadOnlyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	c := weir.Check{Key: "k", Limit: weir.PerMinute(1)}
	s := open(t, path)
	take(t, s, 1, c)
	s.Close()

	// Read-only, through New: the schema exists, so opening works and
	// peeks work, but a decision that must write fails cleanly.
	ro := rawDB(t, "file:"+path+"?mode=ro")
	s, err := New(ro)
	if err != nil {
		wantUnavailable(t, err, path)
		return
	}
	defer s.Close()
	if d := take(t, s, 0, c); d.Allowed {
		t.Fatalf("peek on a drained limit admitted: %+v", d)
	}
	// A denial writes nothing; an admission must write, and cannot.
	if d := take(t, s, 1, c); d.Allowed {
		t.Fatalf("drained limit admitted: %+v", d)
	}
	c.Key = "other"
	_, err = s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1})
	wantUnavailable(t, err, path)
	if !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("error %q does not say the database is read-only", err)
	}
}

func TestReadOnlyEmptyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	db := rawDB(t, path)
	if _, err := db.Exec(`CREATE TABLE other (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := New(rawDB(t, "file:"+path+"?mode=ro"))
	if err == nil {
		s.Close()
		t.Fatal("New on a read-only database without the schema succeeded")
	}
	wantUnavailable(t, err, path)
}

func TestLockedPastTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	c := weir.Check{Key: "k", Limit: weir.PerMinute(5)}
	s := open(t, path, WithBusyTimeout(20*time.Millisecond))

	// Another process (here: another connection) holds the write lock.
	other, err := rawDB(t, path).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1})
	wantUnavailable(t, err, path)
	if !strings.Contains(err.Error(), "locked") {
		t.Fatalf("error %q does not say the database is locked", err)
	}
	// A peek reads a snapshot: it needs no lock.
	if d := take(t, s, 0, c); !d.Allowed || d.Remaining != 5 {
		t.Fatalf("peek while locked: %+v, want allowed with 5 remaining", d)
	}
	if _, err := other.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// The failed decision charged nothing.
	if d := take(t, s, 1, c); !d.Allowed || d.Remaining != 4 {
		t.Fatalf("after the lock is released: %+v, want allowed with 4 remaining", d)
	}
}

func TestContextDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	c := weir.Check{Key: "k", Limit: weir.PerMinute(5)}
	s := open(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, cost := range []int64{0, 1} {
		_, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{c}, Cost: cost})
		wantUnavailable(t, err, path)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cost %d: error %v does not match context.Canceled", cost, err)
		}
	}
	// Waiting for another decision of this process ends with the context.
	s.sem <- struct{}{}
	_, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{c}, Cost: 1})
	<-s.sem
	if !errors.Is(err, context.Canceled) || !errors.Is(err, weir.ErrUnavailable) {
		t.Fatalf("waiting for the lock: error %v, want context.Canceled and weir.ErrUnavailable", err)
	}
	if d := take(t, s, 1, c); d.Remaining != 4 {
		t.Fatalf("after cancelled takes: %+v, want 4 remaining", d)
	}
}

func TestClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c := weir.Check{Key: "k", Limit: weir.PerMinute(5)}
	for _, cost := range []int64{0, 1} {
		_, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: cost})
		wantUnavailable(t, err, path)
	}
	wantUnavailable(t, s.Ping(context.Background()), path)
	wantUnavailable(t, s.Reset(context.Background(), []weir.Check{c}), path)
	_, err := s.Cleanup(context.Background())
	wantUnavailable(t, err, path)
}

func TestNew(t *testing.T) {
	if _, err := New(nil); !errors.Is(err, weir.ErrInvalid) {
		t.Fatalf("New(nil): %v, want weir.ErrInvalid", err)
	}
	path := filepath.Join(t.TempDir(), "app.db")
	db := rawDB(t, path)
	s, err := New(db, WithCleanupInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	c := weir.Check{Key: "k", Limit: weir.PerMinute(2)}
	take(t, s, 1, c)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.path != path {
		t.Fatalf("path %q, want %q", s.path, path)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves the caller's database open.
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM weir_state`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("after Close: %d rows, %v; want 1 row", n, err)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v; want wal", mode, err)
	}
	// A second store on the same database sees the state.
	s2, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if d := take(t, s2, 1, c); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("second store: %+v, want the last unit", d)
	}
}

func countRows(t *testing.T, path string) int {
	t.Helper()
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM weir_state`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCleanup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	clk := newFakeClock()
	s := open(t, path, WithClock(clk.now), WithCleanupInterval(0))
	short := weir.PerSecond(1).WithName("short")
	long := weir.PerHour(1).WithName("long")
	const n = 2*cleanupBatch + 10
	for i := range n {
		take(t, s, 1, weir.Check{Key: "k" + string(rune('a'+i%26)) + string(rune(i)), Limit: short})
	}
	hold := weir.Check{Key: "held", Limit: long}
	take(t, s, 1, hold)
	// Refunding to full leaves nothing to keep: the row goes at once.
	take(t, s, 1, weir.Check{Key: "refunded", Limit: long})
	if err := s.Refund(context.Background(), &weir.Request{Checks: []weir.Check{{Key: "refunded", Limit: long}}, Cost: 1, At: clk.now()}); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, path); got != n+1 {
		t.Fatalf("%d rows, want %d", got, n+1)
	}
	if got, err := s.Cleanup(context.Background()); err != nil || got != 0 {
		t.Fatalf("Cleanup before expiry: %d, %v; want 0", got, err)
	}
	clk.add(time.Second)
	got, err := s.Cleanup(context.Background())
	if err != nil || got != n {
		t.Fatalf("Cleanup: %d, %v; want %d", got, err, n)
	}
	if got := countRows(t, path); got != 1 {
		t.Fatalf("%d rows left, want 1", got)
	}
	if d := take(t, s, 1, hold); d.Allowed {
		t.Fatalf("cleanup lost live state: %+v", d)
	}
}

func TestCleanupInBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "weir.db")
		s, err := Open(path, WithCleanupInterval(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		take(t, s, 1, weir.Check{Key: "k", Limit: weir.PerSecond(1)})
		if got := countRows(t, path); got != 1 {
			t.Fatalf("%d rows, want 1", got)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if got := countRows(t, path); got != 0 {
			t.Fatalf("%d rows after the cleanup interval, want 0", got)
		}
	})
}

func TestCorruptRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	s := open(t, path)
	c := weir.Check{Key: "user:7", Limit: weir.PerMinute(5).WithAlgorithm(weir.SlidingWindowLog)}
	take(t, s, 1, c)
	if _, err := rawDB(t, path).Exec(`UPDATE weir_state SET extra = x'01ff'`); err != nil {
		t.Fatal(err)
	}
	for _, cost := range []int64{0, 1} {
		_, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: cost})
		wantUnavailable(t, err, path)
		if !strings.Contains(err.Error(), `"user:7"`) || !errors.Is(err, errCorrupt) {
			t.Fatalf("error %q does not name the key as corrupt", err)
		}
	}
	if err := s.Reset(context.Background(), []weir.Check{c}); err != nil {
		t.Fatal(err)
	}
	if d := take(t, s, 1, c); !d.Allowed || d.Remaining != 4 {
		t.Fatalf("after Reset: %+v, want a fresh limit", d)
	}
}

func TestAlgorithmChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	s := open(t, path)
	tb := weir.Check{Key: "k", Limit: weir.PerMinute(1).WithName("api")}
	take(t, s, 1, tb)
	if d := take(t, s, 1, tb); d.Allowed {
		t.Fatal("token bucket admitted twice")
	}
	// The same name now counts differently: the old state means nothing
	// to the new algorithm and reads as fresh.
	fw := weir.Check{Key: "k", Limit: weir.PerMinute(2).WithName("api").WithAlgorithm(weir.FixedWindow)}
	if d := take(t, s, 1, fw); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("fixed window after token bucket: %+v, want fresh", d)
	}
}

func TestSharedState(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "weir.db"))
	l := weir.PerMinute(4).WithAlgorithm(weir.FixedWindow).WithName("dup")
	// Two checks on the same (name, key) share one state: both charge it.
	if d := take(t, s, 1, weir.Check{Key: "k", Limit: l}, weir.Check{Key: "k", Limit: l}); !d.Allowed {
		t.Fatalf("%+v, want allowed", d)
	}
	if d := take(t, s, 0, weir.Check{Key: "k", Limit: l}); d.Remaining != 2 {
		t.Fatalf("peek: %+v, want 2 remaining", d)
	}
}

func TestManyChecks(t *testing.T) {
	// More checks than the preallocated room, all charged in one transaction.
	s := open(t, filepath.Join(t.TempDir(), "weir.db"))
	var checks []weir.Check
	for i := range 7 {
		checks = append(checks, weir.Check{Key: "k", Limit: weir.PerMinute(int64(i + 2)).WithName(string(rune('a' + i)))})
	}
	d := take(t, s, 2, checks...)
	if !d.Allowed || d.Remaining != 0 || d.Limit.Name != "a" {
		t.Fatalf("%+v, want allowed by a with 0 remaining", d)
	}
	d = take(t, s, 1, checks...)
	if d.Allowed || d.Limit.Name != "a" {
		t.Fatalf("%+v, want denied by a", d)
	}
	if d := take(t, s, 0, checks[6]); d.Remaining != 6 {
		t.Fatalf("%+v: the denied request charged g", d)
	}
}

func TestOpenPathEscaping(t *testing.T) {
	for _, name := range []string{"plain.db", "with space.db", "q?mark.db", "hash#.db", "pct%41.db", "ünï.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			s := open(t, path)
			take(t, s, 1, weir.Check{Key: "k", Limit: weir.PerMinute(1)})
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the database is not at %q: %v", path, err)
			}
			// Relative paths work too.
			t.Chdir(dir)
			s2 := open(t, name)
			if d := take(t, s2, 1, weir.Check{Key: "k", Limit: weir.PerMinute(1)}); d.Allowed {
				t.Fatal("the relative path opened another database")
			}
		})
	}
}

// TestCorruptPages damages the middle of a database file: decisions on it
// fail with weir.ErrUnavailable naming the file, and nothing panics.
func TestCorruptPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.db")
	s := open(t, path, WithCleanupInterval(0))
	l := weir.PerHour(5).WithAlgorithm(weir.SlidingWindowLog)
	var checks []weir.Check
	for i := range 2000 {
		checks = append(checks, weir.Check{Key: "user:" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune(i)), Limit: l})
	}
	for _, c := range checks {
		take(t, s, 1, c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if fi.Size() < 40<<10 {
		t.Fatalf("database only %d bytes: nothing to corrupt", fi.Size())
	}
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	for off := int64(8 << 10); off+4096 < fi.Size(); off += 12 << 10 {
		if _, err := f.WriteAt(garbage, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	s, err = Open(path, WithCleanupInterval(0))
	if err != nil {
		wantUnavailable(t, err, path)
		return
	}
	defer s.Close()
	failed := 0
	for _, c := range checks {
		if _, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1}); err != nil {
			if failed == 0 {
				wantUnavailable(t, err, path)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no decision noticed the damage")
	}
	if _, err := s.Cleanup(context.Background()); err != nil {
		wantUnavailable(t, err, path)
	}
}
