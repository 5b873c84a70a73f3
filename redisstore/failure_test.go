package redisstore_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

// TestFailurePolicies is R13: Redis stalls (SIGSTOP) and dies (SIGKILL,
// then a restart) under load, for each failure policy. During the fault,
// every decision follows the policy; after Redis returns, the store decides
// again; goroutines return to their baseline.
//
// The phases move on progress, not on the wall clock, so that a busy
// machine makes the test slower, never red: the load is healthy until 100
// decisions came from the store; the fault lasts at least 1 s (20 s with
// WEIR_SOAK=1) and until 100 calls that began after Redis stopped ended
// before it came back, which only the deadline can do, so a store that
// waited for Redis would never get there; then the store must decide again
// (100 decisions from Redis). Every call that began after Redis stopped and
// ended before it came back must follow the policy: none could have had
// an answer from Redis, however slow the scheduler.
//
// The catalogue's latency and recovery bounds (p99 <= deadline + 10 ms,
// max <= 2x deadline, decisions again within 2 s, every decision after
// recovery from the store) are real-clock figures: they are checked only
// under WEIR_SOAK=1, run on a quiet machine; CI logs them.
func TestFailurePolicies(t *testing.T) {
	const deadline = 50 * time.Millisecond
	fault := pick(time.Second, 20*time.Second)
	cases := []struct {
		name   string
		opts   []redisstore.Option
		src    weir.Source
		allows bool
	}{
		{"fail-closed", []redisstore.Option{redisstore.WithFailurePolicy(redisstore.FailClosed)}, weir.SourceFailClosed, false},
		{"fail-open", []redisstore.Option{redisstore.WithFailurePolicy(redisstore.FailOpen)}, weir.SourceFailOpen, true},
		{"fallback", []redisstore.Option{redisstore.WithFallback(memstore.New(), 4)}, weir.SourceFallback, true},
	}
	for _, tc := range cases {
		for _, kind := range []string{"sigstop", "sigkill"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				srv := redistest.Start(t)
				client := srv.Client()
				baseline := runtime.NumGoroutine()
				rs, err := redisstore.New(client, append(tc.opts, redisstore.WithDeadline(deadline))...)
				if err != nil {
					t.Fatal(err)
				}
				s := &sourceCounter{Store: rs}
				lim := weir.PerSecond(100000).WithName("r13")
				req := func() *weir.Request {
					return &weir.Request{Checks: []weir.Check{{Key: "k", Limit: lim}}, Cost: 1}
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan []sample)
				go func() { done <- load(ctx, s, req, 16, 2000) }()
				defer func() {
					if ctx.Err() == nil {
						cancel()
						<-done
					}
				}()
				hang := time.Now().Add(2*time.Minute + fault) // only against a hang
				// await waits until cond holds, checking it every 5 ms.
				await := func(what string, cond func() bool) {
					t.Helper()
					for !cond() {
						if time.Now().After(hang) {
							t.Fatalf("%s: still waiting after minutes", what)
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
				atLeast := func(c *atomic.Int64, n int64) func() bool {
					want := c.Load() + n
					return func() bool { return c.Load() >= want }
				}

				await("healthy load", atLeast(&s.store, 100))
				if kind == "sigstop" {
					srv.Pause()
				} else {
					srv.Kill()
				}
				faultStart := time.Now() // Redis answers nothing sent from now on
				s.markFault(faultStart)
				minEnd := faultStart.Add(fault)
				await("policy decisions while Redis is down", func() bool {
					return s.policyInFault.Load() >= 100 && time.Now().After(minEnd)
				})
				faultEnd := time.Now() // before Redis can answer again
				if kind == "sigstop" {
					srv.Resume()
				} else {
					srv.Restart()
				}
				back := time.Now()
				await("the store deciding again", atLeast(&s.store, 100))
				await("more decisions after recovery", atLeast(&s.store, 100))
				cancel()
				samples := <-done

				// During the fault: calls that began after Redis stopped and
				// ended before it came back follow the policy.
				var during []sample
				for _, x := range samples {
					if !x.start.Before(faultStart) && x.start.Add(x.lat).Before(faultEnd) {
						during = append(during, x)
					}
				}
				for _, x := range during {
					if x.err != nil {
						t.Fatalf("error during the fault: %v", x.err)
					}
					if x.src != tc.src || (tc.src != weir.SourceFallback && x.allowed != tc.allows) {
						t.Fatalf("decision at fault+%v (latency %v): source %v allowed %v, want %v", x.start.Sub(faultStart), x.lat, x.src, x.allowed, tc.src)
					}
				}
				p50, p99, worst := quantile(during, 0.5), quantile(during, 0.99), quantile(during, 1)
				t.Logf("during the %v fault: %d decisions, p50 %v p99 %v max %v", faultEnd.Sub(faultStart).Round(time.Millisecond), len(during), p50, p99, worst)
				// Recovery: the first decision from Redis after it returned.
				var firstOK time.Time
				for _, x := range between(samples, back, time.Now()) {
					if x.src == weir.SourceStore && x.err == nil {
						firstOK = x.start
						break
					}
				}
				recovery := firstOK.Sub(back)
				after := between(samples, firstOK, time.Now())
				var fromStore int
				for _, x := range after {
					if x.err != nil {
						t.Fatalf("error after recovery: %v", x.err)
					}
					if x.src == weir.SourceStore {
						fromStore++
					}
				}
				t.Logf("store decisions again %v after Redis returned; then %d of %d decisions from the store", recovery.Round(time.Millisecond), fromStore, len(after))
				if soak() {
					if p99 > deadline+10*time.Millisecond || worst > 2*deadline {
						t.Errorf("latency during the fault p99 %v, max %v; want <= %v and <= %v", p99, worst, deadline+10*time.Millisecond, 2*deadline)
					}
					if recovery > 2*time.Second {
						t.Errorf("the store decided again %v after Redis returned, want <= 2s", recovery)
					}
					if after = between(samples, firstOK.Add(time.Second), time.Now()); len(after) == 0 {
						t.Errorf("no decisions from 1 s after recovery")
					}
					for _, x := range after {
						if x.src != weir.SourceStore {
							t.Errorf("decision %v after recovery from %v, want the store", x.start.Sub(firstOK), x.src)
							break
						}
					}
				}
				if err := rs.Close(); err != nil {
					t.Fatal(err)
				}
				_ = client.Close()
				// Goroutines are back to the baseline (give exiting ones a
				// moment: they are ending, not leaking).
				var n int
				for range 100 {
					if n = runtime.NumGoroutine(); n <= baseline {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if n > baseline {
					t.Errorf("%d goroutines after the test, baseline %d", n, baseline)
				}
			})
		}
	}
}

// sourceCounter counts its Store's decisions made by Redis, and those made
// by the failure policy for calls that began after markFault.
type sourceCounter struct {
	weir.Store
	store, policyInFault atomic.Int64
	fault                atomic.Int64 // Unix ns of markFault; 0 before
}

func (c *sourceCounter) markFault(at time.Time) { c.fault.Store(at.UnixNano()) }

func (c *sourceCounter) Take(ctx context.Context, r *weir.Request) (weir.Decision, error) {
	start := time.Now().UnixNano()
	d, err := c.Store.Take(ctx, r)
	switch f := c.fault.Load(); {
	case err != nil:
	case d.Source == weir.SourceStore:
		c.store.Add(1)
	case f != 0 && start >= f:
		c.policyInFault.Add(1)
	}
	return d, err
}

// TestFailError checks the default policy: a store failure is an error
// matching weir.ErrUnavailable, by the deadline. The client's read timeout
// is a minute, so only the store's deadline can end a call to a stopped
// Redis: a call that returns at all is proof, and the 100 ms bound on its
// latency is a real-clock figure, checked under WEIR_SOAK=1 only.
func TestFailError(t *testing.T) {
	srv := redistest.Start(t)
	opt := srv.Options()
	opt.ReadTimeout, opt.WriteTimeout = time.Minute, time.Minute
	client := redis.NewClient(opt)
	defer client.Close()
	s, err := redisstore.New(client, redisstore.WithDeadline(30*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(10)}}, Cost: 1}
	// A first decision, retried: a busy machine may miss 30 ms.
	for i := 0; ; i++ {
		_, err := s.Take(context.Background(), req)
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatal(err)
		}
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	answer := make(chan error, 1)
	go func() {
		_, err := s.Take(context.Background(), req)
		answer <- err
	}()
	select {
	case err = <-answer:
	case <-time.After(30 * time.Second):
		t.Fatal("Take with Redis stopped did not return in 30 s (the deadline is 30 ms)")
	}
	if !errors.Is(err, weir.ErrUnavailable) {
		t.Fatalf("Take with Redis stopped: %v, want ErrUnavailable", err)
	}
	el := time.Since(start)
	t.Logf("Take with Redis stopped failed after %v (deadline 30ms)", el)
	if soak() && el > 100*time.Millisecond {
		t.Fatalf("Take took %v with a 30ms deadline", el)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, weir.ErrUnavailable) {
		t.Fatalf("Ping with Redis stopped: %v", err)
	}
	// Invalid input is never a store failure, whatever the policy (S11).
	fo, _ := redisstore.New(srv.Client(), redisstore.WithFailurePolicy(redisstore.FailOpen))
	defer fo.Close()
	for _, bad := range []*weir.Request{
		{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(10)}}, Cost: -1},
		{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(10)}}, Cost: 11},
		{Checks: []weir.Check{{Key: "k", Limit: weir.Limit{}}}, Cost: 1},
	} {
		d, err := fo.Take(context.Background(), bad)
		if !errors.Is(err, weir.ErrInvalid) || d.Allowed {
			t.Fatalf("bad input: %+v, %v; want ErrInvalid and no admission", d, err)
		}
	}
}

