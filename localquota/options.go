package localquota

import (
	"fmt"
	"time"
)

// An Option configures a [Store].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	now      func() time.Time
	base     time.Time // the start of the default clock; zero after WithClock
	hold     time.Duration
	maxBlock int64
	slack    time.Duration
	timeout  time.Duration
	sync     time.Duration // > 0: the optimistic mode
}

// Defaults of the options.
const (
	DefaultHold     = 100 * time.Millisecond // WithHold
	DefaultMaxBlock = 1000                   // WithMaxBlock
)

func defaults() config {
	start := time.Now()
	return config{
		now:      func() time.Time { return start.Add(time.Since(start)) },
		base:     start,
		hold:     DefaultHold,
		maxBlock: DefaultMaxBlock,
		slack:    DefaultHold / 4,
		timeout:  time.Second,
	}
}

func (c *config) validate() error {
	if c.hold <= 0 {
		return fmt.Errorf("localquota: hold must be positive (got %v)", c.hold)
	}
	if c.sync < 0 {
		return fmt.Errorf("localquota: sync must not be negative (got %v)", c.sync)
	}
	if c.maxBlock < 1 {
		return fmt.Errorf("localquota: max_block must be at least 1 (got %d)", c.maxBlock)
	}
	return nil
}

// WithHold sets L, the longest a block of units may be held before it is
// spent or returned (default [DefaultHold]). Every unit this store admits
// was charged to the shared store at most L earlier, which is the L of the
// bounds in docs/algorithms.md: a longer hold means fewer store calls and a
// larger short-interval burst. The returns of unspent units are dated to
// stay safe for L/4 after they are sent.
func WithHold(l time.Duration) Option {
	return optionFunc(func(c *config) { c.hold, c.slack = l, l/4 })
}

// WithMaxBlock caps the units one block may take (default
// [DefaultMaxBlock]); a block is also never larger than the limit's
// capacity. Blocks grow with demand up to it.
func WithMaxBlock(n int64) Option {
	return optionFunc(func(c *config) { c.maxBlock = n })
}

// WithClock makes the store read its local clock from now instead of the
// monotonic clock. It measures how long blocks are held; it is meant for
// tests (a fake clock). nil keeps the default.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now, c.base = now, time.Time{}
		}
	})
}

// WithOptimistic selects the optimistic mode with sync interval S: a
// process admits from a credit first and charges the shared store every S,
// at once when a key's credit falls under half of ⌈rate·S⌉, and on Close. It makes no round trip on the hot path after a key's
// first request, at the price of a bounded overshoot: with N processes, a
// limit of rate units per second admits over any run from the start at
// most its own bound + N·⌈rate·S⌉ (docs/algorithms.md). 0 keeps the exact
// mode (the default).
func WithOptimistic(s time.Duration) Option {
	return optionFunc(func(c *config) { c.sync = s })
}
