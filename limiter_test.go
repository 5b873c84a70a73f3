package weir_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

func mustLimiter(t *testing.T, s weir.Store, opts ...weir.Option) *weir.Limiter {
	t.Helper()
	l, err := weir.NewLimiter(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewLimiterErrors(t *testing.T) {
	tests := []struct {
		name  string
		store weir.Store
		opts  []weir.Option
		field string
	}{
		{"nil store", nil, []weir.Option{weir.PerSecond(1)}, "store"},
		{"no limits", newFake(), nil, "limits"},
		{"bad limit", newFake(), []weir.Option{weir.PerSecond(1), weir.Per(0, time.Second)}, "limits[1].Quota"},
		{"duplicate", newFake(), []weir.Option{weir.PerSecond(1), weir.PerSecond(1)}, "limits[1].Name"},
		{"duplicate name", newFake(), []weir.Option{weir.PerSecond(1).WithName("a"), weir.PerMinute(9).WithName("a")}, "limits[1].Name"},
	}
	for _, tt := range tests {
		_, err := weir.NewLimiter(tt.store, tt.opts...)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: error %v, want field %q", tt.name, err, tt.field)
		}
	}
	l := mustLimiter(t, newFake(), weir.PerSecond(1), weir.PerMinute(1))
	if got := l.Limits(); got[0].Name != "1/s" || got[1].Name != "1/m" {
		t.Errorf("default names: %q %q", got[0].Name, got[1].Name)
	}
}

func TestAllowCostErrors(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	l := mustLimiter(t, f, weir.PerSecond(10).WithBurst(5))
	if _, err := l.AllowN(ctx, "k", -1); !errors.Is(err, weir.ErrInvalid) {
		t.Errorf("cost -1: %v", err)
	}
	_, err := l.AllowN(ctx, "k", 6)
	if !errors.Is(err, weir.ErrExceedsCapacity) || !errors.Is(err, weir.ErrInvalid) {
		t.Errorf("cost above burst: %v", err)
	}
	if _, err := l.WaitN(ctx, "k", 6); !errors.Is(err, weir.ErrExceedsCapacity) {
		t.Errorf("WaitN above burst: %v", err)
	}
	if f.takes != 0 {
		t.Errorf("invalid calls reached the store %d times", f.takes)
	}
}

// R10: a request denied by one limit is charged to none.
func TestAllowMultiLimitAtomic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.PerSecond(10).WithName("a"), weir.PerSecond(1).WithName("b"))
		d, err := l.Allow(ctx, "u")
		if err != nil || !d.Allowed || d.Limit.Name != "b" || d.Remaining != 0 {
			t.Fatalf("first: %+v %v", d, err)
		}
		for range 5 {
			d, _ = l.Allow(ctx, "u")
			if d.Allowed || d.Limit.Name != "b" || d.RetryAfter != time.Second {
				t.Fatalf("denied: %+v", d)
			}
		}
		a := mustLimiter(t, l.Store(), weir.PerSecond(10).WithName("a"))
		p, _ := a.Peek(ctx, "u")
		if p.Remaining != 9 {
			t.Errorf("limit a remaining = %d after denials, want 9 (charged only once)", p.Remaining)
		}
	})
}

func TestWaitSleepsUntilAdmitted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.PerSecond(2).WithBurst(1))
		start := time.Now()
		for i := range 5 {
			if _, err := l.Wait(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if got, want := time.Since(start), time.Duration(i)*500*time.Millisecond; got != want {
				t.Errorf("wait %d returned after %v, want %v", i, got, want)
			}
		}
	})
}

func TestWaitPreCancelledChargesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		l := mustLimiter(t, f, weir.PerSecond(1))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Wait(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if f.takes != 0 {
			t.Errorf("pre-cancelled wait reached the store")
		}
	})
}

func TestWaitImpossibleDeadlineFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustLimiter(t, newFake(), weir.PerSecond(1))
		bg := context.Background()
		l.Allow(bg, "k")
		ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.Wait(ctx, "k")
		if !errors.Is(err, weir.ErrLimited) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		var le *weir.LimitError
		if !errors.As(err, &le) || le.Decision.RetryAfter != time.Second {
			t.Errorf("LimitError = %+v", le)
		}
		if time.Since(start) != 0 {
			t.Errorf("slept %v before failing", time.Since(start))
		}
		// Nothing was charged: the next second admits exactly one.
		time.Sleep(time.Second)
		if d, _ := l.Allow(bg, "k"); !d.Allowed {
			t.Errorf("failed wait was charged: %+v", d)
		}
	})
}

func TestWaitMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		for _, lim := range []weir.Limit{weir.PerSecond(1), weir.PerSecond(1).WithAlgorithm(weir.FixedWindow)} {
			l := mustLimiter(t, newFake(), lim, weir.MaxWait(100*time.Millisecond))
			l.Allow(ctx, "k")
			start := time.Now()
			_, err := l.Wait(ctx, "k")
			if !errors.Is(err, weir.ErrLimited) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%v: err = %v", lim, err)
			}
			if time.Since(start) != 0 {
				t.Errorf("%v: slept %v", lim, time.Since(start))
			}
		}
	})
}

func TestWaitCancelledRefunds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bg := context.Background()
		l := mustLimiter(t, newFake(), weir.PerSecond(1))
		l.Allow(bg, "k")
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error)
		go func() { _, err := l.Wait(ctx, "k"); done <- err }()
		time.Sleep(100 * time.Millisecond)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		time.Sleep(900 * time.Millisecond)
		// The cancelled waiter's unit came back: one is available at 1 s.
		if d, _ := l.Allow(bg, "k"); !d.Allowed {
			t.Errorf("cancelled wait kept its unit: %+v", d)
		}
	})
}

// Waiting on a limiter that is not all token buckets polls with RetryAfter.
func TestWaitWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.Per(2, time.Second).WithAlgorithm(weir.FixedWindow), weir.PerSecond(100))
		start := time.Now()
		for range 6 {
			if _, err := l.Wait(ctx, "k"); err != nil {
				t.Fatal(err)
			}
		}
		// Windows are epoch aligned and the bubble starts on a second.
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("6 waits at 2 per window took %v, want 2s", got)
		}
	})
}

func TestReserveAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.PerSecond(1))
		r1, _ := l.Reserve(ctx, "k", 1)
		r2, _ := l.Reserve(ctx, "k", 1)
		if !r1.OK() || r1.Delay() != 0 || !r2.OK() || r2.Delay() != time.Second {
			t.Fatalf("r1 %v %v, r2 %v %v", r1.OK(), r1.Delay(), r2.OK(), r2.Delay())
		}
		// Cancelling r1 returns nothing: r2 was scheduled behind it.
		r1.Cancel(ctx)
		if d, _ := l.Peek(ctx, "k"); d.Allowed {
			t.Errorf("cancel of r1 minted a unit: %+v", d)
		}
		// Cancelling the last reservation returns its unit (twice is a no-op).
		r2.Cancel(ctx)
		r2.Cancel(ctx)
		r3, _ := l.Reserve(ctx, "k", 1)
		if r3.Delay() != time.Second {
			t.Errorf("after cancel r3 delay = %v, want 1s", r3.Delay())
		}
		// Windows cannot reserve the future.
		w := mustLimiter(t, newFake(), weir.PerSecond(1).WithAlgorithm(weir.SlidingWindowLog))
		w.Allow(ctx, "k")
		if r, _ := w.Reserve(ctx, "k", 1); r.OK() {
			t.Errorf("sliding log reserved the future")
		}
	})
}

func TestAcquireRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.Concurrent(2, time.Minute), weir.PerSecond(100))
		if _, err := l.Allow(ctx, "k"); !errors.Is(err, weir.ErrConcurrency) {
			t.Errorf("Allow on a concurrency limiter: %v", err)
		}
		a, err := l.Acquire(ctx, "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _, _ := l.TryAcquire(ctx, "k", 1)
		if b == nil {
			t.Fatal("second lease refused")
		}
		if c, d, _ := l.TryAcquire(ctx, "k", 1); c != nil || d.Allowed {
			t.Fatalf("third lease granted: %+v", d)
		}
		// A waiter gets the slot once a holder releases it.
		got := make(chan time.Duration)
		start := time.Now()
		go func() {
			ls, err := l.Acquire(ctx, "k", 1)
			if err != nil {
				t.Error(err)
			}
			got <- time.Since(start)
			ls.Release(ctx)
		}()
		time.Sleep(3 * time.Second)
		a.Release(ctx)
		a.Release(ctx) // no-op
		if w := <-got; w < 3*time.Second || w > 4*time.Second {
			t.Errorf("waiter got the lease after %v", w)
		}
		// An unreleased lease expires after its TTL.
		time.Sleep(time.Minute)
		if d, _ := l.Peek(ctx, "k"); d.Remaining != 2 {
			t.Errorf("after TTL remaining = %d, want 2", d.Remaining)
		}
		_ = b
	})
}

// TestAcquireInArrivalOrder: waiters in two limiters on one store (two
// processes, in effect) get the slot in the order they began waiting, even
// when a release wakes a later waiter first; a newcomer does not take the
// slot ahead of them; and a waiter whose context ends leaves the line at
// once.
func TestAcquireInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := newFake()
		a := mustLimiter(t, store, weir.Concurrent(1, time.Minute))
		b := mustLimiter(t, store, weir.Concurrent(1, time.Minute))
		holder, err := b.Acquire(ctx, "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		order := make(chan string, 3)
		var wg sync.WaitGroup
		defer wg.Wait()
		wait := func(l *weir.Limiter, name string) {
			defer wg.Done()
			ls, err := l.Acquire(ctx, "k", 1)
			if err != nil {
				t.Error(name, err)
				return
			}
			order <- name
			time.Sleep(time.Second)
			_ = ls.Release(ctx) // through a, this wakes "third" at once
		}
		wg.Add(3)
		go wait(a, "first")
		time.Sleep(time.Second)
		go wait(b, "second")
		time.Sleep(time.Second)
		go wait(a, "third")
		time.Sleep(time.Second)
		_ = holder.Release(ctx) // through b: wakes "second" at once
		if ls, d, _ := b.TryAcquire(ctx, "k", 1); ls != nil {
			t.Fatalf("a newcomer took the slot ahead of three waiters: %+v", d)
		}
		for _, want := range []string{"first", "second", "third"} {
			if got := <-order; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}

		h2, err := b.Acquire(ctx, "j", 1)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := a.Acquire(wctx, "j", 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiter with a 300ms context: %v", err)
		}
		_ = h2.Release(ctx)
		if ls, d, _ := b.TryAcquire(ctx, "j", 1); ls == nil {
			t.Fatalf("a waiter that gave up still holds its place: %+v", d)
		}
	})
}

func TestDoAndWrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.PerSecond(1), weir.MaxWait(10*time.Millisecond))
		calls := 0
		f := l.Wrap("k", func(context.Context) error { calls++; return nil })
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f(ctx); !errors.Is(err, weir.ErrLimited) {
			t.Errorf("second call: %v", err)
		}
		if calls != 1 {
			t.Errorf("fn ran %d times", calls)
		}
		c := mustLimiter(t, newFake(), weir.Concurrent(1, time.Minute))
		inner := errors.New("boom")
		if err := c.Do(ctx, "k", func(context.Context) error { return inner }); err != inner {
			t.Errorf("Do returned %v", err)
		}
		if d, _ := c.Peek(ctx, "k"); d.Remaining != 1 {
			t.Errorf("Do did not release: %+v", d)
		}
	})
}