// TestDeadlineWithoutContextTimeouts: with a client that does not pass
// contexts to its sockets (ContextTimeoutEnabled off, go-redis's default)
// a stopped Redis holds the store's worker in a read until the client's
// ReadTimeout; callers still get their answer at the store's deadline,
// both the ones whose script call is stuck and the ones queued behind it.
// The client's ReadTimeout is a minute, so callers that get their answer
// at all got it from the deadline; how soon (deadline + 1 s) is a
// real-clock bound, checked under WEIR_SOAK=1 only.
func TestDeadlineWithoutContextTimeouts(t *testing.T) {
	srv := redistest.Start(t)
	opt := srv.Options()
	opt.ContextTimeoutEnabled = false
	opt.ReadTimeout = time.Minute
	client := redis.NewClient(opt)
	defer client.Close()
	const deadline = 50 * time.Millisecond
	s, err := redisstore.New(client, redisstore.WithDeadline(deadline))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lim, err := weir.NewLimiter(s, weir.PerSecond(1000))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A first decision, retried: a busy machine may miss 50 ms.
	for i := 0; ; i++ {
		_, err := lim.Allow(ctx, "warm")
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatal(err)
		}
	}
	srv.Pause()
	defer srv.Resume()
	errs := make(chan error, 16)
	start := time.Now()
	for i := range 16 {
		go func() {
			_, err := lim.Allow(ctx, "k"+strconv.Itoa(i))
			errs <- err
		}()
	}
	hang := time.After(30 * time.Second)
	for range 16 {
		select {
		case err := <-errs:
			if !errors.Is(err, weir.ErrUnavailable) {
				t.Errorf("Allow against a stopped Redis = %v, want ErrUnavailable", err)
			}
		case <-hang:
			t.Fatalf("decisions against a stopped Redis still waiting after 30 s with a %v deadline (the client's ReadTimeout is 1 minute)", deadline)
		}
	}
	d := time.Since(start)
	t.Logf("16 decisions against a stopped Redis answered in %v", d)
	if soak() && d > deadline+time.Second {
		t.Errorf("16 decisions against a stopped Redis took %v with a %v deadline (the client's ReadTimeout is 1 minute)", d, deadline)
	}
}
