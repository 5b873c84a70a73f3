package weir

import (
	"testing"
	"time"
)

// TestNextSleep is waitInLine's rule for the sleep after a denial, at
// fixed budgets: a rate limit is retried after its RetryAfter when that
// fits the budget; a concurrency limit is polled with a doubling interval
// (capped) until the budget is spent.
func TestNextSleep(t *testing.T) {
	const ms = time.Millisecond
	rate := Decision{Limit: PerSecond(1), RetryAfter: 300 * ms}
	conc := Decision{Limit: Concurrent(1, time.Minute), RetryAfter: time.Minute}
	for _, tc := range []struct {
		name     string
		d        Decision
		left     time.Duration
		polling  bool
		poll     time.Duration
		sleep    time.Duration
		ok       bool
		nextPoll time.Duration
	}{
		{"rate fits", rate, time.Second, false, minLeasePoll, 300 * ms, true, minLeasePoll},
		{"rate just fits", rate, 300 * ms, false, minLeasePoll, 300 * ms, true, minLeasePoll},
		{"rate over budget", rate, 299 * ms, false, minLeasePoll, 0, false, minLeasePoll},
		{"rate, retry 0 sleeps 1ms", Decision{Limit: PerSecond(1)}, time.Second, false, minLeasePoll, ms, true, minLeasePoll},
		{"rate while polling", rate, time.Second, true, minLeasePoll, 300 * ms, true, minLeasePoll},
		{"conc polls", conc, time.Second, true, 5 * ms, 5 * ms, true, 10 * ms},
		{"conc backoff capped", conc, time.Second, true, 80 * ms, 80 * ms, true, maxLeasePoll},
		{"conc at the cap", conc, time.Second, true, maxLeasePoll, maxLeasePoll, true, maxLeasePoll},
		{"conc sleeps at most the budget", conc, 3 * ms, true, 80 * ms, 3 * ms, true, maxLeasePoll},
		{"conc budget spent", conc, 0, true, 5 * ms, 0, false, 10 * ms},
		{"conc not polling waits for expiry", conc, 2 * time.Minute, false, 5 * ms, time.Minute, true, 5 * ms},
	} {
		poll := tc.poll
		sleep, ok := nextSleep(tc.d, tc.left, tc.polling, &poll)
		if sleep != tc.sleep || ok != tc.ok || poll != tc.nextPoll {
			t.Errorf("%s: sleep %v, ok %v, next poll %v; want %v, %v, %v", tc.name, sleep, ok, poll, tc.sleep, tc.ok, tc.nextPoll)
		}
	}
}
