package httplimit

import (
	"context"
	"net/http"
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
	src := ks.p.pace().Source
	var w time.Duration
	var count bool
	if src == "429s" && a.status == http.StatusTooManyRequests {
		w, count = ks.p.learn.countWindow(a)
	}
	record := src == "429s" && a.status < 400 && !a.cached
	var log *weir.Limiter
	var err error
	if record || count {
		log, err = t.limiter(&ks.olim, okLog(&ks.p.learn))
	}
	t.mu.Unlock()
	if err != nil || log == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if record {
		_, _ = log.Allow(ctx, key)
		return
	}
	// The admitted answers in the last w, by the store's clock: they
	// left about a round trip before their answers, as the 429 did.
	l := log.Limits()[0]
	l.Period = w
	peek, err := weir.NewLimiter(log.Store(), l)
	if err != nil {
		return
	}
	d, err := peek.Peek(ctx, key)
	if err != nil {
		return
	}
	t.mu.Lock()
	if w2, ok := ks.p.learn.countWindow(a); ok && w2 == w {
		ks.p.learn.limited(a, w, max(l.Quota-d.Remaining, 0))
	}
	t.mu.Unlock()
}
