package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// modelLimits are the limits of the random cross-check: small quotas so
// that denials are frequent, and a token bucket whose emission interval is
// not a whole number of nanoseconds.
var modelLimits = []weir.Limit{
	weir.PerSecond(5).WithBurst(3).WithName("tb"),
	weir.Per(7, 3*time.Second).WithName("tb-frac"),
	weir.Per(4, 2*time.Second).WithAlgorithm(weir.FixedWindow).WithName("fixed"),
	weir.Per(6, time.Second).WithAlgorithm(weir.SlidingWindowCounter).WithName("counter"),
	weir.Per(4, time.Second).WithAlgorithm(weir.SlidingWindowLog).WithName("log"),
	weir.Concurrent(3, 2*time.Second).WithName("leases"),
	weir.Per(3, time.Second).WithMaxDebt(4).WithName("tb-debt"),
	weir.Per(3, time.Second).WithAlgorithm(weir.SlidingWindowCounter).WithMaxDebt(2).WithName("counter-debt"),
}

// testModel applies random operations at random instants to the store and
// to the reference model, and compares every outcome.
func testModel(t *testing.T, f Factory) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			h := newHarness(t, f)
			m := newModel(h.clk.now)
			crossCheck(t, h, m, seed, scale(2000, 700))
		})
	}
}

type admitted struct {
	req *weir.Request
	d   weir.Decision
}

func crossCheck(t *testing.T, h *harness, m *model, seed uint64, n int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	keys := []string{"k0", "k1", "k2"}
	leases := []string{"l0", "l1", "l2", "l3"}
	var past []admitted
	for i := range n {
		switch r := rng.IntN(10); {
		case r < 3:
		case r < 8:
			h.clk.add(t, time.Duration(rng.IntN(50_000))*time.Microsecond)
		default:
			h.clk.add(t, time.Duration(rng.IntN(3_000_000))*time.Microsecond)
		}
		switch r := rng.IntN(24); {
		case r >= 20: // a charge (forced take) or a settlement (forced refund)
			chargeOrSettle(t, h, m, rng, keys, past, seed, i)
		case r < 15: // Take (cost 0: peek)
			req := randomRequest(rng, keys, leases)
			mreq := cloneRequest(req)
			d, err := h.store.Take(ctx, req)
			md, merr := m.Take(ctx, mreq)
			if (err != nil) != (merr != nil) {
				t.Fatalf("seed %d op %d at +%v: Take(%s): error %v, model error %v", seed, i, h.elapsed(), describe(req), err, merr)
			}
			if err != nil {
				if !errors.Is(err, weir.ErrInvalid) {
					t.Fatalf("seed %d op %d: Take(%s): error %v does not match ErrInvalid", seed, i, describe(req), err)
				}
				continue
			}
			if msg := sameDecision(d, md); msg != "" {
				t.Fatalf("seed %d op %d at +%v: Take(%s) differs from the model:%s", seed, i, h.elapsed(), describe(req), msg)
			}
			if len(mreq.Statuses) == len(req.Checks) {
				for j := range req.Statuses {
					if !sameStatus(req.Statuses[j], mreq.Statuses[j]) {
						t.Fatalf("seed %d op %d: Take(%s): Statuses[%d] = %+v, model %+v", seed, i, describe(req), j, req.Statuses[j], mreq.Statuses[j])
					}
				}
			}
			if d.Allowed && req.Cost > 0 {
				past = append(past, admitted{req, d})
			}
		case r < 18: // Refund (or release) an earlier admission
			if len(past) == 0 {
				continue
			}
			a := past[rng.IntN(len(past))]
			req := &weir.Request{Checks: a.req.Checks, Cost: a.req.Cost, Lease: a.req.Lease, At: a.d.Time.Add(a.d.Delay)}
			if rng.IntN(4) == 0 {
				req.Cost = 1 + rng.Int64N(3) // refunds of another size
			}
			if err := h.store.Refund(ctx, req); err != nil {
				t.Fatalf("seed %d op %d: Refund(%s): %v", seed, i, describe(req), err)
			}
			_ = m.Refund(ctx, cloneRequest(req))
		default: // Reset
			c := weir.Check{Key: keys[rng.IntN(len(keys))], Limit: modelLimits[rng.IntN(len(modelLimits))]}
			if err := h.store.Reset(ctx, []weir.Check{c}); err != nil {
				t.Fatalf("seed %d op %d: Reset: %v", seed, i, err)
			}
			_ = m.Reset(ctx, []weir.Check{c})
		}
	}
}

