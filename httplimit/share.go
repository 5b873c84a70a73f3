package httplimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
)

// okName names the log of admitted answers in the store, kept while a
// key's limit is learnt from its 429s: (okName, key) counts what the
// upstream admitted, from every transport sharing the store, so that the
// first 429 says how many it admits per window.
const okName = "httplimit.ok"

// okLog is the log of admitted answers as it is kept while learning:
// slow start keeps an hour (the window is not known yet), then two
// windows.
func okLog(l *learner) weir.Limit {
	period := time.Hour
	if !l.slowStart {
		period = min(max(2*l.window, 2*time.Second), time.Hour)
	}
	return weir.Limit{Name: okName, Algorithm: weir.SlidingWindowLog, Quota: maxGuard, Period: period}
}

// learnFrom learns from answer a of key. While the key's limit is learnt
// from 429s, an admitted answer is logged in the store, and a 429 that
// teaches counts the log over the window it names.
func (t *Transport) learnFrom(ctx context.Context, ks *keyState, key string, a answer) {
	t.mu.Lock()
	ks.p.observe(a)
	l := &ks.p.learn
	learning := ks.p.pace().Source == "429s"
	var w time.Duration
	var count bool
	if learning && a.status == http.StatusTooManyRequests {
		w, count = l.countWindow(a)
	}
	record := learning && a.status < 400 && !a.cached
	probe := record && l.probeDue(a)
	steady := learning && !l.slowStart
	window, since := l.window, l.calmSince
	var log *weir.Limiter
	var err error
	if record || count {
		log, err = t.limiter(&ks.olim, okLog(l))
	}
	t.mu.Unlock()
	defer t.post(ctx, ks, key, a.at)
	if err != nil || log == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if count && steady {
		t.logLimited(ctx, key, window)
	}
	if probe {
		t.endProbe(ctx, key, ks, a, since, window)
	}
	if record {
		// In slow start the log counts the answers of every transport
		// sharing the store: they grow the one timeline of sends together.
		if d, err := log.Allow(ctx, key); err == nil && d.Allowed {
			t.mu.Lock()
			ks.p.learn.counted(log.Limits()[0].Quota - d.Remaining)
			t.mu.Unlock()
		}
		return
	}
	// The admitted answers in the last w, by the store's clock: they
	// left about a round trip before their answers, as the 429 did.
	ol := log.Limits()[0]
	ol.Period = w
	peek, err := weir.NewLimiter(log.Store(), ol)
	if err != nil {
		return
	}
	d, err := peek.Peek(ctx, key)
	if err != nil {
		return
	}
	n := max(ol.Quota-d.Remaining, 0)
	t.mu.Lock()
	first := ks.p.learn.slowStart
	taught := false
	if w2, ok := ks.p.learn.countWindow(a); ok && w2 == w {
		ks.p.learn.limited(a, w, n)
		taught = true
	}
	gen := ks.p.learn.gen
	t.mu.Unlock()
	if first && taught {
		// Count again a little later: answers admitted before the 429
		// but logged after the count (a loaded scheduler, another
		// process's round trip to the store) show up then, and put the
		// estimate in doubt.
		time.AfterFunc(w/recountAfter, func() {
			if d, err := peek.Peek(ctx, key); err == nil {
				t.mu.Lock()
				ks.p.learn.recounted(gen, ol.Quota-d.Remaining)
				t.mu.Unlock()
			}
		})
	}
}

// limitedName names the log of 429s met while paced to an estimate learnt
// from 429s: (limitedName, key) tells a transport that probes above the
// estimate whether any transport sharing the store met a 429 during the
// probe, since the 429 may come back to any of them.
const limitedName = "httplimit.limited"

// limitedLog is the log of 429s, kept two windows (at least 2 s).
func limitedLog(window time.Duration) weir.Limit {
	return weir.Limit{Name: limitedName, Algorithm: weir.SlidingWindowLog, Quota: maxGuard, Period: min(max(2*window, 2*time.Second), time.Hour)}
}

// logLimited logs a 429 of key met while paced to an estimate of window.
func (t *Transport) logLimited(ctx context.Context, key string, window time.Duration) {
	if lim, err := weir.NewLimiter(t.store, limitedLog(window)); err == nil {
		_, _ = lim.Allow(ctx, key)
	}
}

// endProbe ends the probe of key that began at since (local clock), now
// that answer a says it has lasted a window: refused if any transport on
// the store logged a 429 since, else passed. A store error decides
// nothing (the next answer asks again).
func (t *Transport) endProbe(ctx context.Context, key string, ks *keyState, a answer, since time.Time, window time.Duration) {
	l := limitedLog(window)
	l.Period = min(max(a.at.Sub(since), time.Microsecond), l.Period).Round(time.Microsecond)
	peek, err := weir.NewLimiter(t.store, l)
	if err != nil {
		return
	}
	d, err := peek.Peek(ctx, key)
	if err != nil {
		return
	}
	t.mu.Lock()
	ks.p.learn.probed(a, since, d.Remaining < l.Quota)
	t.mu.Unlock()
}

