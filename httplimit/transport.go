package httplimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// Transport is an http.RoundTripper that keeps a client within an
// upstream's rate limit and fills it: it sends each request when the
// upstream has a slot for it, learnt from what the upstream says or told by
// the caller, and counts its waits apart from the request's own time.
//
// # Pacing
//
// Per key (the request's host by default), requests leave evenly spaced:
// Quota of them in every Window+Margin, each one at least Window+Margin
// after the send whose slot it reuses, the way an exact sliding log of the
// upstream counts them. The sends are timed on a token bucket of burst 1
// kept in Store, so transports of several processes sharing a store (Redis,
// SQLite) take turns on one timeline. The limit comes from, slowest first:
//
//   - Limit, when the caller knows the upstream's published limit
//     (weir.PerSecond(4), weir.PerMinute(10)): only its Quota and Period
//     count, and pacing starts with the first request;
//   - RateLimit-Policy (draft-11 "name";q=4;w=1, or draft-07 4;w=1): the
//     slowest request policy advertised;
//   - X-RateLimit-Limit, with the longest X-RateLimit-Reset seen as window;
//   - nothing: with no limit known, the transport sends one request at a
//     time (a probe) until an answer arrives, so first contact is not a
//     burst of every waiter. An answer that names no limit starts slow
//     start, evenly spaced sends at a pace that grows with the answers (of
//     every transport on Store) and is held per round trip, as TCP's is;
//     the first 429 ends it, and the requests the upstream admitted in the
//     window its Retry-After names (counted in Store) become the limit,
//     then paced as if advertised and probed upward (Source "429s"; see
//     learn.go and docs/http.md).
//
// What a transport learnt, it posts in Store when the store keeps notes
// ([weir.Noter]: memstore, redisstore, sqlitestore), and a transport of
// another process on the store paces to it from its first request.
//
// Margin (see [Pace]) covers the measured variation of the round trip and
// of the wake-up of a waiting sender, and the recent peak deviation of the
// round trip (up to Window/50), at least Window/1000 and 5 ms (but not
// above Window/50), at most Window/10,
// and grows after a 429.
//
// Retry-After on a 429 or 503 pauses the key for that long, but for a 429
// met while paced to a known limit: that is first taken for a slip (one
// send reached the upstream late), which widens the margin and does not
// pause the key; the refused request waits its own Retry-After. A second
// 429, of a send that left after the slip and within a window of it,
// pauses the key. While no limit
// is known, RateLimit with r=0 pauses for its t and X-RateLimit-Remaining: 0
// until X-RateLimit-Reset; once a limit is known they are the normal state
// of a client at full pace and are not pauses. Responses with an Age above
// zero come from a cache and teach nothing.
//
// # Waiting is not sending
//
// RoundTrip waits for the request's turn before sending. Timeout, unlike
// http.Client.Timeout, starts at the send: a request that waited in line
// for a minute still has its whole Timeout. A caller that wants the wait
// and the send apart calls [Transport.Wait] first and gives RoundTrip the
// request it returns, which is sent at once; [Pool] does this.
//
// A 429 is a response, not an error: RoundTrip returns it unless Retries
// allows another attempt. Transport never modifies the request; retries
// send clones. It closes the request body on every path, including errors.
// It is safe for concurrent use; its zero value learns everything.
type Transport struct {
	// Base sends the requests. nil means http.DefaultTransport.
	Base http.RoundTripper
	// Limit is the upstream's limit, if the caller knows it: Quota
	// requests per Period. Its Burst and Algorithm are ignored (the
	// transport assumes an exact sliding log, the strictest). The zero
	// Limit means learn it from the upstream.
	Limit weir.Limit
	// Store keeps the timeline of sends per key and, if it is a
	// [weir.Noter], the limit learnt of each key. Transports of several
	// processes that share a store (and a Key) pace together and share
	// what they learnt. nil means a memory store private to this
	// transport.
	Store weir.Store
	// Key names the upstream a request counts against. nil means the
	// request's host (URL.Host).
	Key func(*http.Request) string
	// Timeout, when positive, is each attempt's deadline, counted from
	// its send and covering the response body.
	Timeout time.Duration
	// Retries is how many times a request that got 429 or 503 is sent
	// again, after its Retry-After (or 1s, 2s, 4s… without one) and its
	// next turn. Only idempotent requests are retried (GET, HEAD, OPTIONS,
	// TRACE, PUT, DELETE, or any request with an Idempotency-Key header)
	// whose body can be replayed (none, or GetBody set). 0, the default,
	// never retries.
	Retries int
	// MaxRetryWait caps the wait before a retry: when the server asks for
	// longer, its response is returned instead. 0 means one minute.
	MaxRetryWait time.Duration
	// MaxPause caps a pause learnt from a response. 0 means ten minutes.
	MaxPause time.Duration
	// Budget, when set, is a second limit the transport keeps per key, in
	// units whose cost is known only from the response (LLM tokens): each
	// request takes an estimate before its turn and is settled to its
	// actual cost from the response (see [Budget]). nil means none.
	Budget *Budget

	initOnce sync.Once
	initErr  error
	store    weir.Store
	budget   *budget

	mu   sync.Mutex
	keys map[string]*keyState
}

