package httplimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func TestTransportLeavesRequestAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var bodies []string
		var mu sync.Mutex
		calls := 0
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			bodies = append(bodies, string(b))
			calls++
			if calls == 1 {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		tr := &Transport{Base: &handlerTransport{h: server}, Limiter: mustLimiter(t, newStore(), weir.PerSecond(100)), Retries: 3}
		req, _ := http.NewRequest("PUT", "http://api.example/x?y=1", bytes.NewReader([]byte("payload")))
		req.Header.Set("X-Trace", "1")
		before := req.Clone(context.Background())
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || time.Since(start) < 2*time.Second {
			t.Fatalf("status %d after %v; want 200 after the 2s Retry-After", resp.StatusCode, time.Since(start))
		}
		if !reflect.DeepEqual(bodies, []string{"payload", "payload"}) {
			t.Fatalf("server saw bodies %q", bodies)
		}
		if req.URL.String() != before.URL.String() || !reflect.DeepEqual(req.Header, before.Header) || req.Method != before.Method || req.ContentLength != before.ContentLength {
			t.Fatalf("request modified: %+v", req)
		}
	})
}

func TestTransportRetryRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", r.URL.Query().Get("ra"))
			w.WriteHeader(http.StatusTooManyRequests)
		})
		tr := &Transport{Base: &handlerTransport{h: server}, Retries: 2, MaxRetryWait: 10 * time.Second, NoAdapt: true}
		tests := []struct {
			method string
			target string
			body   io.Reader
			hdr    string
			calls  int64
		}{
			{"GET", "/?ra=1", nil, "", 3},                                // retried twice
			{"POST", "/?ra=1", nil, "", 1},                               // not idempotent
			{"POST", "/?ra=1", nil, "idem-1", 3},                         // Idempotency-Key makes it retryable
			{"GET", "/?ra=60", nil, "", 1},                               // longer than MaxRetryWait
			{"PUT", "/?ra=1", io.NopCloser(bytes.NewReader(nil)), "", 1}, // body cannot be replayed
		}
		for _, tt := range tests {
			calls.Store(0)
			req := httptest.NewRequest(tt.method, "http://h"+tt.target, tt.body)
			req.RequestURI = ""
			if tt.hdr != "" {
				req.Header.Set("Idempotency-Key", tt.hdr)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 429 || calls.Load() != tt.calls {
				t.Errorf("%s %s: status %d after %d calls, want 429 after %d", tt.method, tt.target, resp.StatusCode, calls.Load(), tt.calls)
			}
		}
	})
}

func TestTransportClosesBodyOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &handlerTransport{h: okHandler}
		// The budget is spent and the limiter may not wait long.
		lim := mustLimiter(t, newStore(), weir.PerHour(1), weir.MaxWait(time.Second))
		tr := &Transport{Base: base, Limiter: lim}
		send := func(ctx context.Context) (*trackedBody, error) {
			body := &trackedBody{Reader: bytes.NewReader([]byte("x"))}
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://h/", body)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			return body, err
		}
		if b, err := send(t.Context()); err != nil || !b.closed.Load() {
			t.Fatalf("first request: %v, body closed %v", err, b.closed.Load())
		}
		b, err := send(t.Context())
		if !errors.Is(err, weir.ErrLimited) || !b.closed.Load() {
			t.Fatalf("over budget: err %v, body closed %v; want ErrLimited and a closed body", err, b.closed.Load())
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		b, err = send(ctx)
		if !errors.Is(err, context.Canceled) || !b.closed.Load() {
			t.Fatalf("cancelled: err %v, body closed %v", err, b.closed.Load())
		}
		if base.sent.Load() != 1 {
			t.Fatalf("base sent %d requests, want 1", base.sent.Load())
		}
	})
}

func TestTransportObserve(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name     string
		status   int
		hdr      map[string]string
		pause    time.Duration // expected pause from now; -1: nothing learnt
		interval time.Duration
	}{
		{"nothing", 200, nil, -1, 0},
		{"draft-11 policy", 200, map[string]string{"RateLimit-Policy": `"a";q=4;w=1, "b";q=100;w=60`, "RateLimit": `"a";r=3;t=1`}, 0, 600 * time.Millisecond},
		{"draft-11 r=0 pauses one interval", 200, map[string]string{"RateLimit-Policy": `"a";q=2;w=1`, "RateLimit": `"a";r=0;t=1`}, 500 * time.Millisecond, 500 * time.Millisecond},
		{"draft-11 r=0 window", 200, map[string]string{"RateLimit-Policy": `"a";q=100;w=3600`, "RateLimit": `"a";r=0;t=20`}, 20 * time.Second, 36 * time.Second},
		{"draft-11 r=0 without policy", 200, map[string]string{"RateLimit": `"x";r=0;t=7`}, 7 * time.Second, 0},
		{"draft-07", 200, map[string]string{"RateLimit-Policy": `10;w=60`, "RateLimit": `limit=10, remaining=0, reset=30`}, 6 * time.Second, 6 * time.Second},
		{"retry-after wins", 429, map[string]string{"Retry-After": "9", "RateLimit": `"a";r=0;t=1`}, 9 * time.Second, 0},
		{"retry-after date", 503, map[string]string{"Retry-After": now.Add(5 * time.Second).Format(http.TimeFormat)}, 5 * time.Second, 0},
		{"retry-after ignored on 200", 200, map[string]string{"Retry-After": "9"}, -1, 0},
		{"bare 429", 429, nil, time.Second, 0},
		{"legacy delta", 200, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, 12 * time.Second, 0},
		{"legacy epoch", 200, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(40*time.Second).Unix(), 10)}, 40 * time.Second, 0},
		{"legacy remaining", 200, map[string]string{"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "12"}, 0, 0},
		{"cached response ignored", 429, map[string]string{"Age": "30", "Retry-After": "9"}, -1, 0},
		{"malformed ignored", 200, map[string]string{"RateLimit-Policy": `"a";q=`, "RateLimit": `"a";r=0;t=x`}, -1, 0},
		{"pause capped", 429, map[string]string{"Retry-After": "86400"}, 10 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &Transport{}
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			for k, v := range tt.hdr {
				resp.Header.Set(k, v)
			}
			tr.observe("k", resp, now)
			st := tr.hosts["k"]
			if tt.pause < 0 {
				if st != nil {
					t.Fatalf("learnt %+v from nothing", st)
				}
				return
			}
			if st == nil {
				t.Fatal("nothing learnt")
			}
			var pause time.Duration
			if !st.paused.IsZero() {
				pause = st.paused.Sub(now)
			}
			if pause != tt.pause || st.interval != tt.interval {
				t.Fatalf("pause %v, interval %v; want %v, %v", pause, st.interval, tt.pause, tt.interval)
			}
		})
	}
}

