package httplimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

func TestHeadersExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimiter(t, newStore(), weir.PerSecond(10).WithName("burst"), weir.PerDay(1000).WithName("daily"))
		h := mustNew(t, Policy{Limiter: lim}, WithHeaders(HeadersDraft|HeadersLegacy)).Handler(okHandler)

		rec := do(h, "GET", "/", "192.0.2.10:1", nil)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		hdr := rec.Result().Header
		if got, want := hdr.Get("RateLimit-Policy"), `"burst";q=10;w=1, "daily";q=1000;w=86400`; got != want {
			t.Errorf("RateLimit-Policy = %s, want %s", got, want)
		}
		// burst: 9 left, full again in 100ms; daily: 999 left, full in 86.4s.
		if got, want := hdr.Get("RateLimit"), `"burst";r=9;t=1, "daily";r=999;t=87`; got != want {
			t.Errorf("RateLimit = %s, want %s", got, want)
		}
		ps, err := ParsePolicies(hdr)
		wantPs := []QuotaPolicy{{Name: "burst", Quota: 10, Window: time.Second}, {Name: "daily", Quota: 1000, Window: 24 * time.Hour}}
		if err != nil || !reflect.DeepEqual(ps, wantPs) {
			t.Errorf("parsed policies %+v, %v; want %+v", ps, err, wantPs)
		}
		ss, err := ParseRateLimit(hdr)
		wantSs := []QuotaStatus{{Name: "burst", Remaining: 9, Reset: time.Second, HasReset: true}, {Name: "daily", Remaining: 999, Reset: 87 * time.Second, HasReset: true}}
		if err != nil || !reflect.DeepEqual(ss, wantSs) {
			t.Errorf("parsed statuses %+v, %v; want %+v", ss, err, wantSs)
		}
		// Legacy fields describe the deciding limit (fewest left), Reset in Unix seconds.
		wantReset := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
		if l, r, x := hdr.Get("X-RateLimit-Limit"), hdr.Get("X-RateLimit-Remaining"), hdr.Get("X-RateLimit-Reset"); l != "10" || r != "9" || x != wantReset {
			t.Errorf("legacy = %s/%s/%s, want 10/9/%s", l, r, x, wantReset)
		}
		if hdr.Get("Retry-After") != "" {
			t.Errorf("Retry-After on a 200: %q", hdr.Get("Retry-After"))
		}

		for range 9 {
			do(h, "GET", "/", "192.0.2.10:1", nil)
		}
		rec = do(h, "GET", "/", "192.0.2.10:1", nil)
		hdr = rec.Result().Header
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("11th request: status %d, want 429", rec.Code)
		}
		if got := hdr.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
		if got, want := hdr.Get("RateLimit"), `"burst";r=0;t=1`; got != want {
			t.Errorf("RateLimit on 429 = %s, want %s", got, want)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q", ct)
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		want := Problem{Type: ProblemQuotaExceeded, Title: "Too Many Requests", Status: 429, Violated: []string{"burst"}}
		p.Detail = ""
		if !reflect.DeepEqual(p, want) {
			t.Errorf("body = %+v, want %+v", p, want)
		}

		// Legacy delta mode, draft fields off.
		h2 := mustNew(t, Policy{Limiter: lim, Scope: "other:"}, WithHeaders(HeadersLegacyDelta)).Handler(okHandler)
		hdr = do(h2, "GET", "/", "192.0.2.10:1", nil).Result().Header
		if hdr.Get("RateLimit") != "" || hdr.Get("RateLimit-Policy") != "" || hdr.Get("X-RateLimit-Reset") != "1" {
			t.Errorf("legacy delta headers: %v", hdr)
		}
		h3 := mustNew(t, Policy{Limiter: lim, Scope: "third:"}, WithHeaders(HeadersOff)).Handler(okHandler)
		hdr = do(h3, "GET", "/", "192.0.2.10:1", nil).Result().Header
		for k := range hdr {
			if strings.Contains(strings.ToLower(k), "ratelimit") {
				t.Errorf("HeadersOff wrote %s", k)
			}
		}
	})
}

