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
		tr := &Transport{Base: &handlerTransport{h: server}, Limit: weir.PerSecond(100), Retries: 3}
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
		tr := &Transport{Base: &handlerTransport{h: server}, Retries: 2, MaxRetryWait: 10 * time.Second}
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
		store := &faultStore{Store: newStore()}
		tr := &Transport{Base: base, Limit: weir.PerSecond(10), Store: store}
		send := func(tr *Transport, ctx context.Context) (*trackedBody, error) {
			body := &trackedBody{Reader: bytes.NewReader([]byte("x"))}
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://h/", body)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			return body, err
		}
		if b, err := send(tr, t.Context()); err != nil || !b.closed.Load() {
			t.Fatalf("first request: %v, body closed %v", err, b.closed.Load())
		}
		store.fail(weir.ErrUnavailable)
		b, err := send(tr, t.Context())
		if !errors.Is(err, weir.ErrUnavailable) || !b.closed.Load() {
			t.Fatalf("store down: err %v, body closed %v; want ErrUnavailable and a closed body", err, b.closed.Load())
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		b, err = send(tr, ctx)
		if !errors.Is(err, context.Canceled) || !b.closed.Load() {
			t.Fatalf("cancelled: err %v, body closed %v", err, b.closed.Load())
		}
		b, err = send(&Transport{Base: base, Limit: weir.Limit{Quota: 0, Period: time.Second}}, t.Context())
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != "Transport.Limit" || !b.closed.Load() {
			t.Fatalf("bad Limit: err %v, body closed %v", err, b.closed.Load())
		}
		if base.sent.Load() != 1 {
			t.Fatalf("base sent %d requests, want 1", base.sent.Load())
		}
	})
}

// What one answer teaches, as pure logic: the pace and the pause.
func TestPacerObserve(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name   string
		told   QuotaPolicy
		status int
		hdr    map[string]string
		source string
		quota  int64
		window time.Duration
		pause  time.Duration // from now
	}{
		{"no fields: slow start", QuotaPolicy{}, 200, nil, "429s", 1, time.Second / learnStart, 0},
		{"draft-11, slowest policy", QuotaPolicy{}, 200, map[string]string{"RateLimit-Policy": `"a";q=4;w=1, "b";q=100;w=60`, "RateLimit": `"a";r=3;t=1`}, "RateLimit-Policy", 100, time.Minute, 0},
		{"draft-11 r=0 is no pause once the policy is known", QuotaPolicy{}, 200, map[string]string{"RateLimit-Policy": `"a";q=2;w=1`, "RateLimit": `"a";r=0;t=1`}, "RateLimit-Policy", 2, time.Second, 0},
		{"draft-11 r=0 without policy pauses", QuotaPolicy{}, 200, map[string]string{"RateLimit": `"x";r=0;t=7`}, "429s", 1, time.Second / learnStart, 7 * time.Second},
		{"draft-07", QuotaPolicy{}, 200, map[string]string{"RateLimit-Policy": `10;w=60`, "RateLimit": `limit=10, remaining=0, reset=30`}, "RateLimit-Policy", 10, time.Minute, 0},
		{"bytes policy ignored", QuotaPolicy{}, 200, map[string]string{"RateLimit-Policy": `"b";q=1000;qu="content-bytes";w=1`}, "429s", 1, time.Second / learnStart, 0},
		{"told, slower server wins", QuotaPolicy{Quota: 10, Window: time.Second}, 200, map[string]string{"RateLimit-Policy": `"a";q=2;w=1`}, "RateLimit-Policy", 2, time.Second, 0},
		{"told, faster server ignored", QuotaPolicy{Quota: 10, Window: time.Second}, 200, map[string]string{"RateLimit-Policy": `"a";q=20;w=1`}, "told", 10, time.Second, 0},
		{"retry-after wins", QuotaPolicy{}, 429, map[string]string{"Retry-After": "9", "RateLimit": `"a";r=0;t=1`}, "", 0, 0, 9 * time.Second},
		{"retry-after date", QuotaPolicy{}, 503, map[string]string{"Retry-After": now.Add(5 * time.Second).Format(http.TimeFormat)}, "", 0, 0, 5 * time.Second},
		{"retry-after ignored on 200", QuotaPolicy{}, 200, map[string]string{"Retry-After": "9"}, "429s", 1, time.Second / learnStart, 0},
		{"bare 429", QuotaPolicy{}, 429, nil, "", 0, 0, time.Second},
		{"legacy delta", QuotaPolicy{}, 200, map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, "X-RateLimit", 60, 12 * time.Second, 0},
		{"legacy epoch", QuotaPolicy{}, 200, map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": strconv.FormatInt(now.Add(3600*time.Second).Unix(), 10)}, "X-RateLimit", 5000, time.Hour, 0},
		{"legacy without limit pauses", QuotaPolicy{}, 200, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, "429s", 1, time.Second / learnStart, 12 * time.Second},
		{"cached response ignored", QuotaPolicy{}, 429, map[string]string{"Age": "30", "Retry-After": "9"}, "", 0, 0, 0},
		{"malformed ignored", QuotaPolicy{}, 200, map[string]string{"RateLimit-Policy": `"a";q=`, "RateLimit": `"a";r=0;t=x`}, "429s", 1, time.Second / learnStart, 0},
		{"pause capped", QuotaPolicy{}, 429, map[string]string{"Retry-After": "86400"}, "", 0, 0, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pacer{told: tt.told, maxPause: 10 * time.Minute}
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			for k, v := range tt.hdr {
				resp.Header.Set(k, v)
			}
			p.observe(readAnswer(resp, now, now))
			got := p.pace()
			var pause time.Duration
			if !p.paused.IsZero() {
				pause = p.paused.Sub(now)
			}
			if got.Source != tt.source || got.Quota != tt.quota || got.Window != tt.window || pause != tt.pause {
				t.Fatalf("pace %+v, pause %v; want %s %d per %v, pause %v", got, pause, tt.source, tt.quota, tt.window, tt.pause)
			}
			if got.Quota > 0 && got.Source != "429s" && got.Margin != got.Window/50 {
				t.Fatalf("margin %v after one answer, want the first-contact Window/50", got.Margin)
			}
		})
	}
}