func TestRouter(t *testing.T) {
	ctx := context.Background()
	slow := mustLimiter(t, newFake(), weir.PerMinute(1))
	type job struct {
		tenant string
		free   bool
	}
	r := weir.NewRouter(func(j job) (string, *weir.Limiter) {
		if j.free {
			return "", nil
		}
		return "tenant:" + j.tenant, slow
	})
	if d, _ := r.Allow(ctx, job{tenant: "a"}); !d.Allowed {
		t.Error("first a denied")
	}
	if d, _ := r.Allow(ctx, job{tenant: "a"}); d.Allowed {
		t.Error("second a allowed")
	}
	if d, _ := r.Allow(ctx, job{tenant: "b"}); !d.Allowed {
		t.Error("b shares a's key")
	}
	if d, _ := r.Allow(ctx, job{free: true}); !d.Allowed {
		t.Error("unrouted item denied")
	}
}

func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.fail = weir.ErrUnavailable
	l := mustLimiter(t, f, weir.PerSecond(1))
	if _, err := l.Allow(ctx, "k"); !errors.Is(err, weir.ErrUnavailable) {
		t.Errorf("Allow: %v", err)
	}
	if _, err := l.Wait(ctx, "k"); !errors.Is(err, weir.ErrUnavailable) {
		t.Errorf("Wait: %v", err)
	}
}

// R08: many waiters with random deadlines and cancels. Admissions stay
// within the token-bucket bound, cancelled waiters return at once, and
// refunds never raise the bucket above its burst.
func TestWaitersRandomCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const burst, perSec = 10, 50
		l := mustLimiter(t, newFake(), weir.PerSecond(perSec).WithBurst(burst))
		rng := rand.New(rand.NewPCG(1, 2))
		var mu sync.Mutex
		var admitted []time.Duration
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 1000 {
			timeout := time.Duration(rng.Int64N(int64(10 * time.Second)))
			cancelAt := time.Duration(rng.Int64N(int64(20 * time.Second)))
			pre := i%50 == 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				if pre {
					cancel()
				} else {
					time.AfterFunc(cancelAt, cancel)
				}
				_, err := l.Wait(ctx, "k")
				now := time.Since(start)
				if err == nil {
					mu.Lock()
					admitted = append(admitted, now)
					mu.Unlock()
				} else if now > timeout && now > cancelAt && now-min(timeout, cancelAt) > time.Millisecond {
					t.Errorf("waiter returned %v after its end", now-min(timeout, cancelAt))
				}
			}()
		}
		wg.Wait()
		// Bound: any interval [a, b] holds at most burst + (b-a)*perSec.
		for i := range admitted {
			for j := i; j < len(admitted); j++ {
				a, b := admitted[i], admitted[j]
				if b < a {
					a, b = b, a
				}
				if n := int64(j - i + 1); n > burst+int64((b-a)*perSec/time.Second) {
					t.Fatalf("%d admitted in [%v, %v]", n, a, b)
				}
			}
		}
		// After everything, the bucket holds at most burst.
		time.Sleep(time.Hour)
		if d, _ := l.Peek(context.Background(), "k"); d.Remaining != burst {
			t.Errorf("remaining after refunds = %d, want %d", d.Remaining, burst)
		}
		if len(admitted) == 0 {
			t.Error("nothing admitted")
		}
	})
}

// TestLeaseIDChecked: an id from WithLeaseID is input like any other: the
// store refuses one with a NUL byte or an empty one, although the
// limiter's limits skip validation in the store.
func TestLeaseIDChecked(t *testing.T) {
	ctx := context.Background()
	for _, id := range []string{"a\x00b", ""} {
		l := mustLimiter(t, newFake(), weir.Concurrent(2, time.Minute), weir.WithLeaseID(func() string { return id }))
		lease, _, err := l.TryAcquire(ctx, "k", 1)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != "lease" || lease != nil {
			t.Errorf("id %q: lease %v, error %v; want a FieldError on lease", id, lease, err)
		}
	}
}
