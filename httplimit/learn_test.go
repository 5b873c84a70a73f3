package httplimit

import (
	"testing"
	"time"
)

// The learner as pure logic, step by step: slow start grows with answers
// and is held to a window per round trip, the shared count grows it, the
// first 429 gives quota and window, later 429s of the same run teach
// nothing, a steady 429 lowers the quota only when the upstream admitted
// clearly fewer (and then probes soon), probes climb with a doubling step
// while they pass and back off when refused, a recount puts the estimate
// in doubt, and an estimate posted by another process is taken as is.
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
		probing bool
	}
	var l learner
	check := func(s step) {
		t.Helper()
		q, w := l.pace()
		if l.slowStart || q != s.quota || w != s.window || l.probing != s.probing {
			t.Fatalf("%s: pace %d per %v (slow start %v, probing %v), want %d per %v (probing %v)", s.name, q, w, l.slowStart, l.probing, s.quota, s.window, s.probing)
		}
	}
	rate := func(name string, want float64) {
		t.Helper()
		if q, w := l.pace(); !l.slowStart || q != 1 || w != time.Duration(float64(time.Second)/want) {
			t.Fatalf("%s: pace %d per %v (slow start %v), want 1 per 1s/%v", name, q, w, l.slowStart, want)
		}
	}

	// Slow start with no round trip to speak of: learnStart, then
	// slowStartStep more per answer, and the count of every transport on
	// the store when it is higher.
	l.start(ans(0, 0, -1))
	rate("start", learnStart)
	l.ok(ans(0, 0, -1))
	rate("one answer", learnStart+slowStartStep)
	// The first count is 502: 500 older answers in the log (a run that
	// ended within the hour), which do not count, and this transport's
	// two (the one that started slow start counts there).
	l.counted(502)
	rate("first count", learnStart+2*slowStartStep)
	l.counted(510)
	rate("ten answers on the store", learnStart+10*slowStartStep)
	l.counted(503) // lower than its own: ignored
	rate("a lower count", learnStart+10*slowStartStep)

	// A 1 s round trip holds it to slowStartWindow in flight, plus
	// slowStartRTTGrowth per answer.
	var slow learner
	slow.start(ans(0, time.Second, -1))
	if q, w := slow.pace(); q != 1 || w != time.Duration(float64(time.Second)/slowStartWindow) {
		t.Fatalf("1 s round trip: pace 1 per %v, want 1 per 1s/%v", w, slowStartWindow)
	}
	for i := range 5 {
		d := time.Duration(i) * time.Second
		slow.ok(ans(d, d+time.Second, -1))
	}
	if want := slowStartWindow + 5*slowStartRTTGrowth; slow.rate < want-1e-9 || slow.rate > want+1e-9 {
		t.Fatalf("1 s round trip, 5 answers: %v per second, want %v", slow.rate, want)
	}

	// The first 429, 3.6 s after the first send, says the oldest counted
	// request leaves in 57 s: a window of 60 s (3.6+57, rounded down).
	first := ans(3600*time.Millisecond, 3600*time.Millisecond, 57*time.Second)
	w, ok := l.countWindow(first)
	if !ok || w != time.Minute {
		t.Fatalf("first 429: count over %v, %v; want 1m0s", w, ok)
	}
	l.limited(first, w, 10)
	check(step{name: "estimate", quota: 10, window: time.Minute})
	if want := int64(max(probeCalm, probeRequests/10)); l.calm != want {
		t.Fatalf("calm %d windows before the first probe, want %d", l.calm, want)
	}
	// A 429 to a request sent before that answer teaches nothing.
	if _, ok := l.countWindow(ans(3500*time.Millisecond, 3700*time.Millisecond, time.Second)); ok {
		t.Fatal("a 429 to a send before the estimate taught")
	}
	// A recount a little later that finds as many puts nothing in doubt.
	l.recounted(l.gen, 11)
	if l.calm == probeSoon {
		t.Fatal("a recount of 11 of 10 put the estimate in doubt")
	}
	// A steady 429 where the upstream admitted 9 of 10 keeps the quota
	// (the margin covers it); one where it admitted 6 takes 6, and the
	// next probe comes soon (the count may be blurred).
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

	// probeSoon windows later a probe goes back to 10 in one step.
	now := 3 * time.Minute
	// calm sends answers without a 429 windows-1 and windows windows
	// after the latest change.
	calm := func(name string, windows int64) {
		t.Helper()
		now = l.calmSince.Sub(t0)
		early := now + time.Duration(windows)*l.window - time.Millisecond
		l.ok(ans(early, early, -1))
		if l.probing {
			t.Fatalf("%s: a probe before %d windows of calm", name, windows)
		}
		now += time.Duration(windows) * l.window
		l.ok(ans(now, now, -1))
	}
	calm("after 6 of 10", probeSoon)
	check(step{name: "back to 10", quota: 10, window: time.Minute, probing: true})
	// A 429 of its own: back to 6, and 10 is a ceiling; the search goes on
	// soon from the smallest step.
	a = ans(now+time.Second, now+time.Second, time.Second)
	w, _ = l.countWindow(a)
	l.limited(a, w, 6)
	check(step{name: "10 refused", quota: 6, window: time.Minute})
	calm("after 10 refused", probeSoon)
	check(step{name: "probe +1", quota: 7, window: time.Minute, probing: true})
	// It passes after probeHold windows if no transport on the store met
	// a 429: the next probe goes at once, twice as far (9).
	since := l.calmSince
	if l.probeDue(ans(now+time.Minute, now+time.Minute, -1)) {
		t.Fatal("a probe due after one window")
	}
	now += probeHold * time.Minute
	if !l.probeDue(ans(now, now, -1)) {
		t.Fatal("a probe not due after probeHold windows")
	}
	l.probed(ans(now, now, -1), since, false)
	check(step{name: "7 passed", quota: 9, window: time.Minute, probing: true})
	l.probed(ans(now+time.Second, now+time.Second, -1), since, false) // the previous probe's: ignored
	check(step{name: "stale probe result", quota: 9, window: time.Minute, probing: true})
	// Refused (another transport met a 429): back to 7, and since the
	// step was larger than the smallest, search again soon from +1.
	since = l.calmSince
	now += probeHold * time.Minute
	l.probed(ans(now, now, -1), since, true)
	check(step{name: "9 refused", quota: 7, window: time.Minute})
	if l.boost != 1 {
		t.Fatalf("boost %d after a probe refused, want 1", l.boost)
	}
	calm("after 9 refused", probeSoon)
	check(step{name: "probe 8", quota: 8, window: time.Minute, probing: true})
	// 8 passes; twice the step would reach 9, refused: the limit is
	// found, and the next probe waits the usual calm.
	since = l.calmSince
	now += probeHold * time.Minute
	l.probed(ans(now, now, -1), since, false)
	check(step{name: "8 found", quota: 8, window: time.Minute})
	if want := int64(max(probeCalm, probeRequests/8)); l.calm != want {
		t.Fatalf("calm %d once the limit is found, want %d", l.calm, want)
	}
	calm("after 8 found", l.calm)
	check(step{name: "probe 9", quota: 9, window: time.Minute, probing: true})
	// A 429 of its own at the smallest step: back to 8, and the next
	// probe waits twice the usual calm.
	a = ans(now+time.Second, now+time.Second, time.Second)
	w, _ = l.countWindow(a)
	l.limited(a, w, 8)
	check(step{name: "9 refused", quota: 8, window: time.Minute})
	if want := 2 * int64(max(probeCalm, probeRequests/8)); l.calm != want {
		t.Fatalf("calm %d after a small probe refused, want %d", l.calm, want)
	}

	// Another process's newer estimate is taken as is.
	gen := l.gen
	l.adopt(5, 10*time.Second, gen+1, at(now+time.Minute))
	check(step{name: "adopted", quota: 5, window: 10 * time.Second})
	if l.gen != gen+1 {
		t.Fatalf("gen %d after adopting %d", l.gen, gen+1)
	}

	// A recount that finds clearly more than the first count (answers
	// logged late) puts the estimate in doubt: the first probe comes soon
	// and goes to the recount at once.
	l = learner{}
	l.start(ans(0, 0, -1))
	first = ans(2*time.Second, 2*time.Second, time.Second)
	w, _ = l.countWindow(first)
	l.limited(first, w, 82)
	l.recounted(l.gen+1, 100) // not the estimate it recounted: ignored
	if l.calm == probeSoon {
		t.Fatal("a recount of another estimate put this one in doubt")
	}
	l.recounted(l.gen, 100)
	now = 2 * time.Second
	calm("after the recount", probeSoon)
	check(step{name: "recount probed", quota: 100, window: time.Second, probing: true})

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