// The margin follows the measured variation, within its bounds, and a 429
// while paced widens it until calm answers narrow it again.
func TestPacerMargin(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	p := pacer{told: QuotaPolicy{Quota: 4, Window: time.Second}}
	ok := &http.Response{StatusCode: 200, Header: http.Header{}}
	for i, rtt := range []time.Duration{100, 140, 60, 140, 60} {
		sent := t0.Add(time.Duration(i) * time.Second)
		p.observe(readAnswer(ok, sent, sent.Add(rtt*time.Millisecond)))
	}
	if m := p.pace().Margin; m < 40*time.Millisecond || m > 100*time.Millisecond {
		t.Fatalf("margin %v after round trips varying by ±40ms", m)
	}
	p = pacer{told: QuotaPolicy{Quota: 4, Window: time.Second}}
	p.woke(t0, t0.Add(time.Hour))
	if m := p.pace().Margin; m != 100*time.Millisecond {
		t.Fatalf("margin %v, want the cap of Window/10", m)
	}
	p = pacer{told: QuotaPolicy{Quota: 4, Window: time.Second}}
	p.observe(readAnswer(&http.Response{StatusCode: 429, Header: http.Header{}}, t0, t0))
	if m := p.pace().Margin; m != 30*time.Millisecond {
		t.Fatalf("margin %v after a 429 at first contact, want 20ms + 10ms", m)
	}
	for range bumpDecay * 4 {
		p.observe(readAnswer(ok, t0, t0))
	}
	if m := p.pace().Margin; m != 10*time.Millisecond {
		t.Fatalf("margin %v after %d calm answers, want the floor of 5ms + 5ms (first contact over)", m, bumpDecay*4)
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

// The client is told 10/s; the server allows 2/s (token bucket, burst 1)
// and says so in each format. Twenty callers through one http.Client: no
// 429 at all, and the server's rate filled.
func TestTransportAdapts(t *testing.T) {
	for _, format := range []string{"draft-11", "draft-07", "legacy"} {
		t.Run(format, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &Transport{Base: &handlerTransport{h: rateServer(t, format)}, Limit: weir.PerSecond(10)}
				client := &http.Client{Transport: tr}
				ctx, cancel := context.WithTimeout(t.Context(), 12*time.Second)
				defer cancel()
				var ok, limited atomic.Int64
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
							if resp.StatusCode == 200 {
								ok.Add(1)
							} else {
								limited.Add(1)
							}
						}
					})
				}
				wg.Wait()
				t.Logf("%s: %d admitted, %d refused in 12 s; %+v", format, ok.Load(), limited.Load(), tr.Pace("api.example"))
				// The first request learns 2/s; then one every 500.5 ms.
				if limited.Load() != 0 || ok.Load() < 23 {
					t.Fatalf("%d admitted, %d refused in 12 s; want >= 23 (98%% of 2/s) and none refused", ok.Load(), limited.Load())
				}
			})
		})
	}
}