// Sharing what was learnt. A transport whose store is a [weir.Noter]
// posts the limit it learnt of a key (from RateLimit-Policy, X-RateLimit
// or 429s) as a note, and reads the note at most every noteEvery while it
// sends: a transport that knows nothing yet paces to the note at once
// instead of probing, and one learning from 429s takes a newer estimate
// (its generation is higher) from whichever process made it.
const (
	noteTTL    = 10 * time.Minute // a posted limit lasts this long unless posted again
	noteEvery  = time.Second      // how often a sending transport reads the note
	notePrefix = "httplimit.learnt:"
)

// noteName is the name of key's note.
func noteName(key string) string {
	if n := notePrefix + key; len(n) <= weir.MaxNoteName {
		return n
	}
	sum := sha256.Sum256([]byte(key))
	return notePrefix + "#" + hex.EncodeToString(sum[:])
}

// sharedLimit is a limit as posted in a note: "1 SOURCE QUOTA WINDOW GEN",
// the window in nanoseconds, GEN the learner's generation for "429s".
type sharedLimit struct {
	Source string
	Quota  int64
	Window time.Duration
	Gen    uint64
}

func (s sharedLimit) encode() []byte {
	return fmt.Appendf(nil, "1 %s %d %d %d", s.Source, s.Quota, int64(s.Window), s.Gen)
}

// decodeShared reads a note; ok is false for anything it does not
// understand (another version, a bad number), which is then ignored.
func decodeShared(b []byte) (s sharedLimit, ok bool) {
	f := strings.Fields(string(b))
	if len(f) != 5 || f[0] != "1" {
		return s, false
	}
	switch f[1] {
	case HeaderRateLimitPolicy, "X-RateLimit", "429s":
	default:
		return s, false
	}
	q, err1 := strconv.ParseInt(f[2], 10, 64)
	w, err2 := strconv.ParseInt(f[3], 10, 64)
	g, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || q <= 0 || w <= 0 || time.Duration(w) > maxPacePeriod {
		return s, false
	}
	return sharedLimit{Source: f[1], Quota: q, Window: time.Duration(w), Gen: g}, true
}

// learnt is what p would post: the limit it learnt, or Quota 0 if it was
// told, knows nothing, or is still in slow start.
func (p *pacer) learnt() sharedLimit {
	pc := p.pace()
	switch {
	case pc.Source == HeaderRateLimitPolicy || pc.Source == "X-RateLimit":
		if p.sharedSrc != "" && pc.Quota == p.shared.Quota && pc.Window == p.shared.Window && len(p.policies) == 0 && p.legacy.Quota == 0 {
			return sharedLimit{} // adopted, not learnt here
		}
		return sharedLimit{Source: pc.Source, Quota: pc.Quota, Window: pc.Window}
	case pc.Source == "429s" && p.learn.probing:
		// A probe is this transport's own: the others keep the quota
		// that passed (and, adopting it, put off their own probes).
		return sharedLimit{Source: pc.Source, Quota: p.learn.before, Window: pc.Window, Gen: p.learn.gen}
	case pc.Source == "429s" && !p.learn.slowStart:
		return sharedLimit{Source: pc.Source, Quota: pc.Quota, Window: pc.Window, Gen: p.learn.gen}
	}
	return sharedLimit{}
}

// adopt takes what another transport posted, at now.
func (p *pacer) adopt(s sharedLimit, now time.Time) {
	known := p.told.Quota > 0 || len(p.policies) > 0 || p.legacy.Window > 0
	switch {
	case known:
	case s.Source == "429s":
		if !p.learn.on || p.learn.slowStart || s.Gen > p.learn.gen {
			p.learn.adopt(s.Quota, s.Window, s.Gen, now)
		}
	case !p.learn.on:
		p.shared, p.sharedSrc = QuotaPolicy{Quota: s.Quota, Window: s.Window}, s.Source
	}
}

// post posts what ks learnt of key, if it changed since the last post or
// half the note's life has passed.
func (t *Transport) post(ctx context.Context, ks *keyState, key string, now time.Time) {
	n, ok := t.Store.(weir.Noter) // not the private default store: no one to tell
	if !ok {
		return
	}
	t.mu.Lock()
	s := ks.p.learnt()
	due := s.Quota > 0 && (s != ks.posted || now.Sub(ks.postedAt) > noteTTL/2)
	if due {
		ks.posted, ks.postedAt = s, now
	}
	t.mu.Unlock()
	if due {
		_ = n.SetNote(context.WithoutCancel(ctx), noteName(key), s.encode(), noteTTL)
	}
}

// readNote reads key's note, if noteEvery has passed since the last read,
// and adopts it. The caller holds ks.line.
func (t *Transport) readNote(ctx context.Context, ks *keyState, key string) {
	n, ok := t.Store.(weir.Noter)
	now := time.Now()
	if !ok || now.Sub(ks.noteRead) < noteEvery {
		return
	}
	ks.noteRead = now
	v, err := n.Note(ctx, noteName(key))
	if err != nil || v == nil {
		return
	}
	s, ok := decodeShared(v)
	if !ok {
		return
	}
	t.mu.Lock()
	ks.p.adopt(s, now)
	if s.Source == "429s" && ks.p.learn.gen == s.Gen {
		ks.posted = s // nothing new to post
	}
	t.mu.Unlock()
}
