package httplimit

import "time"

// This file learns the limit of an upstream that sends no rate fields at
// all, only 429 and Retry-After, as pure logic (every method takes the
// instants it needs). The transport feeds it the answers and, on a 429,
// the number of requests the upstream admitted in the window it names
// (counted in the store, so that several processes count together).
//
// It works in three phases:
//
//  1. Slow start: evenly spaced sends (never a burst) at a pace driven by
//     the answers, as TCP's slow start is: from learnStart per second,
//     each answer without a 429 adds slowStartStep per second, and at
//     most slowStartWindow plus slowStartRTTGrowth per answer are in
//     flight per round trip. With a short round trip the pace grows by
//     e^slowStartStep per second of answers; with a long one it grows by
//     1+slowStartRTTGrowth per round trip, which bounds what is in flight
//     when the first 429 comes back (those requests are refused too).
//     Transports sharing a store count their answers together (the log
//     httplimit.ok), as they share one timeline of sends.
//  2. The first 429 ends it and gives the estimate. Its Retry-After says
//     how long until the upstream's oldest counted request leaves its
//     window; with the time since the first request that gives the window
//     (in whole seconds, at least 1 s), and the requests admitted in the
//     last window before the 429 are the quota: an upstream that refuses
//     the k+1st request of a window admits k per window. From then on the
//     transport paces to that quota per window, as if it had been
//     advertised. The window is counted again window/recountAfter later:
//     clearly more answers then (logged late) put the estimate in doubt.
//  3. Steady state: a 429 while paced to the estimate widens the margin,
//     as for an advertised limit, and if the upstream admitted clearly
//     fewer (under 90%) in the window, lowers the quota to that. Probes
//     look for a higher limit: the quota goes up by 1% (at least 1), and
//     the probe passes if no transport on the store met a 429 in the
//     probeHold windows that follow (the log httplimit.limited); then the
//     next probe goes at once with twice the step, so an estimate that is
//     too low climbs back in a few windows. A refused probe goes back to
//     the last quota that passed, and later probes stay below the refused
//     one until the search ends; after the smallest step the next probe
//     waits twice as long, after a larger one it searches again soon from
//     the smallest. The first probe comes after probeCalm windows (and
//     probeRequests requests), or probeSoon windows when the estimate is
//     in doubt (lowered by a count, or recounted higher), and then goes
//     straight to the former quota or the recount.
//
// Only the first 429 of a run teaches: the requests sent before its
// answer arrived were sent without knowing it. A refused probe costs its
// 429s and the pause of their Retry-After (a whole window when the
// upstream rounds a 1 s window up to 1 s), hence the long calm before a
// probe of an estimate not in doubt.

// Learning constants, documented in docs/http.md.
const (
	// learnStart is slow start's first pace, in requests per second
	// (lower when the round trip is long: see slowStartWindow).
	learnStart = 10.0
	// slowStartStep is how much each answer without a 429 adds to slow
	// start's pace, in requests per second: answers come back at the
	// pace, so it grows by e^slowStartStep per second of answers.
	slowStartStep = 8.0
	// slowStartWindow is how many requests slow start has in flight per
	// round trip before the first answer; slowStartRTTGrowth is what
	// each answer adds to it, so that the pace grows by at most
	// 1+slowStartRTTGrowth per round trip.
	slowStartWindow    = 2.0
	slowStartRTTGrowth = 0.4
	// learnCeiling bounds the slow-start pace: a million per second, an
	// upstream that never refuses.
	learnCeiling = 1e6
	// recountAfter: the window of the first 429 is counted again
	// window/recountAfter after the first count.
	recountAfter = 4
	// probeCalm is how many windows without a 429 come after an estimate
	// not in doubt before the first probe above it (a refused probe costs
	// about a window of pause: at most 2% of them); probeRequests is the
	// fewest requests before it (a refused probe costs a 429 or two: at
	// most 0.5% of them). The calm doubles after each probe refused at
	// the smallest step.
	probeCalm     = 50
	probeRequests = 400
	// probeSoon is the calm, in windows, before the first probe above an
	// estimate in doubt, or after a probe refused at a step larger than
	// the smallest.
	probeSoon = 2
	// probeHold is how many windows a probe lasts without a 429 before
	// it passes: the upstream counts a whole window at the new quota
	// only a window after it began, and its 429 takes a round trip.
	probeHold = 2
)