// R25: Retry-After is a whole number of seconds, at least the true wait,
// and a retry at that time is admitted; RateLimit's r never exceeds what is
// really left.
func TestRetryAfterHonoured(t *testing.T) {
	configs := []struct {
		name   string
		limits []weir.Option
	}{
		{"token-bucket", []weir.Option{weir.PerSecond(5).WithName("a")}},
		{"token-bucket-burst", []weir.Option{weir.Per(3, 2*time.Second).WithBurst(20).WithName("a")}},
		{"fixed-window", []weir.Option{weir.Per(10, 3*time.Second).WithAlgorithm(weir.FixedWindow).WithName("a")}},
		{"sliding-window", []weir.Option{weir.Per(10, 3*time.Second).WithAlgorithm(weir.SlidingWindowCounter).WithName("a")}},
		{"sliding-log", []weir.Option{weir.Per(10, 3*time.Second).WithAlgorithm(weir.SlidingWindowLog).WithName("a")}},
		{"sub-second", []weir.Option{weir.Per(7, 700*time.Millisecond).WithName("a")}},
		{"two-limits", []weir.Option{weir.PerSecond(5).WithName("a"), weir.PerMinute(40).WithName("b")}},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := mustLimiter(t, newStore(), cfg.limits...)
				var singles []*weir.Limiter
				for _, l := range lim.Limits() {
					singles = append(singles, mustLimiter(t, lim.Store(), l))
				}
				var trueWait time.Duration
				onLimited := func(w http.ResponseWriter, r *http.Request, res *Result) {
					trueWait = res.Decision.RetryAfter
					w.WriteHeader(http.StatusTooManyRequests)
				}
				h := mustNew(t, Policy{Limiter: lim}, WithOnLimited(onLimited)).Handler(okHandler)
				rng := rand.New(rand.NewPCG(1, uint64(len(cfg.name))))
				retries, admitted := 0, 0
				for retries < 1000 {
					time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
					burst := 1 + rng.IntN(8)
					for range burst {
						rec := do(h, "GET", "/", "192.0.2.7:1", nil)
						if rec.Code == http.StatusOK {
							checkRemaining(t, singles, rec)
							continue
						}
						ra, err := strconv.ParseInt(rec.Result().Header.Get("Retry-After"), 10, 64)
						if err != nil || ra < 1 || time.Duration(ra)*time.Second < trueWait {
							t.Fatalf("Retry-After %q for a true wait of %v", rec.Result().Header.Get("Retry-After"), trueWait)
						}
						time.Sleep(time.Duration(ra) * time.Second)
						retries++
						if do(h, "GET", "/", "192.0.2.7:1", nil).Code == http.StatusOK {
							admitted++
						}
						break
					}
				}
				if float64(admitted) < 0.999*float64(retries) {
					t.Fatalf("%d of %d retries at Retry-After admitted, want >= 99.9%%", admitted, retries)
				}
				t.Logf("%d of %d retries at Retry-After admitted", admitted, retries)
			})
		})
	}
}

// checkRemaining verifies that the RateLimit r of each limit does not
// exceed what the store says is left (time stands still in the bubble).
func checkRemaining(t *testing.T, singles []*weir.Limiter, rec *httptest.ResponseRecorder) {
	t.Helper()
	ss, err := ParseRateLimit(rec.Result().Header)
	if err != nil {
		t.Fatal(err)
	}
	for i, single := range singles {
		l := single.Limits()[0]
		d, err := single.Peek(t.Context(), "ip:192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		if ss[i].Name != l.Name || ss[i].Remaining > d.Remaining {
			t.Fatalf("RateLimit item %+v, but %d left under %q", ss[i], d.Remaining, l.Name)
		}
	}
}