// keyState is what the transport knows about one key.
type keyState struct {
	p pacer // guarded by Transport.mu
	// line is the head of the line: the one waiter that holds it asks the
	// store for a slot; the others wait their turn in process.
	line chan struct{}
	// probe is closed when the answer to the probe in flight is in; nil
	// when no probe is in flight. Guarded by Transport.mu.
	probe   chan struct{}
	probeAt time.Time // when the latest probe left
	// lastSlot is the latest slot this process took (local clock), at a
	// pace of lastInterval. Used only by the holder of line.
	lastSlot     time.Time
	lastInterval time.Duration
	// ahead holds a unit per sender that holds a slot or waits in line:
	// at most pipeline.
	ahead chan struct{}
	// lim paces; glim is the guard (Pace.guard) or the probes' log. Both
	// are remade when the limit changes and used only by the holder of
	// line.
	lim, glim *weir.Limiter
	// olim is the log of admitted answers (learn.go); guarded by
	// Transport.mu, used outside it.
	olim *weir.Limiter
	// posted and postedAt are the note last posted (share.go), guarded
	// by Transport.mu; noteRead is when the note was last read, used only
	// by the holder of line.
	posted   sharedLimit
	postedAt time.Time
	noteRead time.Time
	lastSent time.Time // the latest send, probe or paced; guarded by Transport.mu
	seen     time.Time // last use, for pruning; guarded by Transport.mu
}

const maxHosts = 4096

// probeWait is how long the next request waits for the answer to a probe
// before going as another probe: a probe that hangs holds back the others
// for at most this long, one more at a time.
const probeWait = 2 * time.Second

func (t *Transport) init() error {
	t.initOnce.Do(func() {
		if t.Limit != (weir.Limit{}) {
			l := t.Limit
			switch {
			case l.Algorithm == weir.Concurrency:
				t.initErr = &weir.FieldError{Field: "Transport.Limit", Reason: "a concurrency limit is not a rate"}
			case l.Quota <= 0 || l.Period <= 0:
				t.initErr = &weir.FieldError{Field: "Transport.Limit", Reason: fmt.Sprintf("needs a positive Quota and Period (got %d per %v)", l.Quota, l.Period)}
			default:
				if err := l.Validate(); err != nil {
					t.initErr = &weir.FieldError{Field: "Transport.Limit", Reason: err.Error()}
				}
			}
		}
		switch {
		case t.Retries < 0:
			t.initErr = &weir.FieldError{Field: "Transport.Retries", Reason: fmt.Sprintf("must not be negative (got %d)", t.Retries)}
		case t.Timeout < 0:
			t.initErr = &weir.FieldError{Field: "Transport.Timeout", Reason: fmt.Sprintf("must not be negative (got %v)", t.Timeout)}
		}
		t.store = t.Store
		if t.store == nil {
			t.store = memstore.New()
		}
		if t.Budget != nil && t.initErr == nil {
			t.budget, t.initErr = newBudget(t.Budget, t.store)
		}
	})
	return t.initErr
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) key(r *http.Request) string {
	if t.Key != nil {
		return t.Key(r)
	}
	if r.URL != nil {
		return r.URL.Host
	}
	return r.Host
}

// maxPause is MaxPause, or its default of ten minutes.
func (t *Transport) maxPause() time.Duration {
	if t.MaxPause <= 0 {
		return 10 * time.Minute
	}
	return t.MaxPause
}

// state returns the state of key, made on first use.
func (t *Transport) state(key string, now time.Time) *keyState {
	t.mu.Lock()
	defer t.mu.Unlock()
	ks := t.keys[key]
	if ks == nil {
		t.prune(now)
		ks = &keyState{line: make(chan struct{}, 1), ahead: make(chan struct{}, pipeline)}
		ks.p.maxPause = t.maxPause()
		if t.Limit.Quota > 0 {
			ks.p.told = QuotaPolicy{Quota: t.Limit.Quota, Window: t.Limit.Period}
		}
		if t.keys == nil {
			t.keys = map[string]*keyState{}
		}
		t.keys[key] = ks
	}
	ks.seen = now
	return ks
}