// A probe that hangs holds the other requests for at most probeWait.
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

// Timeout starts at the send: requests that wait seconds in line keep it
// whole, where http.Client.Timeout spends it in the line and fails them.
// It covers the body too.
func TestTransportTimeoutStartsAtSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{quota: 1, window: time.Second, latency: time.Second}
		run := func(c *http.Client) (failed int) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 5 {
				wg.Go(func() {
					req, _ := http.NewRequest("GET", "http://api.example/", nil)
					resp, err := c.Do(req)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed++
						return
					}
					resp.Body.Close()
				})
			}
			wg.Wait()
			return failed
		}
		told := weir.PerSecond(1)
		if f := run(&http.Client{Transport: &Transport{Base: &handlerTransport{h: up}, Limit: told, Timeout: 1500 * time.Millisecond}}); f != 0 {
			t.Fatalf("Transport.Timeout: %d of 5 failed, want 0", f)
		}
		if f := run(&http.Client{Transport: &Transport{Base: &handlerTransport{h: up}, Limit: told}, Timeout: 1500 * time.Millisecond}); f != 4 {
			t.Fatalf("http.Client.Timeout: %d of 5 failed, want the 4 that waited (the contrast this test guards)", f)
		}
		slow := &Transport{Base: &handlerTransport{h: up}, Limit: told, Timeout: 500 * time.Millisecond}
		req, _ := http.NewRequest("GET", "http://api.example/", nil)
		if _, err := slow.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("answer after 1 s with a 500 ms Timeout: %v", err)
		}
	})
}

// Wait hands out turns at the pace; a request carrying one is sent at
// once, and only once: a second RoundTrip of it waits for a turn of its own.
func TestTransportWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &handlerTransport{h: okHandler}
		tr := &Transport{Base: base, Limit: weir.PerSecond(1)}
		start := time.Now()
		req, _ := http.NewRequest("GET", "http://api.example/", nil)
		r1, err := tr.Wait(req)
		if err != nil || time.Since(start) != 0 {
			t.Fatalf("first Wait: %v after %v", err, time.Since(start))
		}
		r2, err := tr.Wait(req)
		// One second plus the first-contact margin of 1/50.
		if err != nil || time.Since(start) != 1020*time.Millisecond {
			t.Fatalf("second Wait: %v after %v, want 1.02s", err, time.Since(start))
		}
		for _, r := range []*http.Request{r1, r2} {
			resp, err := tr.RoundTrip(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if time.Since(start) != 1020*time.Millisecond {
			t.Fatalf("requests with a turn waited: sent at %v", time.Since(start))
		}
		resp, err := tr.RoundTrip(r1) // its turn is used: waits for the next
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if time.Since(start) != 2040*time.Millisecond || base.sent.Load() != 3 {
			t.Fatalf("reused turn: sent at %v (%d sends), want 2.04s", time.Since(start), base.sent.Load())
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := tr.Wait(req.WithContext(ctx)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with a cancelled context: %v", err)
		}
	})
}