func TestStoreFailure(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		failOpen bool
		status   int
		typ      string
	}{
		{"unavailable", fmt.Errorf("redis: connection refused: %w", weir.ErrUnavailable), false, 503, ProblemReducedCapacity},
		{"invalid", &weir.FieldError{Field: "key", Reason: "too long"}, false, 500, "about:blank"},
		{"other", errors.New("boom"), false, 500, "about:blank"},
		{"store fails open", fmt.Errorf("down: %w", weir.ErrUnavailable), true, 200, ""},
		{"invalid never fails open", &weir.FieldError{Field: "key", Reason: "too long"}, true, 500, "about:blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &faultStore{Store: newStore(), failOpen: tt.failOpen}
			fs.fail(tt.err)
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
			h := mustNew(t, Policy{Limiter: mustLimiter(t, fs, weir.PerSecond(1))}).Handler(next)
			rec := do(h, "GET", "/", "192.0.2.1:1", nil)
			if rec.Code != tt.status || called != (tt.status == 200) {
				t.Fatalf("status %d, handler called %v; want %d", rec.Code, called, tt.status)
			}
			if tt.status == 200 {
				if rec.Header().Get("RateLimit") != "" {
					t.Errorf("fail-open answer carries RateLimit %q", rec.Header().Get("RateLimit"))
				}
				return
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Type != tt.typ || p.Status != tt.status {
				t.Fatalf("body %s (%v), want type %s", rec.Body, err, tt.typ)
			}
			if strings.Contains(rec.Body.String(), "redis") || strings.Contains(rec.Body.String(), "boom") {
				t.Errorf("body leaks the internal error: %s", rec.Body)
			}
		})
	}
	// A store whose own policy fails closed gets 503 too.
	closed := storeFunc(func(req *weir.Request) (weir.Decision, error) {
		return weir.Decision{Source: weir.SourceFailClosed}, nil
	})
	h := mustNew(t, Policy{Limiter: mustLimiter(t, closed, weir.PerSecond(1))}).Handler(okHandler)
	if rec := do(h, "GET", "/", "192.0.2.1:1", nil); rec.Code != 503 {
		t.Fatalf("fail-closed decision: status %d, want 503", rec.Code)
	}
}

type storeFunc func(req *weir.Request) (weir.Decision, error)

func (f storeFunc) Take(_ context.Context, req *weir.Request) (weir.Decision, error) { return f(req) }
func (f storeFunc) Refund(context.Context, *weir.Request) error                      { return nil }
func (f storeFunc) Reset(context.Context, []weir.Check) error                        { return nil }

// S11: bad input is answered 4xx and never reaches the store, so it can
// never be admitted by a store that fails open.
func TestFailOpenNotTriggeredByInput(t *testing.T) {
	fs := &faultStore{Store: newStore(), failOpen: true}
	lim := mustLimiter(t, fs, weir.PerSecond(1000))
	ipKey, _ := ClientIP(IPConfig{TrustedProxies: []string{"10.0.0.0/8"}})
	admitted := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { admitted++ })
	h := mustNew(t,
		Policy{Limiter: lim, Key: Header("X-API-Key"), Match: func(r *http.Request) bool { return r.URL.Path == "/api" }},
		Policy{Limiter: lim, Key: BasicAuthUser(), Match: func(r *http.Request) bool { return r.URL.Path == "/user" }},
		Policy{Limiter: lim, Key: ipKey, Match: func(r *http.Request) bool { return r.URL.Path == "/ip" }},
	).Handler(next)
	rng := rand.New(rand.NewPCG(7, 7))
	huge := strings.Repeat("k", 64<<10)
	codes := map[int]int{}
	for i := range 10_000 {
		var rec *httptest.ResponseRecorder
		switch i % 6 {
		case 0:
			rec = do(h, "GET", "/api", "192.0.2.1:1", nil) // no key
		case 1:
			key := huge[:257+rng.IntN(len(huge)-257)]
			if i == 1 {
				key = strings.Repeat("k", 1<<20) // one 1 MiB key
			}
			rec = do(h, "GET", "/api", "192.0.2.1:1", http.Header{"X-Api-Key": {key}})
		case 2:
			rec = do(h, "GET", "/user", "192.0.2.1:1", http.Header{"Authorization": {"Basic !!notbase64"}})
		case 3:
			rec = do(h, "GET", "/ip", "not-an-address", nil)
		case 4:
			rec = do(h, "GET", "/ip", "10.0.0.1:1", http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.1, junk%d", i)}})
		case 5:
			rec = do(h, "GET", "/api", "192.0.2.1:1", http.Header{"X-Api-Key": {" \t "}})
		}
		codes[rec.Code]++
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("malformed request %d: status %d", i, rec.Code)
		}
	}
	if admitted != 0 || fs.takes() != 0 || fs.sources[weir.SourceFailOpen].Load() != 0 {
		t.Fatalf("malformed requests: %d admitted, %d store calls, %d fail-open decisions; want 0", admitted, fs.takes(), fs.sources[weir.SourceFailOpen].Load())
	}
	t.Logf("status codes for 10^4 malformed requests: %v", codes)
	// With the backend down, a well-formed request fails open, and it shows.
	fs.fail(weir.ErrUnavailable)
	do(h, "GET", "/api", "192.0.2.1:1", http.Header{"X-Api-Key": {"k1"}})
	if admitted != 1 || fs.sources[weir.SourceFailOpen].Load() != 1 {
		t.Fatalf("backend down: admitted %d, fail-open decisions %d; want 1, 1", admitted, fs.sources[weir.SourceFailOpen].Load())
	}
}