// chargeOrSettle is one forced operation of crossCheck: a charge on
// random rate limits (no Concurrency), or the settlement of part of an
// earlier admission, compared with the model.
func chargeOrSettle(t *testing.T, h *harness, m *model, rng *rand.Rand, keys []string, past []admitted, seed uint64, i int) {
	ctx := context.Background()
	if rng.IntN(2) == 0 || len(past) == 0 {
		req := &weir.Request{Force: true}
		for _, j := range rng.Perm(len(modelLimits))[:1+rng.IntN(3)] {
			if l := modelLimits[j]; l.Algorithm != weir.Concurrency {
				req.Checks = append(req.Checks, weir.Check{Key: keys[rng.IntN(len(keys))], Limit: l})
			}
		}
		if len(req.Checks) == 0 {
			return
		}
		req.Cost = rng.Int64N(15)
		if rng.IntN(8) == 0 {
			req.Cost = 1000 // past every debt cap
		}
		if rng.IntN(2) == 0 {
			req.Statuses = make([]weir.Status, len(req.Checks))
		}
		mreq := cloneRequest(req)
		d, err := h.store.Take(ctx, req)
		md, merr := m.Take(ctx, mreq)
		if err != nil || merr != nil {
			t.Fatalf("seed %d op %d: charge(%s): %v, model %v", seed, i, describe(req), err, merr)
		}
		if msg := sameDecision(d, md); msg != "" {
			t.Fatalf("seed %d op %d at +%v: charge(%s) differs from the model:%s", seed, i, h.elapsed(), describe(req), msg)
		}
		for j := range req.Statuses {
			if !sameStatus(req.Statuses[j], mreq.Statuses[j]) {
				t.Fatalf("seed %d op %d: charge(%s): Statuses[%d] = %+v, model %+v", seed, i, describe(req), j, req.Statuses[j], mreq.Statuses[j])
			}
		}
		return
	}
	a := past[rng.IntN(len(past))]
	req := &weir.Request{Cost: rng.Int64N(a.req.Cost + 2), At: a.d.Time.Add(a.d.Delay), Force: true}
	for _, c := range a.req.Checks {
		if c.Limit.Algorithm != weir.Concurrency {
			req.Checks = append(req.Checks, c)
		}
	}
	if len(req.Checks) == 0 {
		return
	}
	if err := h.store.Refund(ctx, req); err != nil {
		t.Fatalf("seed %d op %d: settle(%s): %v", seed, i, describe(req), err)
	}
	_ = m.Refund(ctx, cloneRequest(req))
}

func randomRequest(rng *rand.Rand, keys, leases []string) *weir.Request {
	nc := 1 + rng.IntN(3)
	idx := rng.Perm(len(modelLimits))[:nc]
	req := &weir.Request{}
	capacity := int64(1 << 62)
	for _, i := range idx {
		l := modelLimits[i]
		req.Checks = append(req.Checks, weir.Check{Key: keys[rng.IntN(len(keys))], Limit: l})
		capacity = min(capacity, l.Capacity())
	}
	switch r := rng.IntN(20); {
	case r < 4:
		req.Cost = 0
	case r < 19:
		req.Cost = 1 + rng.Int64N(capacity)
	default:
		req.Cost = capacity + 1 // invalid
	}
	if rng.IntN(4) == 0 {
		req.MaxWait = time.Duration(rng.IntN(1_000_000)) * time.Microsecond
	}
	if rng.IntN(10) != 0 {
		req.Lease = leases[rng.IntN(len(leases))]
		if rng.IntN(3) == 0 {
			req.Queue = time.Duration(1+rng.IntN(2_000_000)) * time.Microsecond
		}
	}
	if rng.IntN(2) == 0 {
		req.Statuses = make([]weir.Status, len(req.Checks))
	}
	return req
}

func cloneRequest(r *weir.Request) *weir.Request {
	c := *r
	c.Checks = slices.Clone(r.Checks)
	if r.Statuses != nil {
		c.Statuses = make([]weir.Status, len(r.Statuses))
	}
	return &c
}

// event is one admission: units that count from at.
type event struct {
	at   time.Duration
	cost int64
}