// prune drops idle keys when the map is full.
func (t *Transport) prune(now time.Time) {
	if len(t.keys) < maxHosts {
		return
	}
	for k, ks := range t.keys {
		if now.Sub(ks.seen) > time.Minute && !ks.p.paused.After(now) && ks.probe == nil && len(ks.line) == 0 {
			delete(t.keys, k)
		}
	}
}

// Pace returns what the transport paces key's requests to now (a key as
// Key returns it: by default the host).
func (t *Transport) Pace(key string) Pace {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ks := t.keys[key]; ks != nil {
		return ks.p.pace()
	}
	if t.Limit.Quota > 0 && t.Limit.Period > 0 {
		p := pacer{told: QuotaPolicy{Quota: t.Limit.Quota, Window: t.Limit.Period}}
		return p.pace()
	}
	return Pace{}
}

// turnKey is the context key of a turn taken by Wait.
type turnKey struct{}

// turn is a send slot taken by Wait, used by the first RoundTrip of its
// key that carries it.
type turn struct {
	key    string
	used   atomic.Bool
	done   func()  // ends the probe, if the turn is one
	charge *charge // the Budget's estimate taken, or nil
}

// Wait blocks until req may be sent and returns req with a context that
// carries the turn: RoundTrip sends that request at once, so its Timeout
// (or the caller's deadline, set after Wait) spends nothing on the wait.
// The turn is for one send; if the caller gives up, it lapses. Wait
// returns ctx's error if req's context ends first, or an error from the
// store; it does not close the request body.
func (t *Transport) Wait(req *http.Request) (*http.Request, error) {
	if err := t.init(); err != nil {
		return nil, err
	}
	key := t.key(req)
	ch, err := t.takeBudget(req.Context(), key, req)
	if err != nil {
		return nil, err
	}
	done, err := t.waitTurn(req.Context(), t.state(key, time.Now()), key)
	if err != nil {
		_ = ch.settle(req.Context(), 0)
		return nil, err
	}
	tk := &turn{key: key, done: done, charge: ch}
	return req.WithContext(context.WithValue(req.Context(), turnKey{}, tk)), nil
}

// RoundTrip waits for req's turn (unless [Transport.Wait] gave it one),
// sends it with Base, and learns from the response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.init(); err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	key := t.key(req)
	ks := t.state(key, time.Now())
	send := req
	for attempt := 0; ; attempt++ {
		done, ch, err := t.take(ctx, ks, key, attempt == 0, send)
		if err != nil {
			closeBody(send)
			return nil, err
		}
		// Each attempt costs one unit of the pace, taken above and learnt
		// from below, and its Budget's estimate, settled from the answer.
		out, cancel := t.withTimeout(send)
		sent := time.Now()
		resp, err := t.base().RoundTrip(out)
		if err != nil {
			cancel()
			done()
			return nil, err
		}
		now := time.Now()
		t.learnFrom(ctx, ks, key, readAnswer(resp, sent, now))
		done()
		retry := attempt < t.Retries && retryable(resp.StatusCode) && replayable(req)
		var delay time.Duration
		if retry {
			var ok bool
			delay, ok = ParseRetryAfter(resp.Header, now)
			if !ok {
				delay = time.Second << min(attempt, 10)
			}
			maxWait := t.MaxRetryWait
			if maxWait <= 0 {
				maxWait = time.Minute
			}
			retry = delay <= maxWait
		}
		var next *http.Request
		if retry {
			if next, err = rewind(req); err != nil {
				retry = false // cannot replay: the response is the answer
			}
		}
		if !retry {
			ch.settleFrom(ctx, resp)
			if t.Timeout > 0 {
				resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
			}
			return resp, nil
		}
		ch.settleRetried(ctx, resp)
		drain(resp)
		cancel()
		if err := sleep(ctx, delay); err != nil {
			closeBody(next)
			return nil, err
		}
		send = next
	}
}

// take returns the turn Wait put in ctx for key, on the first attempt, or
// takes the Budget's estimate for req, if any, and waits for a turn.
func (t *Transport) take(ctx context.Context, ks *keyState, key string, first bool, req *http.Request) (func(), *charge, error) {
	if tk, ok := ctx.Value(turnKey{}).(*turn); ok && first && tk.key == key && tk.used.CompareAndSwap(false, true) {
		return tk.done, tk.charge, nil
	}
	ch, err := t.takeBudget(ctx, key, req)
	if err != nil {
		return nil, nil, err
	}
	done, err := t.waitTurn(ctx, ks, key)
	if err != nil {
		_ = ch.settle(ctx, 0)
		return nil, nil, err
	}
	return done, ch, nil
}