// learner is the state of learning one key's limit from its 429s.
type learner struct {
	on bool

	// Slow start: the pace in requests per second, from the answers
	// without a 429 (of every transport sharing the store) and their
	// round trip.
	slowStart bool
	rate      float64
	answers   int64
	// base is what the log held before this transport's first answer
	// (older answers, kept up to an hour), set by the first count.
	base    int64
	based   bool
	rtt     time.Duration // smoothed round trip of slow start's answers
	started time.Time     // the send of the first request learnt from

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
	// patience is the calm before a probe after one refused at the
	// smallest step (baseCalm, doubled by each such refusal); boost
	// multiplies the step of the next probe, doubled by each probe that
	// passed, so that an estimate that is too low climbs back in a few
	// windows.
	patience int64
	boost    int64
	// target, when above the quota, is where the next probe goes in one
	// step (jumped): the count of a recount, or the quota before a
	// count lowered it.
	target int64
	jumped bool
	// ceiling, when positive, is the lowest quota refused since the
	// last long calm: probes stay below it.
	ceiling int64
}

// start begins learning with slow start, from answer a.
func (l *learner) start(a answer) {
	*l = learner{on: true, slowStart: true, rate: learnStart, rtt: max(a.at.Sub(a.sent), 0), started: a.sent, boost: 1}
	l.grow()
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

// grow sets slow start's pace from the answers so far: learnStart plus
// slowStartStep per answer, and at most slowStartWindow plus
// slowStartRTTGrowth per answer in flight per round trip, so that what is
// in flight when the first 429 comes back (and is refused too) is bounded,
// as TCP's congestion window bounds it.
func (l *learner) grow() {
	r := learnStart + slowStartStep*float64(l.answers)
	if l.rtt > 0 {
		r = min(r, (slowStartWindow+slowStartRTTGrowth*float64(l.answers))/l.rtt.Seconds())
	}
	l.rate = min(r, learnCeiling)
}

// counted takes the number of answers without a 429 that every transport
// sharing the store logged (httplimit.ok), n, as slow start's count, if it
// is higher than this transport's own: the transports share one timeline of
// sends, so they grow it together. What the log held before this
// transport's first answer does not count: a run that ended within the
// hour, and (the price of that) the answers of a slow start this
// transport joined late, which it then grows from its own.
func (l *learner) counted(n int64) {
	if !l.on || !l.slowStart {
		return
	}
	if !l.based {
		// n includes this answer and the ones already counted.
		l.base, l.based = max(n-l.answers-1, 0), true
	}
	if n -= l.base; n > l.answers {
		l.answers = n
		l.grow()
	}
}

// ok learns from an answer that was not a 429: slow start grows, and a
// long enough calm starts a probe.
func (l *learner) ok(a answer) {
	switch {
	case !l.on:
	case l.slowStart:
		rtt := max(a.at.Sub(a.sent), 0)
		l.rtt = (7*l.rtt + rtt) / 8
		l.answers++
		l.grow()
	case l.probing:
		// probeDue and probed end it.
	case a.sent.Sub(l.calmSince) >= time.Duration(l.calm)*l.window:
		l.probe(a.sent)
	}
}

// probeDue says whether answer a, not a 429, may end the probe in flight:
// it was sent probeHold windows after the probe began, so the upstream
// has counted a whole window at the new quota. The transport then asks the store
// whether any transport met a 429 since the probe began, and calls
// probed.
func (l *learner) probeDue(a answer) bool {
	return l.on && l.probing && a.sent.Sub(l.calmSince) >= probeHold*l.window
}

// probed ends the probe that began at since, from answer a: refused if a
// transport sharing the store met a 429 since, else passed (the quota
// stays, and the next probe goes at once, twice as far).
func (l *learner) probed(a answer, since time.Time, refused bool) {
	if !l.probing || !l.calmSince.Equal(since) {
		return // ended meanwhile
	}
	if refused {
		l.ignoreBefore = a.at
		l.calmSince = a.sent
		l.gen++
		l.refuse()
		return
	}
	l.probing = false
	if l.jumped {
		l.boost = 1 // the target passed: go on from the smallest step
	} else {
		l.boost = min(2*l.boost, 1<<20)
	}
	l.probe(a.sent)
}

// baseCalm is the calm, in windows, before a probe above an estimate
// that is not in doubt: probeCalm windows, and at least probeRequests
// requests, so that the 429s of refused probes stay a small share.
func (l *learner) baseCalm() int64 {
	return max(probeCalm, (probeRequests+l.quota-1)/max(l.quota, 1))
}

// refuse ends a probe that drew a 429: back to the last quota that
// passed. If the step was the smallest, the estimate is within a step of
// the limit: the next probe waits twice as long. If not, the limit lies
// within the step: search it again soon, from the smallest step.
func (l *learner) refuse() {
	l.probing = false
	if l.ceiling == 0 || l.quota < l.ceiling {
		l.ceiling = l.quota
	}
	l.quota = l.before
	if l.boost > 1 || l.jumped {
		l.calm = probeSoon
	} else {
		l.patience = 2 * max(l.patience, l.baseCalm())
		l.calm = l.patience
	}
	l.boost, l.jumped = 1, false
}

// probe raises the quota to the target, if it is higher, or else by 1%
// (at least 1) times boost, from the send at; never to a quota refused
// since the last long calm. When the quota is just below that, the limit
// is found: the next probe comes after a long calm, and may go higher.
func (l *learner) probe(at time.Time) {
	q := l.quota + max(1, l.quota/100)*max(l.boost, 1)
	jump := l.target > l.quota
	if jump {
		q = l.target
	}
	if l.ceiling > 0 {
		q = min(q, l.ceiling-1)
	}
	l.target, l.calmSince = 0, at
	if q <= l.quota {
		l.ceiling, l.boost = 0, 1
		l.calm = max(l.patience, l.baseCalm())
		return
	}
	l.before, l.probing, l.jumped = l.quota, true, jump
	l.quota = q
	l.gen++
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
		l.patience = l.baseCalm()
		l.calm = l.patience
	case l.probing:
		l.refuse()
	default:
		l.calm = max(l.patience, l.baseCalm())
		if w > l.window {
			// A longer window than believed: keep the rate, re-count.
			l.quota = max(1, int64(float64(l.quota)*float64(w)/float64(l.window)))
			l.window = w
		}
		// An upstream that admitted clearly fewer than the estimate
		// admits that many; a 429 near the estimate is the jitter of
		// the sends, which the margin covers (pacer.observe widens it).
		if admitted > 0 && 10*admitted < 9*l.quota {
			// A count that low may be blurred (answers logged late,
			// other processes paused): probe the former quota soon, so
			// that a limit that did not fall is found again in a few
			// windows.
			l.target = l.quota
			l.quota = admitted
			l.calm, l.boost = probeSoon, 1
		}
	}
}

// recounted learns from a second count of the window of the first 429,
// made a little later (recountAfter): clearly more answers than the first
// count (5%, at least 2) means some were logged late, so the estimate may
// be too low: the first probe comes soon and goes to the recount at once.
// gen is the generation the first count gave.
func (l *learner) recounted(gen uint64, n int64) {
	if l.on && !l.slowStart && !l.probing && l.gen == gen && n >= l.quota+max(2, l.quota/20) {
		l.calm, l.target = probeSoon, n
	}
}

// adopt takes an estimate made by another transport sharing the store, at
// now: quota per window, of generation gen.
func (l *learner) adopt(quota int64, window time.Duration, gen uint64, now time.Time) {
	*l = learner{on: true, quota: quota, window: window, gen: gen, ignoreBefore: now, calmSince: now, patience: l.patience, boost: 1, started: now}
	l.patience = max(l.patience, l.baseCalm())
	l.calm = l.patience
}