// testBound (R01) drives each algorithm with a random trace and checks its
// admission bound over every interval between admissions.
func testBound(t *testing.T, f Factory) {
	type bound func(events []event) string
	cases := []struct {
		limit weir.Limit
		check bound
	}{
		{weir.PerSecond(20).WithBurst(7), func(ev []event) string {
			// Any [a, b]: at most Burst + floor((b-a)*Quota/Period).
			return sumBound(ev, func(a, b time.Duration) int64 { return 7 + int64(b-a)*20/int64(time.Second) })
		}},
		{weir.Per(5, 3*time.Second), func(ev []event) string {
			return sumBound(ev, func(a, b time.Duration) int64 { return 5 + int64(b-a)*5/int64(3*time.Second) })
		}},
		{weir.Per(6, time.Second).WithAlgorithm(weir.FixedWindow), func(ev []event) string {
			// Any [a, b]: at most Quota*(ceil(T/Period)+1).
			return sumBound(ev, func(a, b time.Duration) int64 { return 6 * (int64((b-a+time.Second-1)/time.Second) + 1) })
		}},
		{weir.Per(6, time.Second).WithAlgorithm(weir.SlidingWindowLog), func(ev []event) string {
			return windowBound(ev, time.Second, 6)
		}},
		{weir.Per(6, time.Second).WithAlgorithm(weir.SlidingWindowCounter), func(ev []event) string {
			return windowBound(ev, time.Second, 2*6)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.limit.String(), func(t *testing.T) {
			h := newHarness(t, f)
			rng := rand.New(rand.NewPCG(7, uint64(tc.limit.Algorithm)))
			c := weir.Check{Key: "bound", Limit: tc.limit}
			var ev []event
			for range scale(800, 250) {
				if rng.IntN(3) == 0 {
					h.clk.add(t, time.Duration(rng.IntN(400_000))*time.Microsecond)
				} else {
					h.clk.add(t, time.Duration(rng.IntN(20_000))*time.Microsecond)
				}
				req := &weir.Request{Checks: []weir.Check{c}, Cost: 1 + rng.Int64N(min(3, tc.limit.Capacity()))}
				if rng.IntN(4) == 0 {
					req.MaxWait = time.Duration(rng.IntN(300_000)) * time.Microsecond
				}
				d := h.take(req)
				if d.Allowed {
					ev = append(ev, event{h.elapsed() + d.Delay, req.Cost})
				}
				if d.Remaining < 0 || d.RetryAfter < 0 || d.ResetAfter < 0 || d.Delay < 0 {
					t.Fatalf("negative field in %+v", d)
				}
			}
			slices.SortStableFunc(ev, func(a, b event) int { return int(a.at - b.at) })
			if len(ev) < 20 {
				t.Fatalf("only %d admissions: the trace does not exercise the limit", len(ev))
			}
			if msg := tc.check(ev); msg != "" {
				t.Fatalf("bound violated: %s", msg)
			}
		})
	}
}

// sumBound checks, for every pair of admissions i <= j, that the units
// admitted in [ev[i].at, ev[j].at] are at most max(ev[i].at, ev[j].at).
func sumBound(ev []event, maxIn func(a, b time.Duration) int64) string {
	for i := range ev {
		var sum int64
		for j := i; j < len(ev); j++ {
			sum += ev[j].cost
			// Include every admission at the same instant as j.
			if j+1 < len(ev) && ev[j+1].at == ev[j].at {
				continue
			}
			if m := maxIn(ev[i].at, ev[j].at); sum > m {
				return fmt.Sprintf("%d units in [%v, %v], bound %d", sum, ev[i].at, ev[j].at, m)
			}
		}
	}
	return ""
}

// windowBound checks that every window (t-period, t] holds at most quota units.
func windowBound(ev []event, period time.Duration, quota int64) string {
	lo := 0
	var sum int64
	for j := range ev {
		sum += ev[j].cost
		for ev[lo].at <= ev[j].at-period {
			sum -= ev[lo].cost
			lo++
		}
		if (j+1 == len(ev) || ev[j+1].at != ev[j].at) && sum > quota {
			return fmt.Sprintf("%d units in (%v, %v], bound %d", sum, ev[j].at-period, ev[j].at, quota)
		}
	}
	return ""
}

// decade is a period over which refill is negligible (R03's r ≈ 0).
const decade = 10 * 365 * 24 * time.Hour

// testConcurrency (R03): concurrent callers never get more than the
// quota, and exactly the quota when demand exceeds it.
func testConcurrency(t *testing.T, f Factory) {
	limits := []weir.Limit{
		weir.Per(100, decade),
		weir.Per(100, decade).WithAlgorithm(weir.FixedWindow),
		weir.Per(100, decade).WithAlgorithm(weir.SlidingWindowCounter),
		weir.Per(100, decade).WithAlgorithm(weir.SlidingWindowLog),
		weir.Concurrent(100, decade),
	}
	callers := scale(1000, 400)
	for _, l := range limits {
		t.Run(l.String(), func(t *testing.T) {
			h := newHarness(t, f)
			reps := 1
			if l.Algorithm == weir.TokenBucket {
				reps = scale(3, 1)
			}
			for rep := range reps {
				c := weir.Check{Key: fmt.Sprintf("hot-%d", rep), Limit: l}
				got := hammer(t, h.store, callers, func(int) *weir.Request {
					return &weir.Request{Checks: []weir.Check{c}, Cost: 1, Lease: "x"}
				})
				if got[c.Key] != 100 {
					t.Fatalf("rep %d: %d of %d callers admitted, want exactly 100", rep, got[c.Key], callers)
				}
			}
		})
	}
	t.Run("64 keys", func(t *testing.T) {
		h := newHarness(t, f)
		l := weir.Per(10, decade).WithName("per-key")
		got := hammer(t, h.store, 64*20, func(i int) *weir.Request {
			return &weir.Request{Checks: []weir.Check{{Key: "key-" + fmt.Sprint(i%64), Limit: l}}, Cost: 1}
		})
		for k := range 64 {
			if n := got["key-"+fmt.Sprint(k)]; n != 10 {
				t.Errorf("key-%d: %d admitted, want exactly 10", k, n)
			}
		}
	})
	t.Run("multi-limit", func(t *testing.T) {
		// 20 users of at most 5 each under one tenant limit of 37: a
		// request admitted by the user but denied by the tenant charges
		// neither.
		h := newHarness(t, f)
		user := weir.Per(5, decade).WithName("user")
		tenant := weir.Per(37, decade).WithName("tenant")
		got := hammer(t, h.store, 20*8, func(i int) *weir.Request {
			return &weir.Request{Checks: []weir.Check{
				{Key: "u" + fmt.Sprint(i%20), Limit: user},
				{Key: "t", Limit: tenant},
			}, Cost: 1}
		})
		total := 0
		for u, n := range got {
			total += n
			if n > 5 {
				t.Errorf("user %s: %d admitted under a limit of 5", u, n)
			}
		}
		if total != 37 {
			t.Fatalf("%d admitted under a tenant limit of 37", total)
		}
		var charged int64
		for u := range 20 {
			d := h.peek(weir.Check{Key: "u" + fmt.Sprint(u), Limit: user})
			charged += 5 - d.Remaining
		}
		if charged != 37 {
			t.Fatalf("users were charged %d units in all, want 37: denied requests were charged", charged)
		}
	})
}

// hammer runs n concurrent Takes, released at once, and counts the
// admissions per key of the first check.
func hammer(t *testing.T, s weir.Store, n int, req func(i int) *weir.Request) map[string]int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
		got   = map[string]int{}
		fails atomic.Int64
		first atomic.Value
	)
	for i := range n {
		r := req(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := s.Take(context.Background(), r)
			if err != nil {
				fails.Add(1)
				first.CompareAndSwap(nil, err)
				return
			}
			if d.Allowed {
				mu.Lock()
				got[r.Checks[0].Key]++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := fails.Load(); n > 0 {
		t.Fatalf("%d Takes failed, first: %v", n, first.Load())
	}
	return got
}

// testLimiter (R08) runs a weir.Limiter over the store: waits that cannot
// succeed fail at once and charge nothing.
func testLimiter(t *testing.T, f Factory) {
	h := newHarness(t, f)
	lim, err := weir.NewLimiter(h.store, weir.PerDay(1).WithName("daily"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	peek := func() weir.Decision {
		t.Helper()
		d, err := lim.Peek(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := lim.Wait(cancelled, "w"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context: %v, want context.Canceled", err)
	}
	if d := peek(); d.Remaining != 1 {
		t.Fatalf("a cancelled Wait charged: remaining %d, want 1", d.Remaining)
	}
	if d, err := lim.Wait(ctx, "w"); err != nil || !d.Allowed || d.Delay != 0 {
		t.Fatalf("Wait on a full bucket: %+v, %v", d, err)
	}
	before := peek()
	// The next unit is a fake day away: a one-minute deadline cannot be
	// met, so Wait must fail at once, without sleeping.
	dl, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	_, err = lim.Wait(dl, "w")
	if !errors.Is(err, weir.ErrLimited) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an impossible deadline: %v, want ErrLimited and DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("Wait with an impossible deadline slept %v", el)
	}
	if d := peek(); d.Remaining != 0 || !closeDur(d.ResetAfter, before.ResetAfter) {
		t.Fatalf("a failed Wait charged: %+v, before %+v", d, before)
	}

	// MaxWait: give up at once when the wait would exceed it.
	fast, err := weir.NewLimiter(h.store, weir.PerSecond(10).WithBurst(2).WithName("fast"), weir.MaxWait(150*ms))
	if err != nil {
		t.Fatal(err)
	}
	r1, err := fast.Reserve(ctx, "r", 2)
	if err != nil || !r1.OK() || r1.Decision().Delay != 0 {
		t.Fatalf("Reserve 2 on a full bucket: %+v, %v", r1, err)
	}
	r2, err := fast.Reserve(ctx, "r", 1)
	if err != nil || !r2.OK() || !closeDur(r2.Decision().Delay, 100*ms) {
		t.Fatalf("Reserve 1 more: %+v, %v; want OK with Delay 100ms", r2, err)
	}
	r3, err := fast.Reserve(ctx, "r", 1)
	if err != nil || r3.OK() {
		t.Fatalf("Reserve beyond MaxWait: %+v, %v; want not OK", r3, err)
	}
	var le *weir.LimitError
	if _, err := fast.Wait(ctx, "r"); !errors.As(err, &le) || le.Cause != nil {
		t.Fatalf("Wait beyond MaxWait: %v, want a *LimitError without cause", err)
	}
	// Cancelling r2 gives its unit back; cancelling twice does nothing.
	for range 2 {
		if err := r2.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := fast.Peek(ctx, "r"); d.Allowed || !closeDur(d.ResetAfter, 200*ms) {
		t.Fatalf("after Cancel: %+v, want the bucket empty until 200ms", d)
	}
	if err := r1.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := fast.Peek(ctx, "r"); d.Remaining != 2 {
		t.Fatalf("after cancelling every reservation: remaining %d, want 2 (never above burst)", d.Remaining)
	}

	// Concurrency through TryAcquire / Release.
	conc, err := weir.NewLimiter(h.store, weir.Concurrent(2, time.Minute).WithName("slots"))
	if err != nil {
		t.Fatal(err)
	}
	l1, _, err := conc.TryAcquire(ctx, "c", 2)
	if err != nil || l1 == nil {
		t.Fatalf("TryAcquire 2 of 2: %v", err)
	}
	if l, d, err := conc.TryAcquire(ctx, "c", 1); err != nil || l != nil || d.Allowed {
		t.Fatalf("TryAcquire while full: lease %v, %+v, %v", l, d, err)
	}
	if _, err := conc.Acquire(cancelled, "c", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v", err)
	}
	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _, err := conc.TryAcquire(ctx, "c", 2); err != nil || l == nil {
		t.Fatalf("TryAcquire after Release: %v", err)
	}
}

// testIdleThenBurst (R09): after an idle hour, a herd of callers gets at
// most the burst at once, then the rate.
func testIdleThenBurst(t *testing.T, f Factory) {
	h := newHarness(t, f)
	c := weir.Check{Key: "herd", Limit: weir.PerSecond(10).WithBurst(100).WithName("herd")}
	h.take(&weir.Request{Checks: []weir.Check{c}, Cost: 100})
	h.clk.add(t, time.Hour)
	n := scale(10_000, 2_000)
	got := hammer(t, h.store, n, func(int) *weir.Request {
		return &weir.Request{Checks: []weir.Check{c}, Cost: 1}
	})
	if got["herd"] != 100 {
		t.Fatalf("after an idle hour, %d of %d callers admitted at one instant, want exactly the burst 100", got["herd"], n)
	}
	// One second later, only the refill: 10 more.
	h.clk.add(t, time.Second)
	got = hammer(t, h.store, 200, func(int) *weir.Request {
		return &weir.Request{Checks: []weir.Check{c}, Cost: 1}
	})
	if got["herd"] != 10 {
		t.Fatalf("one second after the herd, %d admitted, want 10 (the rate)", got["herd"])
	}
}