// takeBudget takes req's estimate from the Budget, waiting until it fits;
// nil without a Budget.
func (t *Transport) takeBudget(ctx context.Context, key string, req *http.Request) (*charge, error) {
	if t.budget == nil {
		return nil, nil
	}
	return t.budget.take(ctx, key, req)
}

// withTimeout returns r with the attempt's deadline, if Timeout is set,
// and the function that ends it.
func (t *Transport) withTimeout(r *http.Request) (*http.Request, context.CancelFunc) {
	if t.Timeout <= 0 {
		return r, func() {}
	}
	ctx, cancel := context.WithTimeout(r.Context(), t.Timeout)
	return r.WithContext(ctx), cancel
}

// cancelBody ends an attempt's deadline when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// waitTurn blocks until key may send. Waiters line up in process; the
// head of the line waits out any pause, then either reserves the next slot
// of the pace in the store, or, while no limit is known, goes as a probe
// once the previous probe is answered (or probeWait has passed). Senders
// take their slots up to horizon ahead and sleep toward them together (at
// most pipeline of them), so that one sender waking late does not push
// back the slots of the others. The
// returned done ends the probe; it must be called once the answer is
// observed (it does nothing for a paced send).
func (t *Transport) waitTurn(ctx context.Context, ks *keyState, key string) (done func(), err error) {
	for {
		if err := acquire(ctx, ks.ahead); err != nil {
			return nil, err
		}
		if err := acquire(ctx, ks.line); err != nil {
			<-ks.ahead
			return nil, err
		}
		s, err := t.nextSlot(ctx, ks, key)
		if err == nil && s.probe == nil {
			// Slots are taken at most horizon ahead: enough that a sender
			// waking late does not push back the others, few enough that a
			// pause learnt meanwhile loses little of the timeline.
			if err = sleep(ctx, time.Until(s.at)-horizon); err != nil {
				_ = s.res.Cancel(context.WithoutCancel(ctx))
			}
		}
		<-ks.line
		if err != nil || s.probe != nil {
			<-ks.ahead
			return s.probe, err
		}
		if err := sleep(ctx, time.Until(s.at)); err != nil {
			<-ks.ahead
			_ = s.res.Cancel(context.WithoutCancel(ctx))
			return nil, err
		}
		<-ks.ahead
		now := time.Now()
		t.mu.Lock()
		paused, pace, lastSent := ks.p.paused, ks.p.pace(), ks.lastSent
		t.mu.Unlock()
		if paused.After(now) {
			continue // a pause learnt while asleep: this slot is lost
		}
		if iv := pace.Interval(); iv > s.interval+s.interval/10 && now.Before(lastSent.Add(iv)) {
			continue // the pace slowed since the slot was taken: take a new one
		}
		// The guard: a short wait (less than an interval; this send's
		// earlier one left late) keeps the slot, a long one (the window is
		// crowded by other processes or probes) takes a new one.
		retake := false
		var held time.Duration // waits for the guard: other senders, not lateness
		for {
			wait, err := guard(ctx, s.guard, key)
			if err != nil {
				return nil, err
			}
			if wait == 0 {
				break
			}
			held += wait
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			if wait > s.interval {
				retake = true
				break
			}
		}
		if retake {
			continue
		}
		// How late the send leaves after its slot (the wake-up and the
		// guard's round trip) varies, and the variation is margin; a wait
		// for the guard is not lateness (the guard keeps the window).
		now = time.Now()
		t.mu.Lock()
		ks.p.woke(s.at, now.Add(-held))
		ks.lastSent = now
		t.mu.Unlock()
		return func() {}, nil
	}
}

// pipeline is how many paced senders of one key may hold a slot at once;
// horizon is how far ahead of its slot a sender takes it.
const (
	pipeline = 64
	horizon  = 200 * time.Millisecond
)

