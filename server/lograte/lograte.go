// Package lograte keeps a server's own logs readable during an outage.
//
// A store that fails fails for every request: one warning per failed
// request buries everything else (9,431 lines in 48 s on one server, issue
// 16.6). A [Store] logs the state changes instead, failing and recovered,
// and while the failure lasts one summary line per period with the number
// of failures since the previous line, so N failures in a period cost O(1)
// lines, not N. A [Throttle] does the same for free-form lines keyed by
// their format, such as the Redis client's own log lines.
//
// Both are safe for concurrent use. Time is read through a clock function
// so that tests can drive it.
package lograte

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEvery is the summary period of the server's logs.
const DefaultEvery = 10 * time.Second

// Store follows the health of a store from its failures and successes.
type Store struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	failing atomic.Bool // read without the lock on the hot path of OK
	mu      sync.Mutex
	since   time.Time // when the failure began
	lastLog time.Time // when the last line was written
	total   int64     // failures since since
	pending int64     // failures since lastLog
	lastErr error
}

// NewStore returns a Store that logs to log with a summary every period
// (DefaultEvery when every is 0). now is the clock (time.Now when nil).
func NewStore(log *slog.Logger, every time.Duration, now func() time.Time) *Store {
	if every <= 0 {
		every = DefaultEvery
	}
	if now == nil {
		now = time.Now
	}
	return &Store{log: log, every: every, now: now}
}

// Fail records a failed store call. The first failure after a success is
// logged at once ("store failing"); later ones are counted and summarised
// at most once per period ("store still failing", with the count and the
// last error).
func (s *Store) Fail(err error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if !s.failing.Load() {
		s.failing.Store(true)
		s.since, s.lastLog, s.total, s.pending = now, now, 1, 0
		s.log.Warn("store failing", "err", errString(err))
		return
	}
	s.total++
	s.pending++
	if now.Sub(s.lastLog) >= s.every {
		s.log.Warn("store still failing", "failures", s.pending, "failures_total", s.total,
			"for", now.Sub(s.since).Round(time.Millisecond).String(), "err", errString(err))
		s.lastLog, s.pending = now, 0
	}
}

// OK records a successful store call (a decision or a ping). After a
// failure it logs one line, "store recovered", with the total count; in
// the common case it costs one atomic load.
func (s *Store) OK() {
	if !s.failing.Load() {
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failing.Load() {
		return
	}
	s.failing.Store(false)
	s.log.Info("store recovered", "failures_total", s.total, "after", now.Sub(s.since).Round(time.Millisecond).String(),
		"last_err", errString(s.lastErr))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Throttle logs a line the first time its key is seen in a period and
// counts the repeats, which the next line of that key reports
// ("suppressed": N).
type Throttle struct {
	log   *slog.Logger
	level slog.Level
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int64
}

// maxKeys bounds the keys a Throttle remembers: the keys are format
// strings, a bounded set, but a bound keeps a surprise from growing it.
const maxKeys = 1024

// NewThrottle returns a Throttle writing at level to log, each key at most
// once per every (DefaultEvery when 0). now is the clock (time.Now when
// nil).
func NewThrottle(log *slog.Logger, level slog.Level, every time.Duration, now func() time.Time) *Throttle {
	if every <= 0 {
		every = DefaultEvery
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{log: log, level: level, every: every, now: now, keys: make(map[string]*throttled)}
}

// Log writes msg unless a line of the same key was written less than a
// period ago, in which case it is only counted.
func (t *Throttle) Log(key, msg string, attrs ...any) {
	now := t.now()
	t.mu.Lock()
	k := t.keys[key]
	if k == nil {
		if len(t.keys) >= maxKeys {
			clear(t.keys)
		}
		k = &throttled{}
		t.keys[key] = k
	} else if now.Sub(k.last) < t.every {
		k.suppressed++
		t.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	t.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	t.log.Log(context.Background(), t.level, msg, attrs...)
}

// RedisLogger adapts a Throttle to the Redis client's logger interface
// (go-redis's redis.SetLogger): each line is keyed by its format string
// and written with the source "redis".
type RedisLogger struct{ T *Throttle }

// Printf logs one line of the Redis client.
func (r RedisLogger) Printf(_ context.Context, format string, v ...any) {
	r.T.Log(format, fmt.Sprintf(format, v...), "source", "redis")
}
