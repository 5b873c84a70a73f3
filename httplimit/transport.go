package httplimit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-go/weir"
)

// Transport is an http.RoundTripper that limits the requests it sends:
// before each request it waits for a unit of Limiter under the request's
// key (its host by default), so a client, or several processes sharing a
// store, stays within an outgoing budget.
//
// Unless NoAdapt is set, it also learns from responses, per key:
//
//   - RateLimit-Policy (draft-08+ "name";q=10;w=1, or draft-07 10;w=1):
//     requests are spaced evenly at the slowest advertised rate, so a
//     server that allows less than Limiter is respected before it says no.
//   - RateLimit (draft-08+ or the draft-07 dictionary) with r=0: sending
//     pauses for t seconds, or for one interval of the named policy if that
//     is shorter (a token bucket refills sooner than its t says).
//   - X-RateLimit-Remaining: 0 with X-RateLimit-Reset (Unix seconds or
//     seconds from now): sending pauses until the reset.
//   - Retry-After on a 429 or 503: sending pauses for that long; it takes
//     precedence over the RateLimit fields. A 429 without any hint pauses
//     for one second.
//
// After a pause, the first request goes alone and the others wait for its
// response (at most two seconds), so a server whose rate is unknown does not
// receive every waiting request at once.
//
// Responses with an Age above zero come from a cache and are not learnt
// from. A 429 is a response, not an error: RoundTrip returns it unless
// Retries allows another attempt.
//
// Transport never modifies the request; retries send clones. It closes the
// request body on every path, including errors. It is safe for concurrent
// use; its zero value (with only Base, or nothing, set) adapts without a
// budget of its own.
type Transport struct {
	// Base sends the requests. nil means http.DefaultTransport.
	Base http.RoundTripper
	// Limiter is the outgoing budget; every request waits for one unit.
	// nil means no budget: the transport only adapts.
	Limiter *weir.Limiter
	// Key names the budget a request counts against. nil means the
	// request's host (URL.Host).
	Key func(*http.Request) string
	// NoAdapt turns off learning from response fields.
	NoAdapt bool
	// Retries is how many times a request that got 429 or 503 is sent
	// again, after its Retry-After (or 1s, 2s, 4s… without one). Only
	// idempotent requests are retried (GET, HEAD, OPTIONS, TRACE, PUT,
	// DELETE, or any request with an Idempotency-Key header) whose body can
	// be replayed (none, or GetBody set). 0, the default, never retries.
	Retries int
	// MaxRetryWait caps the wait before a retry: when the server asks for
	// longer, its response is returned instead. 0 means one minute.
	MaxRetryWait time.Duration
	// MaxPause caps a pause learnt from a response. 0 means ten minutes.
	MaxPause time.Duration

	mu    sync.Mutex
	hosts map[string]*hostState
}

// hostState is what the transport learnt about one key.
type hostState struct {
	paused   time.Time     // send nothing before this
	next     time.Time     // earliest slot under the advertised rate
	interval time.Duration // spacing of the slowest advertised policy
	policies []QuotaPolicy
	seen     time.Time // last update, for pruning
	// needProbe is set by a pause: the first request after it goes alone,
	// and probe is closed when its response is in.
	needProbe bool
	probe     chan struct{}
}

const maxHosts = 4096

// probeWait is how long requests wait for the answer to the first request
// after a pause before going anyway.
const probeWait = 2 * time.Second

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

// RoundTrip waits for the budget, sends req with Base, and learns from the
// response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key := t.key(req)
	send := req
	for attempt := 0; ; attempt++ {
		done, err := t.wait(ctx, key)
		if err != nil {
			closeBody(send)
			return nil, err
		}
		resp, err := t.base().RoundTrip(send)
		if err != nil {
			done()
			return nil, err
		}
		now := time.Now()
		t.observe(key, resp, now)
		done()
		if attempt >= t.Retries || !retryable(resp.StatusCode) || !replayable(req) {
			return resp, nil
		}
		delay, ok := ParseRetryAfter(resp.Header, now)
		if !ok {
			delay = time.Second << min(attempt, 10)
		}
		maxWait := t.MaxRetryWait
		if maxWait <= 0 {
			maxWait = time.Minute
		}
		if delay > maxWait {
			return resp, nil
		}
		next, err := rewind(req)
		if err != nil {
			return resp, nil // cannot replay: the response is the answer
		}
		drain(resp)
		if err := sleep(ctx, delay); err != nil {
			closeBody(next)
			return nil, err
		}
		send = next
	}
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