// rateServer answers at most 2 requests a second (token bucket, burst 1)
// and advertises it in the given header format.
func rateServer(t *testing.T, format string) http.Handler {
	lim := mustLimiter(t, newStore(), weir.PerSecond(2).WithBurst(1).WithName("server"))
	if format == "draft-11" {
		return mustNew(t, Policy{Limiter: lim}).Handler(okHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := lim.Allow(r.Context(), "all")
		if err != nil {
			t.Error(err)
			return
		}
		reset := strconv.FormatInt(ceilSeconds(d.ResetAfter), 10)
		rem := strconv.FormatInt(d.Remaining, 10)
		switch format {
		case "draft-07":
			w.Header().Set("RateLimit-Policy", "2;w=1")
			w.Header().Set("RateLimit", "limit=2, remaining="+rem+", reset="+reset)
		case "legacy":
			w.Header().Set("X-RateLimit-Limit", "2")
			w.Header().Set("X-RateLimit-Remaining", rem)
			w.Header().Set("X-RateLimit-Reset", reset)
		}
		if !d.Allowed {
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(d.RetryAfter), 10))
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
}

// The client is configured for 10/s; the server allows 2/s and says so.
// Within 2 s the client sends at the server's rate without being refused.
func TestTransportAdapts(t *testing.T) {
	for _, format := range []string{"draft-11", "draft-07", "legacy"} {
		t.Run(format, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &Transport{
					Base:    &handlerTransport{h: rateServer(t, format)},
					Limiter: mustLimiter(t, newStore(), weir.PerSecond(10).WithBurst(1)),
				}
				client := &http.Client{Transport: tr}
				start := time.Now()
				ctx, cancel := context.WithTimeout(t.Context(), 12*time.Second)
				defer cancel()
				var mu sync.Mutex
				var ok, limited, okLate, limitedLate int
				var wg sync.WaitGroup
				for range 20 {
					wg.Go(func() {
						for ctx.Err() == nil {
							req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/", nil)
							resp, err := client.Do(req)
							if err != nil {
								return
							}
							resp.Body.Close()
							late := time.Since(start) >= 2*time.Second
							mu.Lock()
							switch {
							case resp.StatusCode == 200 && late:
								ok++
								okLate++
							case resp.StatusCode == 200:
								ok++
							case late:
								limited++
								limitedLate++
							default:
								limited++
							}
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				rate := float64(okLate) / 10 // admitted per second from 2 s to 12 s
				t.Logf("%s: %d admitted, %d refused; after 2 s: %.2f/s admitted, %d refused", format, ok, limited, rate, limitedLate)
				if limitedLate > (okLate+limitedLate)/100 {
					t.Fatalf("after 2 s still %d refusals of %d requests (> 1%%)", limitedLate, okLate+limitedLate)
				}
				if format != "legacy" && rate < 0.95*2 {
					t.Fatalf("after 2 s admitted %.2f/s, want >= 95%% of the server's 2/s", rate)
				}
				if format == "legacy" && rate < 0.95*1 {
					// Without a policy, only Remaining: 0 and whole-second resets are known.
					t.Fatalf("after 2 s admitted %.2f/s, want >= 0.95/s", rate)
				}
			})
		})
	}
}

// A probe that hangs after a pause holds the other requests for at most
// probeWait.
func TestTransportHungProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		release := make(chan struct{})
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch calls.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			case 2:
				<-release // the probe hangs
			}
		})
		tr := &Transport{Base: &handlerTransport{h: server}}
		get := func() int {
			req, _ := http.NewRequest("GET", "http://h/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		start := time.Now()
		if c := get(); c != 429 {
			t.Fatalf("first: %d", c)
		}
		var wg sync.WaitGroup
		wg.Go(func() { get() }) // the probe, at 1 s
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if c := get(); c != 200 || time.Since(start) != time.Second+probeWait {
			t.Fatalf("after a hung probe: %d at %v, want 200 at %v", c, time.Since(start), time.Second+probeWait)
		}
		close(release)
		wg.Wait()
	})
}
