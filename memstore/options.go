package memstore

import "time"

// An Option configures a [Store].
type Option interface{ apply(*config) }

type config struct {
	now     func() time.Time
	maxKeys int64
	sweep   time.Duration
}

func defaults() config { return config{now: monotonic()} }

// monotonic returns a clock that reads only the monotonic clock (about half
// the cost of time.Now) and reports it as wall time anchored at the
// instant it was made: it never jumps when the wall clock is set, and
// Decision.Time stays within the system clock's slew of time.Now.
func monotonic() func() time.Time {
	start := time.Now()
	return func() time.Time { return start.Add(time.Since(start)) }
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithClock makes the store read instants from now instead of its default
// clock (the monotonic clock, anchored at the wall time of New). It is
// meant for tests (a fake clock); nil keeps the default.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithMaxKeys caps the number of states the store keeps (one per limit
// name and key pair). When the cap is reached, the store first evicts
// states that are fresh (their key would be admitted exactly as a new one
// is); if none is, a request that needs a new state fails with [ErrFull]
// and nothing is charged. Existing keys are never affected. n <= 0, the
// default, means no cap.
func WithMaxKeys(n int) Option {
	return optionFunc(func(c *config) { c.maxKeys = int64(max(n, 0)) })
}

// WithSweep starts a goroutine that, every interval, removes the states
// that are fresh (see [Store]). Call [Store.Close] to stop it. interval <= 0,
// the default, means no goroutine: fresh states are then removed when they
// are next touched, lazily on inserts, and when the key cap is reached.
func WithSweep(interval time.Duration) Option {
	return optionFunc(func(c *config) { c.sweep = max(interval, 0) })
}
