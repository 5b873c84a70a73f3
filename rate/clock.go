package rate

import (
	"math"
	"time"
)

// epoch is the origin of the limiter's internal time axis. It carries a
// monotonic clock reading, so time.Since(epoch) is a monotonic-only clock read
// (about half the cost of time.Now, which reads the wall clock as well).
var epoch = time.Now()

// nowNs returns the current time as nanoseconds since epoch.
//
// Outside a testing/synctest bubble this reads only the monotonic clock.
// Inside a bubble it is derived from the bubble's fake clock, consistently
// with timeToNs(time.Now()).
func nowNs() int64 {
	return int64(time.Since(epoch))
}

// timeToNs maps t onto the internal axis. If t carries a monotonic clock
// reading the mapping uses it; otherwise it uses the wall clock, exactly like
// time.Time.Sub. Results saturate at the int64 range (about ±292 years).
func timeToNs(t time.Time) int64 {
	return int64(t.Sub(epoch))
}

// addSat returns a+b, saturating at the int64 range.
func addSat(a, b int64) int64 {
	s := a + b
	if (a^s)&(b^s) < 0 {
		if a < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return s
}

// subSat returns a-b, saturating at the int64 range.
func subSat(a, b int64) int64 {
	s := a - b
	if (a^b)&(a^s) < 0 {
		if a < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return s
}
