package httplimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
)

// This file is what a Transport knows about one upstream key, as pure
// logic: every method takes the instants it needs and reads no clock.

// paceName names the pacing state in the store: (paceName, key) is the
// timeline of sends to one upstream, shared by every Transport on the
// store. Its numbers change as the transport learns; the state stays.
const paceName = "httplimit.pace"

// Pacing constants, documented in docs/http.md.
const (
	// bumpDecay is how many answers in a row without a 429 halve the
	// margin added by 429s (as a multiple of the policy's quota).
	bumpDecay = 10
	// peakDecay sets how fast the peak deviation of the round trip is
	// forgotten: each answer takes 1/(peakDecay·Quota) of it away, so it
	// halves in about 0.7·peakDecay windows of answers at full pace.
	peakDecay = 24
	// sendTail is the least margin (but never above Window/50): the tail
	// of a send's way to the upstream that no measure can foresee, since
	// a late send's answer comes back when the send reusing its slot
	// leaves if the latency is near the window. Measured on loopback on a
	// quiet machine: 3.8 ms at most in 4000 sends (docs/http.md).
	sendTail = 5 * time.Millisecond
)

// A Pace is what a [Transport] paces one key's requests to.
type Pace struct {
	// Source says where the limit comes from: "told" (Transport.Limit),
	// "RateLimit-Policy", "X-RateLimit" (the legacy fields), "429s" (an
	// upstream with no rate fields: learnt from its 429s), or "" while
	// nothing is known (the transport probes with one request at a time).
	Source string
	// Quota per Window is the upstream's limit as known: the slowest of
	// the told and advertised ones. For "429s", the estimate, or during
	// slow start (before the first 429) one request per Window.
	Quota  int64
	Window time.Duration
	// Margin is added to Window between a send and the send that reuses
	// its slot: Quota requests leave in every Window+Margin, evenly spaced.
	// It covers the measured variation of the round trip and of the
	// wake-up of a waiting sender, and grows after a 429.
	Margin time.Duration
}

// PerSecond is the known limit in requests per second; 0 if unknown.
func (p Pace) PerSecond() float64 {
	if p.Quota <= 0 || p.Window <= 0 {
		return 0
	}
	return float64(p.Quota) / p.Window.Seconds()
}

// Interval is the spacing of sends, margin included; 0 if unknown.
func (p Pace) Interval() time.Duration {
	if p.Quota <= 0 || p.Window <= 0 {
		return 0
	}
	return (p.Window + p.Margin) / time.Duration(p.Quota)
}

// limit is the token bucket (burst 1) that spaces sends at p. Its period
// is rounded up to the microsecond, as stores count in microseconds.
func (p Pace) limit() weir.Limit {
	period := (p.Window + p.Margin + time.Microsecond - 1).Truncate(time.Microsecond)
	return weir.Limit{Name: paceName, Quota: p.Quota, Period: min(period, maxPacePeriod), Burst: 1}
}

// probeGuard is the guard's log as a probe takes it: any number of probes
// pass, and each is recorded, so that the guard of a pace learnt later,
// in this process or another, counts them.
var probeGuard = weir.Limit{Name: guardName, Algorithm: weir.SlidingWindowLog, Quota: maxGuard, Period: time.Hour}

// guard is the sliding log that checks each send when it leaves: never
// more than Quota sends in any Window+Margin of the store's clock, however
// late the senders woke for their slots. nil-equivalent (Quota 0) above
// maxGuard, where a log would be too large to keep.
func (p Pace) guard() weir.Limit {
	if p.Quota > maxGuard {
		return weir.Limit{}
	}
	l := p.limit()
	return weir.Limit{Name: guardName, Algorithm: weir.SlidingWindowLog, Quota: l.Quota, Period: l.Period}
}

// guardName names the guard's log in the store; maxGuard is the largest
// quota guarded (the log keeps one entry per send in the window).
const (
	guardName = "httplimit.sent"
	maxGuard  = 10000
)

// maxPacePeriod is the longest period a store takes (100 years).
const maxPacePeriod = 100 * 365 * 24 * time.Hour

// answer is what one response says, read by readAnswer.
type answer struct {
	sent, at time.Time // the send and the arrival of the response
	status   int
	cached   bool          // Age > 0: from a cache, not the upstream
	policies []QuotaPolicy // request policies with a window
	statuses []QuotaStatus
	// retryAfter is the Retry-After of a 429 or 503; -1 without one.
	retryAfter time.Duration
	// legacyLimit, legacyLeft and legacyReset are X-RateLimit-*; -1 when
	// absent. legacyReset is from the response's arrival.
	legacyLimit, legacyLeft int64
	legacyReset             time.Duration
}