// A 429 while paced to a known limit is first a slip: the margin widens
// but the key is not paused. Refusals of sends already on their way share
// it (no second widening); a refusal of a send that left after the slip,
// within a window, pauses the key for its Retry-After; a 429 long after
// the slip is a new slip.
func TestPacerSlip(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	limited := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}}
	ok := &http.Response{StatusCode: 200, Header: http.Header{}}
	p := pacer{told: QuotaPolicy{Quota: 4, Window: time.Second}, maxPause: 10 * time.Minute}
	for i := range 20 { // first contact over: margin w/1000
		p.observe(readAnswer(ok, at(250*i), at(250*i+10)))
	}
	steps := []struct {
		name       string
		sent, back int // ms
		status     *http.Response
		paused     bool
		bump       time.Duration
	}{
		{"first 429: a slip", 5000, 5010, limited, false, 10 * time.Millisecond},
		{"on its way at the slip: same slip", 5005, 5015, limited, false, 10 * time.Millisecond},
		{"a 200", 5250, 5260, ok, false, 10 * time.Millisecond},
		{"sent after the slip, within a window: a pause", 5500, 5510, limited, true, 20 * time.Millisecond},
		{"long after: a slip again", 9000, 9010, limited, false, 40 * time.Millisecond},
	}
	for _, s := range steps {
		p.paused = time.Time{}
		p.observe(readAnswer(s.status, at(s.sent), at(s.back)))
		if paused := !p.paused.IsZero(); paused != s.paused || p.bump != s.bump {
			t.Fatalf("%s: paused %v (until %v), bump %v; want paused %v, bump %v", s.name, paused, p.paused, p.bump, s.paused, s.bump)
		}
		if s.paused && p.paused != at(s.back).Add(time.Second) {
			t.Fatalf("%s: paused until %v, want the Retry-After from the answer", s.name, p.paused)
		}
	}
}

// The peak deviation of the round trip widens the margin beyond the mean
// deviation, and is forgotten over windows of steady answers; first
// contact does not count, and the peak's part is capped at Window/50.
// Without deviation the margin is its floor, sendTail (5 ms).
func TestPacerPeak(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	p := pacer{told: QuotaPolicy{Quota: 100, Window: time.Second}}
	ok := &http.Response{StatusCode: 200, Header: http.Header{}}
	send := func(i int, rtt time.Duration) {
		sent := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		p.observe(readAnswer(ok, sent, sent.Add(rtt)))
	}
	send(0, 50*time.Millisecond) // first contact: a new connection
	for i := 1; i < 200; i++ {
		send(i, time.Millisecond)
	}
	if m := p.pace().Margin; m != sendTail {
		t.Fatalf("margin %v after first contact and steady answers, want the floor of %v", m, sendTail)
	}
	send(200, 17*time.Millisecond) // one late answer
	for i := 201; i < 240; i++ {   // the mean deviation forgets it
		send(i, time.Millisecond)
	}
	if m := p.pace().Margin; m < 15*time.Millisecond || m > 16*time.Millisecond {
		t.Fatalf("margin %v after a 16ms deviation, want about 16ms", m)
	}
	for i := 240; i < 240+17*100; i++ {
		send(i, time.Millisecond)
	}
	if m := p.pace().Margin; m < 6*time.Millisecond || m > 10*time.Millisecond {
		t.Fatalf("margin %v 17 windows later, want the peak about halved", m)
	}
	// A descheduled sender's 300 ms: the peak's part is capped at w/50.
	send(5000, 300*time.Millisecond)
	for i := 5001; i < 5040; i++ {
		send(i, time.Millisecond)
	}
	if m := p.pace().Margin; m != 20*time.Millisecond {
		t.Fatalf("margin %v after a 300ms deviation, want the cap of Window/50", m)
	}
}