// wait blocks until key may send: after any pause and at its slot under
// the advertised rate, then for a unit of the Limiter. After a pause, one
// request goes first (a probe) and the others wait for its response, so a
// server whose rate is unknown does not see a burst of every waiter. The
// caller must call done once the response has been observed.
func (t *Transport) wait(ctx context.Context, key string) (done func(), err error) {
	done = func() {}
	if err := ctx.Err(); err != nil {
		return done, err
	}
	if !t.NoAdapt {
		for {
			t.mu.Lock()
			h := t.hosts[key]
			if h == nil {
				t.mu.Unlock()
				break
			}
			now := time.Now()
			at := h.paused
			if h.next.After(at) {
				at = h.next
			}
			if !at.After(now) && h.probe == nil {
				if h.interval > 0 {
					h.next = now.Add(h.interval)
				}
				if h.needProbe {
					probe := make(chan struct{})
					h.probe, h.needProbe = probe, false
					done = sync.OnceFunc(func() {
						t.mu.Lock()
						if h.probe == probe {
							h.probe = nil
						}
						t.mu.Unlock()
						close(probe)
					})
				}
				t.mu.Unlock()
				break
			}
			probe := h.probe
			t.mu.Unlock()
			if at.After(now) {
				if err := sleep(ctx, at.Sub(now)); err != nil {
					return done, err
				}
				continue
			}
			// Wait for the probe's answer, but not forever: a probe that
			// hangs releases the others after probeWait.
			t0 := time.NewTimer(probeWait)
			select {
			case <-probe:
			case <-t0.C:
				t.mu.Lock()
				if h.probe == probe {
					h.probe = nil
				}
				t.mu.Unlock()
			case <-ctx.Done():
				t0.Stop()
				return done, ctx.Err()
			}
			t0.Stop()
		}
	}
	if t.Limiter != nil {
		if _, err := t.Limiter.Wait(ctx, key); err != nil {
			done()
			return func() {}, err
		}
	}
	return done, nil
}

// observe learns from resp's fields.
func (t *Transport) observe(key string, resp *http.Response, now time.Time) {
	if t.NoAdapt {
		return
	}
	h := resp.Header
	if age := strings.TrimSpace(h.Get("Age")); age != "" && age != "0" {
		return
	}
	policies, perr := ParsePolicies(h)
	statuses, serr := ParseRateLimit(h)
	if perr != nil {
		policies = nil
	}
	if serr != nil {
		statuses = nil
	}

	pause := time.Duration(-1)
	if retryable(resp.StatusCode) {
		if ra, ok := ParseRetryAfter(h, now); ok {
			pause = ra
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.hosts[key]
	if st == nil {
		if len(policies) == 0 && len(statuses) == 0 && pause < 0 && resp.StatusCode != http.StatusTooManyRequests && h.Get(HeaderXRateLimitLeft) == "" {
			return // nothing to learn; keep the map small
		}
		t.prune(now)
		st = &hostState{}
		if t.hosts == nil {
			t.hosts = map[string]*hostState{}
		}
		t.hosts[key] = st
	}
	st.seen = now
	if len(policies) > 0 {
		st.policies = policies
		st.interval = 0
		for _, p := range policies {
			if iv := p.interval(); iv > st.interval {
				st.interval = iv
			}
		}
	}
	if pause < 0 {
		for _, s := range statuses {
			if s.Remaining > 0 || !s.HasReset {
				continue
			}
			d := s.Reset
			if iv := st.policyInterval(s.Name); iv > 0 && iv < d {
				d = iv
			}
			pause = max(pause, d)
		}
	}
	if pause < 0 && len(statuses) == 0 {
		pause = legacyPause(h, now)
	}
	if pause < 0 && resp.StatusCode == http.StatusTooManyRequests {
		pause = time.Second
	}
	if pause > 0 {
		maxPause := t.MaxPause
		if maxPause <= 0 {
			maxPause = 10 * time.Minute
		}
		if until := now.Add(min(pause, maxPause)); until.After(st.paused) {
			st.paused = until
		}
		st.needProbe = true
	}
}

// prune drops what was learnt about idle keys when the map is full.
func (t *Transport) prune(now time.Time) {
	if len(t.hosts) < maxHosts {
		return
	}
	for k, h := range t.hosts {
		if now.Sub(h.seen) > time.Minute && !h.paused.After(now) && h.probe == nil {
			delete(t.hosts, k)
		}
	}
	if len(t.hosts) >= maxHosts { // all busy: forget one at random
		for k := range t.hosts {
			delete(t.hosts, k)
			break
		}
	}
}

// interval is the even spacing of p, or 0 if p does not describe a rate of
// requests.
func (p QuotaPolicy) interval() time.Duration {
	if p.Window <= 0 || p.Quota <= 0 || (p.Unit != "" && p.Unit != "requests" && p.Unit != "request") {
		return 0
	}
	return p.Window / time.Duration(p.Quota)
}

// policyInterval is the spacing of the named policy (or of the only one,
// for unnamed draft-07 fields).
func (h *hostState) policyInterval(name string) time.Duration {
	if len(h.policies) == 1 && (name == "" || h.policies[0].Name == "") {
		return h.policies[0].interval()
	}
	for _, p := range h.policies {
		if p.Name == name {
			return p.interval()
		}
	}
	return 0
}

// legacyPause reads X-RateLimit-Remaining: 0 and X-RateLimit-Reset, as
// Unix seconds (values above 10^9) or seconds from now; -1 if no pause.
func legacyPause(h http.Header, now time.Time) time.Duration {
	rem, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderXRateLimitLeft)), 10, 64)
	if err != nil || rem > 0 {
		return -1
	}
	v, err := strconv.ParseInt(strings.TrimSpace(h.Get(HeaderXRateLimitReset)), 10, 64)
	if err != nil || v < 0 {
		return time.Second
	}
	if v > 1e9 {
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			now = d
		}
		return max(time.Unix(v, 0).Sub(now), 0)
	}
	return time.Duration(v) * time.Second
}