// readAnswer parses the fields of resp that pacing uses. Malformed fields
// are ignored, as the draft says.
func readAnswer(resp *http.Response, sent, at time.Time) answer {
	h := resp.Header
	a := answer{sent: sent, at: at, status: resp.StatusCode, retryAfter: -1, legacyLimit: -1, legacyLeft: -1, legacyReset: -1}
	if age := strings.TrimSpace(h.Get("Age")); age != "" && age != "0" {
		a.cached = true
		return a
	}
	if ps, err := ParsePolicies(h); err == nil {
		for _, p := range ps {
			if p.Quota > 0 && p.Window > 0 && (p.Unit == "" || p.Unit == "requests" || p.Unit == "request") {
				a.policies = append(a.policies, p)
			}
		}
	}
	if ss, err := ParseRateLimit(h); err == nil {
		a.statuses = ss
	}
	if retryable(resp.StatusCode) {
		if ra, ok := ParseRetryAfter(h, at); ok {
			a.retryAfter = ra
		}
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderXRateLimitLimit)), 10, 64); err == nil && v > 0 {
		a.legacyLimit = v
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderXRateLimitLeft)), 10, 64); err == nil && v >= 0 {
		a.legacyLeft = v
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderXRateLimitReset)), 10, 64); err == nil && v >= 0 {
		if v > 1e9 { // Unix seconds, measured from the response's Date
			now := at
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				now = d
			}
			a.legacyReset = max(time.Unix(v, 0).Sub(now), 0)
		} else {
			a.legacyReset = seconds(v)
		}
	}
	return a
}

// pacer is the pure state of one key.
type pacer struct {
	told     QuotaPolicy   // Transport.Limit; Quota 0 if not told
	policies []QuotaPolicy // the last advertised RateLimit-Policy
	legacy   QuotaPolicy   // from X-RateLimit-Limit and the longest Reset seen
	// shared is a limit another transport learnt from the upstream's
	// fields and posted in the store (share.go); sharedSrc its source.
	shared    QuotaPolicy
	sharedSrc string

	// The round-trip estimator of RFC 6298 (srtt, rttvar), and the same
	// for how late a sender woke for its slot.
	srtt, rttvar  time.Duration
	rttSamples    int
	late, latevar time.Duration
	// peak is the largest deviation of a round trip from srtt seen after
	// first contact, decaying (peakDecay): the tail that a mean deviation
	// smooths away, and the one that puts two sends a window apart on
	// the client closer together on the server.
	peak time.Duration

	// bump is margin added by 429s met while pacing to a known limit;
	// calm counts answers since the last such 429.
	bump time.Duration
	calm int64
	// slipAt is the arrival of the last 429 met while paced to a known
	// limit (see observe).
	slipAt time.Time

	// learn learns the limit of an upstream that sends no rate fields
	// from its 429s (learn.go).
	learn learner

	paused   time.Time     // send nothing before this
	maxPause time.Duration // caps a pause; 0: no cap
}

// pace returns the limit to pace to at the current margins.
func (p *pacer) pace() Pace {
	var best Pace
	consider := func(src string, q int64, w time.Duration) {
		c := Pace{Source: src, Quota: q, Window: w, Margin: p.margin(w, q)}
		// c is slower when its interval is longer: compare (w+m)/q.
		if best.Quota == 0 || float64(c.Window+c.Margin)*float64(best.Quota) > float64(best.Window+best.Margin)*float64(c.Quota) {
			best = c
		}
	}
	if p.told.Quota > 0 {
		consider("told", p.told.Quota, p.told.Window)
	}
	for _, q := range p.policies {
		consider(HeaderRateLimitPolicy, q.Quota, q.Window)
	}
	if len(p.policies) == 0 && p.legacy.Quota > 0 && p.legacy.Window > 0 {
		consider("X-RateLimit", p.legacy.Quota, p.legacy.Window)
	}
	if best.Quota == 0 && p.shared.Quota > 0 {
		consider(p.sharedSrc, p.shared.Quota, p.shared.Window)
	}
	if q, w := p.learn.pace(); best.Quota == 0 && q > 0 {
		best = Pace{Source: "429s", Quota: q, Window: w}
		if !p.learn.slowStart {
			best.Margin = p.margin(w, q)
		}
	}
	return best
}

// margin is what is added to a window of w (quota q) between a send and
// the send that reuses its slot: twice the round trip's variation plus
// twice that of how late sends leave after their slots, or the recent peak
// deviation of the round trip (up to w/50) if larger, at least startMargin
// (w/50) until 2q answers are in, and w/1000 and sendTail (up to w/50)
// always, at most w/10, plus what 429s added. The peak is capped because a late send
// costs one refused request (a slip, see observe), and a margin of w/50
// already costs 2% of the limit for as long as it is held.
func (p *pacer) margin(w time.Duration, q int64) time.Duration {
	m := max(2*p.rttvar+2*p.latevar, min(p.peak, w/50))
	m = max(m, p.startMargin(w, q))
	m = min(max(m, w/1000, min(sendTail, w/50), time.Microsecond), w/10)
	return m + min(p.bump, w/10)
}