func (f *faultStore) takes() int64 {
	var n int64
	for i := range f.sources {
		n += f.sources[i].Load()
	}
	return n
}

func TestUnkeyed(t *testing.T) {
	store := newStore()
	lim := mustLimiter(t, store, weir.PerSecond(10))
	h := mustNew(t, Policy{Limiter: lim, Key: BasicAuthUser()}).Handler(okHandler)
	rec := do(h, "GET", "/", "192.0.2.1:1", nil)
	if rec.Code != 401 || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("no credentials: %d %v", rec.Code, rec.Header())
	}
	h = mustNew(t, Policy{Limiter: lim, Key: Header("X-API-Key")}, WithMaxKeyLength(20)).Handler(okHandler)
	if rec := do(h, "GET", "/", "192.0.2.1:1", nil); rec.Code != 400 {
		t.Fatalf("no API key: %d", rec.Code)
	}
	if rec := do(h, "GET", "/", "192.0.2.1:1", http.Header{"X-Api-Key": {"0123456789abcdef"}}); rec.Code != 400 {
		t.Fatalf("key of 26 bytes with a cap of 20: %d", rec.Code)
	}
	if rec := do(h, "GET", "/", "192.0.2.1:1", http.Header{"X-Api-Key": {"0123456789"}}); rec.Code != 200 {
		t.Fatalf("short key: %d", rec.Code)
	}
	var gotErr error
	h = mustNew(t, Policy{Limiter: lim, Key: Header("X-API-Key")}, WithOnUnkeyed(func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(http.StatusForbidden)
	})).Handler(okHandler)
	if rec := do(h, "GET", "/", "192.0.2.1:1", nil); rec.Code != 403 || !errors.Is(gotErr, ErrNoKey) {
		t.Fatalf("custom unkeyed: %d, %v", rec.Code, gotErr)
	}
	// A key function failing for another reason is an error, not unkeyed.
	h = mustNew(t, Policy{Limiter: lim, Key: func(*http.Request) (string, error) { return "", errors.New("db down") }}).Handler(okHandler)
	if rec := do(h, "GET", "/", "192.0.2.1:1", nil); rec.Code != 500 {
		t.Fatalf("key function error: %d, want 500", rec.Code)
	}
}

func TestPoliciesByRouteAndStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s1, s2 := newStore(), newStore()
		reads := mustLimiter(t, s1, weir.PerMinute(3).WithName("reads"))
		writes := mustLimiter(t, s1, weir.PerMinute(1).WithName("writes"))
		global := mustLimiter(t, s2, weir.PerMinute(4).WithName("global"))
		var limitedBy []string
		m := mustNew(t,
			Policy{Limiter: reads, Match: Methods("GET", "HEAD")},
			Policy{Limiter: writes, Match: Methods("POST"), Scope: "w:"},
			Policy{Limiter: global, Match: func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/g") }},
			WithOnLimited(func(w http.ResponseWriter, r *http.Request, res *Result) {
				limitedBy = res.Violated()
				w.WriteHeader(http.StatusTeapot)
			}),
		)
		h := m.Handler(okHandler)
		ip := "192.0.2.50:1"
		if c := do(h, "POST", "/", ip, nil).Code; c != 200 {
			t.Fatalf("first POST: %d", c)
		}
		if c := do(h, "POST", "/", ip, nil).Code; c != http.StatusTeapot || !reflect.DeepEqual(limitedBy, []string{"writes"}) {
			t.Fatalf("second POST: %d by %v", c, limitedBy)
		}
		if c := do(h, "DELETE", "/", ip, nil).Code; c != 200 {
			t.Fatalf("DELETE matches no policy: %d", c)
		}
		// GET /g takes from reads (store 1) and global (store 2).
		for i := range 3 {
			rec := do(h, "GET", "/g", ip, nil)
			if rec.Code != 200 {
				t.Fatalf("GET /g %d: %d", i, rec.Code)
			}
			if i == 0 {
				if got, want := rec.Header().Get("RateLimit-Policy"), `"reads";q=3;w=60, "global";q=4;w=60`; got != want {
					t.Errorf("RateLimit-Policy %s, want %s", got, want)
				}
			}
		}
		// reads is exhausted: the 4th GET /g is denied by store 1, and the
		// unit taken from global (store 2) is given back.
		if c := do(h, "GET", "/g", ip, nil).Code; c != http.StatusTeapot {
			t.Fatalf("4th GET /g: %d", c)
		}
		if c := do(h, "POST", "/g", ip, nil).Code; c != http.StatusTeapot || !reflect.DeepEqual(limitedBy, []string{"writes"}) {
			t.Fatalf("POST /g: %d by %v", c, limitedBy)
		}
		d, _ := global.Peek(t.Context(), "ip:192.0.2.50")
		if d.Remaining != 1 {
			t.Fatalf("global has %d left, want 1 (3 admitted, the denied requests refunded)", d.Remaining)
		}
	})
}

func TestConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimiter(t, newStore(), weir.Concurrent(2, time.Minute).WithName("inflight"))
		release := make(chan struct{})
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/panic" {
				panic(http.ErrAbortHandler)
			}
			<-release
		})
		h := mustNew(t, Policy{Limiter: lim}).Handler(next)
		var wg sync.WaitGroup
		codes := make(chan int, 2)
		for range 2 {
			wg.Go(func() { codes <- do(h, "GET", "/", "192.0.2.9:1", nil).Code })
		}
		synctest.Wait()
		rec := do(h, "GET", "/", "192.0.2.9:1", nil)
		if rec.Code != 429 {
			t.Fatalf("third concurrent request: %d, want 429", rec.Code)
		}
		if got := rec.Header().Get("RateLimit-Policy"); got != `"inflight";q=2;qu="concurrent-requests"` {
			t.Errorf("RateLimit-Policy = %s", got)
		}
		if got := rec.Header().Get("RateLimit"); got != `"inflight";r=0` {
			t.Errorf("RateLimit = %s", got)
		}
		close(release)
		wg.Wait()
		if a, b := <-codes, <-codes; a != 200 || b != 200 {
			t.Fatalf("held requests: %d %d", a, b)
		}
		// A panicking handler releases its unit too.
		for range 3 {
			func() {
				defer func() { _ = recover() }()
				do(h, "GET", "/panic", "192.0.2.9:1", nil)
			}()
		}
		if c := do(h, "GET", "/", "192.0.2.9:1", nil).Code; c != 200 {
			t.Fatalf("after releases: %d", c)
		}
	})
}

func TestNewErrors(t *testing.T) {
	lim := mustLimiter(t, newStore(), weir.PerSecond(1))
	bad := mustLimiter(t, newStore(), weir.PerSecond(1).WithName("naïve"))
	tests := []struct {
		opts  []Option
		field string
	}{
		{nil, "policies"},
		{[]Option{Policy{}}, "policies[0].Limiter"},
		{[]Option{Policy{Limiter: lim}, Policy{Limiter: bad}}, "policies[1].limits[0].Name"},
		{[]Option{Policy{Limiter: lim}, WithMaxKeyLength(0)}, "MaxKeyLength"},
		{[]Option{Policy{Limiter: lim}, WithHeaders(HeaderMode(8))}, "HeaderMode"},
	}
	for _, tt := range tests {
		_, err := New(tt.opts...)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("New(%v) error = %v, want field %s", tt.opts, err, tt.field)
		}
	}
}
