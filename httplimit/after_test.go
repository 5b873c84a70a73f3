package httplimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// loginHandler answers 200 to the password "right" and 401 otherwise, and
// counts the requests it saw.
type loginHandler struct{ seen atomic.Int64 }

func (h *loginHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.seen.Add(1)
	if _, pw, _ := r.BasicAuth(); pw == "right" {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusUnauthorized)
}

func login(h http.Handler, remote, user, pw string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = remote
	r.SetBasicAuth(user, pw)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// TestCountByOutcome: a login limit of 3 failures per minute per client
// address, counting only 401 and 403 (Count: StatusIn(401, 403)). The
// promise, precisely: (1) a client is denied only once its own failed
// attempts used up its quota: successful logins never count, so a client
// that logs in correctly is never denied, however often it logs in and
// however many failures other clients had; (2) a client that failed quota
// times is denied before the handler runs (its password is not even
// tried) until time gives a unit back. A key per address (or per address
// and user) is what keeps other clients' failures from locking a user
// out; a key per user alone would let anyone lock that user out.
func TestCountByOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimiter(t, newStore(), weir.PerMinute(3).WithName("failures"))
		app := &loginHandler{}
		h := mustNew(t, Policy{Limiter: lim, Key: RemoteIP(), Scope: "login", Count: StatusIn(401, 403)}).Handler(app)
		const alice, mallory = "192.0.2.1:1", "198.51.100.7:1"
		steps := []struct {
			name         string
			remote, pw   string
			n            int
			want         int
			handlerCalls int64 // how many of the n reach the handler
			wait         time.Duration
		}{
			{"correct logins never count", alice, "right", 20, 200, 20, 0},
			{"failures up to the quota reach the handler", mallory, "guess", 3, 401, 3, 0},
			{"then denied before the handler", mallory, "guess", 2, 429, 0, 0},
			{"even with the right password", mallory, "right", 1, 429, 0, 0},
			{"others' failures never deny a correct login", alice, "right", 10, 200, 10, 0},
			{"own failures below the quota", alice, "wrong", 2, 401, 2, 0},
			{"a success in between costs nothing", alice, "right", 5, 200, 5, 0},
			{"the third failure", alice, "wrong", 1, 401, 1, 0},
			{"own failures lock out", alice, "right", 1, 429, 0, 0},
			{"a unit back after 20 s (3/min)", mallory, "right", 1, 200, 1, 20 * time.Second},
			{"and only one", mallory, "guess", 1, 401, 1, 0},
			{"spent again", mallory, "right", 1, 429, 0, 0},
		}
		for _, st := range steps {
			time.Sleep(st.wait)
			before := app.seen.Load()
			for i := range st.n {
				rec := login(h, st.remote, "user", st.pw)
				if rec.Code != st.want {
					t.Fatalf("%s: attempt %d: status %d, want %d (RateLimit %q)", st.name, i, rec.Code, st.want, rec.Header().Get("RateLimit"))
				}
			}
			if got := app.seen.Load() - before; got != st.handlerCalls {
				t.Fatalf("%s: handler ran %d times, want %d", st.name, got, st.handlerCalls)
			}
		}
	})
}

// TestCountByOutcomeConcurrent states the bound of the two ways to check
// before the handler, with 20 failing attempts of one client in flight at
// once against a quota of 3: with no Estimate every attempt passes the
// check (nothing is taken before the handler) and all 20 are charged
// after, leaving a debt of 17; with Estimate 1 each attempt holds a unit
// while it runs, so exactly 3 reach the handler.
func TestCountByOutcomeConcurrent(t *testing.T) {
	one := func(*http.Request) int64 { return 1 }
	for _, tc := range []struct {
		name      string
		estimate  func(*http.Request) int64
		reached   int64
		retryWant string // Retry-After of the next attempt
	}{
		{"no estimate", nil, 20, strconv.Itoa(17*20 + 20)}, // 20 charged: a unit is back when 18 have been repaid, 20 s each
		{"estimate 1", one, 3, "20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := mustLimiter(t, newStore(), weir.PerMinute(3).WithName("failures"))
				release := make(chan struct{})
				var reached atomic.Int64
				app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					reached.Add(1)
					<-release
					w.WriteHeader(http.StatusUnauthorized)
				})
				h := mustNew(t, Policy{Limiter: lim, Count: StatusIn(401), Estimate: tc.estimate}).Handler(app)
				var wg sync.WaitGroup
				codes := make([]int, 20)
				for i := range codes {
					wg.Go(func() { codes[i] = login(h, "192.0.2.9:1", "u", "x").Code })
				}
				synctest.Wait() // every attempt is in the handler or answered
				if got := reached.Load(); got != tc.reached {
					t.Errorf("%d attempts reached the handler, want %d", got, tc.reached)
				}
				close(release)
				wg.Wait()
				n401 := 0
				for _, c := range codes {
					if c == 401 {
						n401++
					} else if c != 429 {
						t.Errorf("status %d", c)
					}
				}
				if int64(n401) != tc.reached {
					t.Errorf("%d answered 401, want %d", n401, tc.reached)
				}
				rec := login(h, "192.0.2.9:1", "u", "right")
				if rec.Code != 429 || rec.Header().Get("Retry-After") != tc.retryWant {
					t.Errorf("next attempt: %d, Retry-After %q; want 429, %s", rec.Code, rec.Header().Get("Retry-After"), tc.retryWant)
				}
			})
		})
	}
}

