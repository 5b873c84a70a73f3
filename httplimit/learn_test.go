package httplimit

import (
	"testing"
	"time"
)

// The learner as pure logic, step by step: slow start grows with answers,
// the first 429 gives quota and window, later 429s of the same run teach
// nothing, a steady 429 lowers the quota only when the upstream admitted
// clearly fewer, probes go up after a calm and come back on a 429, and an
// estimate posted by another process is taken as is.
func TestLearner(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ans := func(sent, got time.Duration, ra time.Duration) answer {
		return answer{sent: at(sent), at: at(got), retryAfter: ra}
	}
	type step struct {
		name    string
		quota   int64
		window  time.Duration
		slow    bool
		probing bool
	}
	var l learner
	l.start(ans(0, 0, -1))
	check := func(s step) {
		t.Helper()
		q, w := l.pace()
		if s.slow {
			if !l.slowStart || q != 1 {
				t.Fatalf("%s: pace %d per %v, want slow start", s.name, q, w)
			}
			return
		}
		if l.slowStart || q != s.quota || w != s.window || l.probing != s.probing {
			t.Fatalf("%s: pace %d per %v (slow start %v, probing %v), want %d per %v (probing %v)", s.name, q, w, l.slowStart, l.probing, s.quota, s.window, s.probing)
		}
	}
	if q, w := l.pace(); q != 1 || w != time.Second {
		t.Fatalf("start: %d per %v, want 1 per 1s", q, w)
	}
	// One second of answers at the pace grows it eightfold.
	r := l.rate
	l.ok(ans(0, 0, -1))
	if l.rate < 7.9*r || l.rate > 8.1*r {
		t.Fatalf("rate %v after one answer at 1/s, want 8", l.rate)
	}
	check(step{name: "slow start", slow: true})

	// The first 429, 3.6 s after the first send, says the oldest counted
	// request leaves in 57 s: a window of 60 s (3.6+57, rounded down).
	w, ok := l.countWindow(ans(3600*time.Millisecond, 3600*time.Millisecond, 57*time.Second))
	if !ok || w != time.Minute {
		t.Fatalf("first 429: count over %v, %v; want 1m0s", w, ok)
	}
	l.limited(ans(3600*time.Millisecond, 3600*time.Millisecond, 57*time.Second), w, 10)
	check(step{name: "estimate", quota: 10, window: time.Minute})
	// A 429 to a request sent before that answer teaches nothing.
	if _, ok := l.countWindow(ans(3500*time.Millisecond, 3700*time.Millisecond, time.Second)); ok {
		t.Fatal("a 429 to a send before the estimate taught")
	}
	// A steady 429 where the upstream admitted 9 of 10 keeps the quota
	// (the margin covers it); one where it admitted 6 takes 6.
	a := ans(2*time.Minute, 2*time.Minute, time.Second)
	w, ok = l.countWindow(a)
	if !ok || w != time.Minute {
		t.Fatalf("steady 429: count over %v, %v; want the known 1m0s", w, ok)
	}
	l.limited(a, w, 9)
	check(step{name: "9 of 10", quota: 10, window: time.Minute})
	a = ans(3*time.Minute, 3*time.Minute, time.Second)
	l.limited(a, time.Minute, 6)
	check(step{name: "6 of 10", quota: 6, window: time.Minute})

	// 100 windows of calm start a probe at 7; a 429 brings back 6 and
	// the next probe waits 200 windows.
	l.ok(ans(3*time.Minute+99*time.Minute, 3*time.Minute+99*time.Minute, -1))
	check(step{name: "before the calm", quota: 6, window: time.Minute})
	probeAt := 3*time.Minute + 100*time.Minute
	l.ok(ans(probeAt, probeAt, -1))
	check(step{name: "probe", quota: 7, window: time.Minute, probing: true})
	a = ans(probeAt+time.Second, probeAt+time.Second, time.Second)
	w, _ = l.countWindow(a)
	l.limited(a, w, 6)
	check(step{name: "probe refused", quota: 6, window: time.Minute})
	if l.calm != 2*probeCalm {
		t.Fatalf("calm %d after a refused probe, want %d", l.calm, 2*probeCalm)
	}
	// A probe that draws no 429 for two windows stays.
	next := probeAt + time.Second + 200*time.Minute
	l.ok(ans(next, next, -1))
	check(step{name: "second probe", quota: 7, window: time.Minute, probing: true})
	l.ok(ans(next+2*time.Minute, next+2*time.Minute, -1))
	check(step{name: "probe kept", quota: 7, window: time.Minute})
	// A probe that passed brings the next one two windows later, with
	// twice the step: an estimate too low climbs back fast.
	l.ok(ans(next+4*time.Minute, next+4*time.Minute, -1))
	check(step{name: "third probe", quota: 9, window: time.Minute, probing: true})
	a = ans(next+5*time.Minute, next+5*time.Minute, time.Second)
	w, _ = l.countWindow(a)
	l.limited(a, w, 7)
	check(step{name: "third probe refused", quota: 7, window: time.Minute})
	if l.calm != 4*probeCalm || l.boost != 1 {
		t.Fatalf("calm %d, boost %d after a second refused probe, want %d, 1", l.calm, l.boost, 4*probeCalm)
	}
	next += 5 * time.Minute

	// Another process's newer estimate is taken as is.
	gen := l.gen
	l.adopt(5, 10*time.Second, gen+1, at(next+time.Minute))
	check(step{name: "adopted", quota: 5, window: 10 * time.Second})
	if l.gen != gen+1 {
		t.Fatalf("gen %d after adopting %d", l.gen, gen+1)
	}

	// A short Retry-After in slow start means a window of one second.
	var s learner
	s.start(ans(0, 0, -1))
	if w, ok := s.countWindow(ans(2*time.Second, 2*time.Second, time.Second)); !ok || w != time.Second {
		t.Fatalf("slow start, Retry-After 1: count over %v, %v; want 1s", w, ok)
	}
	if w, ok := s.countWindow(ans(2*time.Second, 2*time.Second, -1)); !ok || w != time.Second {
		t.Fatalf("slow start, no Retry-After: count over %v, %v; want 1s", w, ok)
	}
}
