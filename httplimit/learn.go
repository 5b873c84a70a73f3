package httplimit

import (
	"math"
	"time"
)

// This file learns the limit of an upstream that sends no rate fields at
// all, only 429 and Retry-After, as pure logic (every method takes the
// instants it needs). The transport feeds it the answers and, on a 429,
// the number of requests the upstream admitted in the window it names
// (counted in the store, so that several processes count together).
//
// It works in three phases:
//
//  1. Slow start: from one request per second, the pace grows by a factor
//     of slowStartGrowth per second of answers without a 429, evenly
//     spaced (never a burst).
//  2. The first 429 ends it and gives the estimate. Its Retry-After says
//     how long until the upstream's oldest counted request leaves its
//     window; with the time since the first request that gives the window
//     (in whole seconds, at least 1 s), and the requests admitted in the
//     last window before the 429 are the quota: an upstream that refuses
//     the k+1st request of a window admits k per window. From then on the
//     transport paces to that quota per window, as if it had been
//     advertised.
//  3. Steady state: a 429 while paced to the estimate widens the margin,
//     as for an advertised limit, and if the upstream admitted clearly
//     fewer (under 90%) in the window, lowers the quota to that. After
//     probeCalm windows without a 429 the quota is raised by 1% (at least
//     1), a probe: if it draws a 429 the quota goes back and the next probe
//     waits twice as long; if not, it stays, and the next probe comes two
//     windows later with twice the step (an estimate too low, from a count
//     the scheduler blurred, climbs back fast).
//
// Only the first 429 of a run teaches: the requests sent before its
// answer arrived were sent without knowing it.

// Learning constants, documented in docs/http.md.
const (
	// learnStart is the pace of slow start's first second, in requests
	// per second.
	learnStart = 1.0
	// slowStartGrowth is the factor by which slow start's pace grows per
	// second of answers without a 429.
	slowStartGrowth = 8.0
	// probeCalm is how many windows without a 429 come before the first
	// probe above the estimate; it doubles after each probe that draws a
	// 429.
	probeCalm = 100
	// learnCeiling bounds the slow-start pace: a million per second, an
	// upstream that never refuses.
	learnCeiling = 1e6
)

// learner is the state of learning one key's limit from its 429s.
type learner struct {
	on bool

	// Slow start: the pace in requests per second, grown at each answer.
	slowStart bool
	rate      float64
	started   time.Time // the send of the first request learnt from

	// The estimate, once the first 429 is in: quota per window.
	quota  int64
	window time.Duration
	gen    uint64 // bumped at every change of the estimate

	// ignoreBefore: 429s to sends before it teach nothing (they left
	// before the previous 429 was known).
	ignoreBefore time.Time
	calmSince    time.Time // the latest 429 or change of the estimate
	calm         int64     // windows of calm before the next probe
	probing      bool
	before       int64 // the quota before the probe
	// patience is the calm before a probe after a refused one (probeCalm,
	// doubled by each refusal); boost multiplies the step of the next
	// probe, doubled by each probe that passed (an estimate too low, from
	// a count the scheduler blurred, climbs back fast).
	patience int64
	boost    int64
}

// start begins learning with slow start, from answer a.
func (l *learner) start(a answer) {
	*l = learner{on: true, slowStart: true, rate: learnStart, started: a.sent, calm: probeCalm, patience: probeCalm, boost: 1}
}

// pace is the pace of slow start (one request per 1/rate) or the
// estimate; Quota 0 if not learning.
func (l *learner) pace() (quota int64, window time.Duration) {
	switch {
	case !l.on:
		return 0, 0
	case l.slowStart:
		return 1, time.Duration(float64(time.Second) / l.rate)
	default:
		return l.quota, l.window
	}
}

// ok learns from an answer that was not a 429: slow start grows, and a
// long calm starts a probe, or ends one that passed.
func (l *learner) ok(a answer) {
	switch {
	case !l.on:
	case l.slowStart:
		// Each answer is worth one interval of the pace: answers at
		// the pace grow it by slowStartGrowth per second, and a pause
		// (no sends) does not grow it.
		l.rate = min(l.rate*math.Pow(slowStartGrowth, 1/l.rate), learnCeiling)
	case l.probing:
		if a.sent.Sub(l.calmSince) >= 2*l.window {
			// Two windows at the new quota without a 429: keep it, and
			// probe again soon, twice as far.
			l.probing = false
			l.boost = min(2*l.boost, 1<<20)
			l.calm = 2
			l.calmSince = a.sent
		}
	case a.sent.Sub(l.calmSince) >= time.Duration(l.calm)*l.window:
		l.before, l.probing = l.quota, true
		l.quota += max(1, l.quota/100) * max(l.boost, 1)
		l.calmSince = a.sent
		l.gen++
	}
}

// countWindow says whether the 429 a teaches, and if so over which window
// the transport counts what the upstream admitted before it.
func (l *learner) countWindow(a answer) (time.Duration, bool) {
	if !l.on || a.sent.Before(l.ignoreBefore) {
		return 0, false
	}
	ra := a.retryAfter
	if ra < 0 {
		ra = time.Second
	}
	w := ra
	if l.slowStart && ra > time.Second {
		// Retry-After is when the oldest request in the window leaves it,
		// rounded up to whole seconds: since the first request of slow
		// start is the oldest, the window is from it to then, rounded
		// down.
		w = ra + a.sent.Sub(l.started)
	}
	w = max(w.Truncate(time.Second), time.Second, l.window)
	return w, true
}

// limited learns from a 429 that teaches (countWindow said so): the
// upstream admitted admitted requests in the window w before it.
func (l *learner) limited(a answer, w time.Duration, admitted int64) {
	l.ignoreBefore = a.at
	l.calmSince = a.sent
	l.gen++
	switch {
	case l.slowStart:
		l.slowStart = false
		l.quota, l.window = max(admitted, 1), w
	case l.probing:
		l.probing = false
		l.quota = l.before
		l.patience = 2 * max(l.patience, probeCalm)
		l.calm, l.boost = l.patience, 1
	default:
		if w > l.window {
			// A longer window than believed: keep the rate, re-count.
			l.quota = max(1, int64(float64(l.quota)*float64(w)/float64(l.window)))
			l.window = w
		}
		// An upstream that admitted clearly fewer than the estimate
		// admits that many; a 429 near the estimate is the jitter of
		// the sends, which the margin covers (pacer.observe widens it).
		if admitted > 0 && 10*admitted < 9*l.quota {
			l.quota = admitted
		}
	}
}

// adopt takes an estimate made by another transport sharing the store, at
// now: quota per window, of generation gen.
func (l *learner) adopt(quota int64, window time.Duration, gen uint64, now time.Time) {
	patience := max(l.patience, probeCalm)
	*l = learner{on: true, quota: quota, window: window, gen: gen, ignoreBefore: now, calmSince: now, calm: patience, patience: patience, boost: 1, started: now}
}