// TestChargeAfterDebt: a request that cost more than what was left puts
// the key into debt, and the next requests are denied until time repays
// it, exactly; MaxDebt caps the lock-out.
func TestChargeAfterDebt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit weir.Limit
		retry int // seconds until one unit is back after a cost of 25 on 10/min
	}{
		// TAT = now + 25·6 s; a unit is back at TAT − τ + I = 150 − 60 + 6.
		{"no cap", weir.PerMinute(10), 96},
		// The debt is capped at 5 beyond empty: 15 charged, 90 − 60 + 6.
		{"max debt 5", weir.PerMinute(10).WithMaxDebt(5), 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := mustLimiter(t, newStore(), tc.limit.WithName("tokens"))
				app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n, _ := strconv.ParseInt(r.URL.Query().Get("cost"), 10, 64)
					ReportCost(r.Context(), n)
					_, _ = w.Write([]byte("done"))
				})
				h := mustNew(t, Policy{Limiter: lim, Cost: ReportedCost}).Handler(app)
				rec := do(h, "GET", "/?cost=25", "192.0.2.1:1", nil)
				if rec.Code != 200 {
					t.Fatalf("first request: %d", rec.Code)
				}
				if got := rec.Header().Get("RateLimit"); got != `"tokens";r=0;t=`+strconv.Itoa(tc.retry-6+60) {
					t.Errorf("RateLimit after the charge = %q", got)
				}
				rec = do(h, "GET", "/?cost=1", "192.0.2.1:1", nil)
				if rec.Code != 429 || rec.Header().Get("Retry-After") != strconv.Itoa(tc.retry) {
					t.Fatalf("in debt: %d, Retry-After %q; want 429, %d", rec.Code, rec.Header().Get("Retry-After"), tc.retry)
				}
				time.Sleep(time.Duration(tc.retry)*time.Second - time.Millisecond)
				if rec = do(h, "GET", "/?cost=1", "192.0.2.1:1", nil); rec.Code != 429 {
					t.Fatalf("1 ms before the debt is repaid: %d, want 429", rec.Code)
				}
				time.Sleep(time.Millisecond)
				if rec = do(h, "GET", "/?cost=1", "192.0.2.1:1", nil); rec.Code != 200 {
					t.Fatalf("once repaid: %d, want 200", rec.Code)
				}
			})
		})
	}
}

// TestChargeAfterHeaders: the RateLimit fields of a response carry the
// charge when the cost is known as the head is sent (reported before the
// first write, or in a response header); a cost reported after the head
// is charged all the same when the handler returns; an estimate is
// settled down to a smaller actual.
func TestChargeAfterHeaders(t *testing.T) {
	type step struct {
		name       string
		policy     func(lim *weir.Limiter) Policy
		handler    http.HandlerFunc
		wantHeader string // RateLimit of the response
		wantLeft   int64  // units left once the handler returned
	}
	est := func(n int64) func(*http.Request) int64 { return func(*http.Request) int64 { return n } }
	reported := func(lim *weir.Limiter) Policy {
		return Policy{Limiter: lim, Cost: ReportedCost, Estimate: est(2)}
	}
	for _, tc := range []step{
		{"reported before the head", reported, func(w http.ResponseWriter, r *http.Request) {
			ReportCost(r.Context(), 5)
			_, _ = w.Write([]byte("x"))
		}, `"tokens";r=5;t=30`, 5},
		{"reported after the head", reported, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			ReportCost(r.Context(), 6)
		}, `"tokens";r=8;t=12`, 4},
		{"estimate settled down", reported, func(w http.ResponseWriter, r *http.Request) {
			ReportCost(r.Context(), 1)
		}, `"tokens";r=9;t=6`, 9},
		{"nothing reported keeps the estimate", reported, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("x"))
		}, `"tokens";r=8;t=12`, 8},
		{"a response header", func(lim *weir.Limiter) Policy {
			return Policy{Limiter: lim, Cost: HeaderCost("X-Cost")}
		}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Cost", "7")
			w.WriteHeader(201)
		}, `"tokens";r=3;t=42`, 3},
		{"a malformed header charges the estimate", func(lim *weir.Limiter) Policy {
			return Policy{Limiter: lim, Cost: HeaderCost("X-Cost"), Estimate: est(4)}
		}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Cost", "-7")
		}, `"tokens";r=6;t=24`, 6},
		{"count selects, cost weighs", func(lim *weir.Limiter) Policy {
			return Policy{Limiter: lim, Cost: HeaderCost("X-Cost"), Count: StatusIn(500)}
		}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Cost", "7")
		}, `"tokens";r=10;t=0`, 10},
		{"negative cost counts as 0", func(lim *weir.Limiter) Policy {
			return Policy{Limiter: lim, Cost: func(*Outcome) int64 { return -3 }, Estimate: est(3)}
		}, func(w http.ResponseWriter, r *http.Request) {}, `"tokens";r=10;t=0`, 10},
		{"flush sends the head", reported, func(w http.ResponseWriter, r *http.Request) {
			ReportCost(r.Context(), 3)
			http.NewResponseController(w).Flush()
			ReportCost(r.Context(), 4)
		}, `"tokens";r=7;t=18`, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := mustLimiter(t, newStore(), weir.PerMinute(10).WithName("tokens"))
				h := mustNew(t, tc.policy(lim)).Handler(tc.handler)
				rec := do(h, "GET", "/", "192.0.2.1:1", nil)
				if got := rec.Header().Get("RateLimit"); got != tc.wantHeader {
					t.Errorf("RateLimit = %q, want %q", got, tc.wantHeader)
				}
				if got := rec.Header().Get("RateLimit-Policy"); got != `"tokens";q=10;w=60` {
					t.Errorf("RateLimit-Policy = %q", got)
				}
				d, err := lim.Peek(context.Background(), "ip:192.0.2.1")
				if err != nil || d.Remaining != tc.wantLeft {
					t.Errorf("left after the handler: %d (%v), want %d", d.Remaining, err, tc.wantLeft)
				}
			})
		})
	}
}