// startMargin covers what is not measured yet at first contact (new
// connections, a cold store): w/50 until 2q answers are in.
func (p *pacer) startMargin(w time.Duration, q int64) time.Duration {
	if int64(p.rttSamples) >= 2*q {
		return 0
	}
	return w / 50
}

// woke records that a sender meant to leave at slot left at now.
func (p *pacer) woke(slot, now time.Time) {
	d := max(now.Sub(slot), 0)
	p.latevar = (3*p.latevar + absDur(p.late-d)) / 4
	p.late = (7*p.late + d) / 8
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// observe learns from one answer.
func (p *pacer) observe(a answer) {
	if a.cached {
		return
	}
	rtt := max(a.at.Sub(a.sent), 0)
	if p.rttSamples == 0 {
		p.srtt = rtt
	} else {
		dev := absDur(p.srtt - rtt)
		p.rttvar = (3*p.rttvar + dev) / 4
		p.srtt = (7*p.srtt + rtt) / 8
		// The peak: after first contact (startMargin covers new
		// connections and a cold store until 2·Quota answers are in).
		if q := max(p.pace().Quota, 1); int64(p.rttSamples) >= 2*q {
			p.peak -= p.peak / time.Duration(peakDecay*q)
			p.peak = max(p.peak, dev)
		}
	}
	p.rttSamples++

	if len(a.policies) > 0 {
		p.policies = append(p.policies[:0], a.policies...)
	}
	if a.legacyLimit > 0 && a.legacyReset > 0 {
		w := time.Duration(ceilSeconds(a.legacyReset)) * time.Second
		p.legacy.Quota = a.legacyLimit
		p.legacy.Window = max(p.legacy.Window, w)
	}
	limited := a.status == http.StatusTooManyRequests

	// Pauses: Retry-After always (it takes precedence); otherwise an
	// exhausted quota only while no limit is known, since at full pace
	// r=0 is the normal state and the slot of the next send is known.
	pause := a.retryAfter
	if pause < 0 && len(p.policies) == 0 && p.legacy.Window == 0 && p.told.Quota == 0 {
		for _, s := range a.statuses {
			if s.Remaining == 0 && s.HasReset {
				pause = max(pause, s.Reset)
			}
		}
		if a.legacyLeft == 0 && a.legacyReset >= 0 {
			pause = max(pause, a.legacyReset)
		}
	}
	if pause < 0 && limited {
		pause = time.Second
	}
	known := p.told.Quota > 0 || len(p.policies) > 0 || p.legacy.Window > 0
	// A 429 although paced to a known limit is first taken for a slip (a
	// send that reached the upstream late, so that the next one reusing
	// its slot arrived a little early): the margin widens and the refused
	// request waits its Retry-After, but the key is not paused, since the
	// pace already keeps the next sends a window from the earlier ones.
	// Refusals of sends that were already on their way share the slip; a
	// 429 of a send that left after it, within one window, is not a slip,
	// and pauses the key for the Retry-After as any other.
	slip, again := false, false
	if limited && known {
		pc := p.pace()
		switch {
		case !p.slipAt.IsZero() && a.sent.Before(p.slipAt):
			slip, again = true, true
		case p.slipAt.IsZero() || a.sent.Sub(p.slipAt) > pc.Window+pc.Margin:
			slip = true
		}
		p.slipAt = a.at
	}
	if slip {
		pause = -1
	}
	if pause > 0 {
		if p.maxPause > 0 {
			pause = min(pause, p.maxPause)
		}
		if until := a.at.Add(pause); until.After(p.paused) {
			p.paused = until
		}
	}

	estimated := !known && p.learn.on && !p.learn.slowStart
	switch {
	case again:
		// Refused on its way when the slip was met: counted there.
	case limited && (known || estimated && !p.learn.probing && !a.sent.Before(p.learn.ignoreBefore)):
		// A 429 although paced to a known or estimated limit (not a
		// probe above it, nor a send that left before the estimate):
		// widen the margin.
		w := p.pace().Window
		p.bump = min(max(2*p.bump, w/100), w/10)
		p.calm = 0
	case known || estimated:
		p.calm++
		if q := p.pace().Quota; p.bump > 0 && p.calm >= bumpDecay*q {
			p.bump /= 2
			p.calm = 0
		}
	case !p.learn.on && !limited && a.status < 500:
		// An answer that gives no limit (no fields, or only RateLimit
		// without a policy): learn it from the 429s, in slow start.
		p.learn.start(a)
		return
	}
	if !known && !limited && a.status < 400 {
		p.learn.ok(a)
	}
}
