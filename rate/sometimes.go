package rate

import (
	"sync"
	"time"
)

// Sometimes performs an action occasionally. First, Every and Interval
// govern the behaviour of Do. A zero Sometimes performs the action exactly
// once.
//
// Example, logging with rate limiting:
//
//	var sometimes = rate.Sometimes{First: 3, Interval: 10 * time.Second}
//
//	func Spammy() {
//		sometimes.Do(func() { log.Print("here I am!") })
//	}
type Sometimes struct {
	First    int           // if non-zero, the first First calls to Do run f
	Every    int           // if non-zero, every Every-th call to Do runs f
	Interval time.Duration // if non-zero, Do runs f when Interval has elapsed since f last ran

	mu    sync.Mutex
	calls int       // number of completed Do calls
	ran   time.Time // when f last ran (only tracked if Interval > 0)
}

// Do runs f if First, Every or Interval allow it.
//
// The filters form a union: the first call to Do always runs f, and later
// calls run f if any one of the non-zero filters allows it. First: N runs f
// on the first N calls; Every: M runs f on every M-th call, counting the
// first call as call 0; Interval: d runs f when d has elapsed since f last
// ran.
//
// Concurrent calls to Do are serialised and f runs while Do holds its lock,
// so f should be quick, and f must not call Do on the same Sometimes (it
// would deadlock).
func (s *Sometimes) Do(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.due() {
		f()
		if s.Interval > 0 {
			s.ran = time.Now()
		}
	}
	s.calls++
}

// due reports whether the current call should run f; s.mu must be held.
func (s *Sometimes) due() bool {
	switch {
	case s.calls == 0:
		return true
	case s.First > 0 && s.calls < s.First:
		return true
	case s.Every > 0 && s.calls%s.Every == 0:
		return true
	case s.Interval > 0:
		return time.Since(s.ran) >= s.Interval
	}
	return false
}