// TestChargeAfterWithOthers: a policy that charges after the handler
// beside a plain one: the plain one takes its unit before, and a denial
// by either gives back what the other took.
func TestChargeAfterWithOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newStore()
		reqs := mustLimiter(t, store, weir.PerMinute(3).WithName("requests"))
		tokens := mustLimiter(t, store, weir.PerMinute(100).WithName("tokens"))
		app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.ParseInt(r.URL.Query().Get("cost"), 10, 64)
			ReportCost(r.Context(), n)
		})
		h := mustNew(t,
			Policy{Limiter: reqs},
			Policy{Limiter: tokens, Cost: ReportedCost, Estimate: func(*http.Request) int64 { return 10 }},
		).Handler(app)
		rec := do(h, "GET", "/?cost=95", "192.0.2.1:1", nil)
		if got, want := rec.Header().Get("RateLimit"), `"requests";r=2;t=20, "tokens";r=5;t=57`; rec.Code != 200 || got != want {
			t.Fatalf("first: %d %q, want 200 %q", rec.Code, got, want)
		}
		// 5 tokens left, the estimate is 10: denied by tokens, and the
		// request unit is given back.
		rec = do(h, "GET", "/?cost=1", "192.0.2.1:1", nil)
		if got, want := rec.Header().Get("RateLimit"), `"tokens";r=5;t=57`; rec.Code != 429 || got != want {
			t.Fatalf("second: %d %q, want 429 %q", rec.Code, got, want)
		}
		if d, _ := reqs.Peek(context.Background(), "ip:192.0.2.1"); d.Remaining != 2 {
			t.Errorf("requests left %d, want 2 (the denied request's unit given back)", d.Remaining)
		}
	})
}

// TestChargeAfterStoreError: a charge the store refuses after the head
// is reported to WithOnChargeError; the response is not changed.
func TestChargeAfterStoreError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := &faultStore{Store: newStore()}
		lim := mustLimiter(t, fs, weir.PerMinute(10).WithName("tokens"))
		var got error
		app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fs.fail(weir.ErrUnavailable)
			ReportCost(r.Context(), 3)
		})
		h := mustNew(t, Policy{Limiter: lim, Cost: ReportedCost}, WithOnChargeError(func(_ *http.Request, err error) { got = err })).Handler(app)
		if rec := do(h, "GET", "/", "192.0.2.1:1", nil); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		if !errors.Is(got, weir.ErrUnavailable) {
			t.Fatalf("OnChargeError got %v", got)
		}
	})
}

func TestChargeAfterNewErrors(t *testing.T) {
	lim := mustLimiter(t, newStore(), weir.PerSecond(1))
	conc := mustLimiter(t, newStore(), weir.Concurrent(2, time.Minute).WithName("c"))
	for _, tc := range []struct {
		name  string
		p     Policy
		field string
	}{
		{"estimate without cost", Policy{Limiter: lim, Estimate: func(*http.Request) int64 { return 1 }}, "policies[0].Estimate"},
		{"cost on a concurrency limit", Policy{Limiter: conc, Cost: ReportedCost}, "policies[0].Cost"},
		{"count on a concurrency limit", Policy{Limiter: conc, Count: StatusIn(401)}, "policies[0].Cost"},
	} {
		_, err := New(tc.p)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, weir.ErrInvalid) {
			t.Errorf("%s: error %v, want a FieldError naming %s", tc.name, err, tc.field)
		}
	}
}

func TestReportCostOutside(t *testing.T) {
	if ReportCost(context.Background(), 3) {
		t.Fatal("ReportCost reported a middleware where there is none")
	}
}