func acquire(ctx context.Context, sem chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slot is a send slot taken by nextSlot: a probe (probe ends it), or a
// reservation of the pace at the local instant at, with the guard to take
// when it comes.
type slot struct {
	probe    func()
	at       time.Time
	res      *weir.Reservation
	interval time.Duration // of the pace it was taken at
	guard    *weir.Limiter
}

// nextSlot takes the next slot of key; the caller holds ks.line.
func (t *Transport) nextSlot(ctx context.Context, ks *keyState, key string) (slot, error) {
	for {
		t.readNote(ctx, ks, key)
		now := time.Now()
		t.mu.Lock()
		paused := ks.p.paused
		pace := ks.p.pace()
		probe, probeAt := ks.probe, ks.probeAt
		t.mu.Unlock()
		if paused.After(now) {
			if err := sleep(ctx, paused.Sub(now)); err != nil {
				return slot{}, err
			}
			continue
		}
		if pace.Quota == 0 {
			if probe != nil {
				if err := waitProbe(ctx, probe, probeAt.Add(probeWait).Sub(now)); err != nil {
					return slot{}, err
				}
				t.mu.Lock()
				if ks.probe == probe {
					ks.probe = nil // answered or overdue: the next one may go
				}
				t.mu.Unlock()
				continue
			}
			g, err := t.limiter(&ks.glim, probeGuard)
			if err != nil {
				return slot{}, err
			}
			if _, err := guard(ctx, g, key); err != nil {
				return slot{}, err
			}
			ch := make(chan struct{})
			now = time.Now()
			t.mu.Lock()
			ks.probe, ks.probeAt, ks.lastSent = ch, now, now
			t.mu.Unlock()
			return slot{probe: sync.OnceFunc(func() {
				t.mu.Lock()
				if ks.probe == ch {
					ks.probe = nil
				}
				t.mu.Unlock()
				close(ch)
			})}, nil
		}
		// Probes left before the pace was known, and a pace that just
		// slowed down (a policy learnt, a margin widened) has slots taken
		// at the old one: the next slot keeps one interval of the new pace
		// from the latest slot of this process, probe or paced.
		// (At a steady pace the store's timeline alone spaces the slots.)
		var latest time.Time
		switch iv := pace.Interval(); {
		case ks.lastSlot.IsZero():
			latest = probeAt
		case iv > ks.lastInterval+ks.lastInterval/10:
			latest = ks.lastSlot
		}
		if first := latest.Add(pace.Interval()); !latest.IsZero() && first.After(now) {
			if err := sleep(ctx, first.Sub(now)); err != nil {
				return slot{}, err
			}
		}
		lim := pace.limit()
		l, err := t.limiter(&ks.lim, lim)
		if err != nil {
			return slot{}, err
		}
		var g *weir.Limiter
		if gl := pace.guard(); gl.Quota > 0 {
			if g, err = t.limiter(&ks.glim, gl); err != nil {
				return slot{}, err
			}
		}
		res, err := l.Reserve(ctx, key, 1)
		if err != nil {
			return slot{}, err
		}
		if !res.OK() { // cannot happen without a MaxWait; never send unpaced
			return slot{}, &weir.LimitError{Decision: res.Decision()}
		}
		// The slot counted from the answer's arrival, not from the call:
		// a store that answers late (Redis under load) must not make the
		// send early.
		at := time.Now().Add(res.Decision().Delay)
		ks.lastSlot, ks.lastInterval = at, pace.Interval()
		return slot{at: at, res: res, interval: pace.Interval(), guard: g}, nil
	}
}

// limiter returns *cache if it limits by l, else a new limiter for l on
// the transport's store, kept in *cache. The caller holds the key's line.
func (t *Transport) limiter(cache **weir.Limiter, l weir.Limit) (*weir.Limiter, error) {
	if c := *cache; c != nil && c.Limits()[0] == l {
		return c, nil
	}
	c, err := weir.NewLimiter(t.store, l)
	if err != nil {
		return nil, err
	}
	*cache = c
	return c, nil
}

// guard takes a unit of the guard's log g at the send. When the log is
// full (sends that woke late for their slots, or probes of other
// processes, crowd the window), it reports how long until it has room.
func guard(ctx context.Context, g *weir.Limiter, key string) (time.Duration, error) {
	if g == nil {
		return 0, nil
	}
	d, err := g.Allow(ctx, key)
	if err != nil || d.Allowed {
		return 0, err
	}
	return max(d.RetryAfter, time.Microsecond), nil
}

// waitProbe waits until probe is closed or d has passed.
func waitProbe(ctx context.Context, probe <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-probe:
	case <-tm.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable
}

// replayable reports whether req may be sent again.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// rewind returns a clone of req with a fresh body.
func rewind(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errNoReplay
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}

var errNoReplay = errors.New("httplimit: request body cannot be replayed (GetBody is nil)")

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// drain reads a little of the body, so the connection can be reused, and
// closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
