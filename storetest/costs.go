package storetest

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// Costs known after the work: forced charges (Request.Force on a Take),
// debt, the debt cap, and settlements (Request.Force on a Refund). See
// docs/costs.md.

// chargeStep is one line of a charge vector: at base+at, a take
// (force false) or a charge (force true) of cost, expecting w, debt and
// clamped.
type chargeStep struct {
	at      time.Duration
	force   bool
	cost    int64
	w       want
	debt    int64
	clamped bool
}

func charge(at time.Duration, cost, remaining int64, retry, reset time.Duration, debt int64, clamped bool) chargeStep {
	return chargeStep{at, true, cost, want{allowed: true, remaining: remaining, retryAfter: retry, resetAfter: reset}, debt, clamped}
}

func ctake(at time.Duration, cost int64, allowed bool, remaining int64, retry, reset time.Duration) chargeStep {
	return chargeStep{at: at, cost: cost, w: want{allowed: allowed, remaining: remaining, retryAfter: retry, resetAfter: reset}}
}

// chargeVectors: every limit is 10 per 10 s (the token bucket: I = 1 s,
// τ = 10 s); base is a window boundary. The values follow the rules of
// internal/algo/force.go: a charge reports what a one-unit peek sees after
// it, and Debt = units beyond empty, rounded up.
var chargeVectors = []struct {
	name  string
	limit weir.Limit
	steps []chargeStep
}{
	{"token-bucket debt", weir.Per(10, 10*time.Second), []chargeStep{
		charge(0, 25, 0, 16*time.Second, 25*time.Second, 15, false), // TAT 25s; one unit at 26-10 = 16s
		ctake(15*time.Second, 1, false, 0, time.Second, 10*time.Second),
		ctake(16*time.Second, 1, true, 0, 0, 10*time.Second),
		charge(16*time.Second, 0, 0, time.Second, 10*time.Second, 0, false), // cost 0: a peek
	}},
	{"token-bucket max debt", weir.Per(10, 10*time.Second).WithMaxDebt(5), []chargeStep{
		charge(0, 3, 7, 0, 3*time.Second, 0, false),
		charge(0, 25, 0, 6*time.Second, 15*time.Second, 5, true), // TAT capped at 10s + 5 I
		charge(2*time.Second, 1, 0, 5*time.Second, 14*time.Second, 4, false),
	}},
	{"fixed-window debt ends with the window", weir.Per(10, 10*time.Second).WithAlgorithm(weir.FixedWindow), []chargeStep{
		ctake(0, 4, true, 6, 0, 10*time.Second),
		charge(time.Second, 20, 0, 9*time.Second, 9*time.Second, 14, false),
		ctake(9*time.Second, 1, false, 0, time.Second, time.Second),
		ctake(10*time.Second, 10, true, 0, 0, 10*time.Second),
	}},
	{"fixed-window max debt", weir.Per(10, 10*time.Second).WithAlgorithm(weir.FixedWindow).WithMaxDebt(5), []chargeStep{
		charge(time.Second, 30, 0, 9*time.Second, 9*time.Second, 5, true),
	}},
	{"sliding-counter debt weighs on the next window", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowCounter), []chargeStep{
		// next window: prev 25 weighs 25·(10−e)/10 + 1 ≤ 10 from e = 6.4s
		charge(0, 25, 0, 16400*time.Millisecond, 20*time.Second, 15, false),
		ctake(16399*time.Millisecond, 1, false, 0, time.Millisecond, 3601*time.Millisecond),
		ctake(16400*time.Millisecond, 1, true, 0, 0, 13600*time.Millisecond),
	}},
	{"sliding-counter max debt", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowCounter).WithMaxDebt(2), []chargeStep{
		ctake(0, 10, true, 0, 0, 20*time.Second),
		// at 15s the estimate is 10·5/10 = 5: room for 7 up to 12
		charge(15*time.Second, 20, 0, 3*time.Second, 15*time.Second, 2, true),
	}},
	{"sliding-log debt leaves with the event", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowLog), []chargeStep{
		ctake(0, 4, true, 6, 0, 10*time.Second),
		charge(time.Second, 20, 0, 10*time.Second, 10*time.Second, 14, false), // 4 leave at 10s: still 20
		ctake(10*time.Second, 1, false, 0, time.Second, time.Second),
		ctake(11*time.Second, 10, true, 0, 0, 10*time.Second),
	}},
	{"sliding-log max debt", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowLog).WithMaxDebt(1), []chargeStep{
		ctake(0, 4, true, 6, 0, 10*time.Second),
		charge(time.Second, 20, 0, 10*time.Second, 10*time.Second, 1, true), // into debt: the 4 at 0 merge into the event at 1s
		ctake(10*time.Second, 1, false, 0, time.Second, time.Second),
	}},
	{"sliding-log in debt keeps one event", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowLog), []chargeStep{
		ctake(0, 3, true, 7, 0, 10*time.Second),
		charge(time.Second, 7, 0, 9*time.Second, 10*time.Second, 0, false),
		charge(2*time.Second, 1, 0, 8*time.Second, 10*time.Second, 1, false), // the 7 at 1s move to 2s
		charge(3*time.Second, 1, 0, 7*time.Second, 10*time.Second, 2, false),
		ctake(10*time.Second-time.Microsecond, 1, false, 0, time.Microsecond, 3*time.Second+time.Microsecond),
		ctake(10*time.Second, 1, true, 0, 0, 10*time.Second),
	}},
}

// testCharge runs the charge vectors, a charge over several limits, and
// the invalid forced requests.
func testCharge(t *testing.T, f Factory) {
	for _, v := range chargeVectors {
		t.Run(v.name, func(t *testing.T) {
			h := newHarness(t, f)
			c := weir.Check{Key: "charge", Limit: v.limit}
			for i, st := range v.steps {
				h.clk.set(t, st.at)
				d := h.take(&weir.Request{Checks: []weir.Check{c}, Cost: st.cost, Force: st.force})
				if msg := st.w.diff(d); msg != "" || d.Debt != st.debt || d.Clamped != st.clamped {
					t.Fatalf("step %d (at %v cost %d force %v):%s Debt=%d Clamped=%v want %d %v", i, st.at, st.cost, st.force, msg, d.Debt, d.Clamped, st.debt, st.clamped)
				}
			}
		})
	}
	t.Run("several limits", func(t *testing.T) {
		h := newHarness(t, f)
		checks := []weir.Check{
			{Key: "m", Limit: weir.Per(100, 10*time.Second).WithName("tb")},
			{Key: "m", Limit: weir.Per(10, 10*time.Second).WithAlgorithm(weir.FixedWindow).WithMaxDebt(1).WithName("fixed")},
			{Key: "m", Limit: weir.Per(50, 10*time.Second).WithAlgorithm(weir.SlidingWindowLog).WithName("log")},
		}
		st := make([]weir.Status, 3)
		d := h.take(&weir.Request{Checks: checks, Cost: 20, Force: true, Statuses: st})
		if !d.Allowed || d.Limit.Name != "fixed" || d.Debt != 1 || !d.Clamped || d.RetryAfter != 10*time.Second {
			t.Fatalf("decision %+v: want the fixed window, debt 1, clamped", d)
		}
		if st[0].Remaining != 80 || st[0].Clamped || !st[1].Clamped || st[1].Debt != 1 || st[2].Remaining != 30 || !st[0].Allowed {
			t.Fatalf("statuses %+v", st)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		h := newHarness(t, f)
		ctx := context.Background()
		_, err := h.store.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.Concurrent(2, time.Minute)}}, Cost: 1, Lease: "a", Force: true})
		wantField(t, err, "Algorithm", weir.ErrConcurrency)
		_, err = h.store.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(1)}}, Cost: weir.MaxDebtUnits + 1, Force: true})
		wantField(t, err, "cost", nil)
		_, err = h.store.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(1).WithMaxDebt(-1)}}, Cost: 1, Force: true})
		wantField(t, err, "MaxDebt", nil)
		// A charge above the capacity and at MaxDebtUnits is valid.
		d, err := h.store.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(1)}}, Cost: weir.MaxDebtUnits, Force: true})
		if err != nil || !d.Allowed || !d.Clamped {
			t.Fatalf("charge of MaxDebtUnits: %+v %v", d, err)
		}
	})
}

// testSettle: a settlement (a forced Refund) gives back even after the
// reserved instant, never above the full quota; a window only while it
// is current (the counter: or the previous one).
func testSettle(t *testing.T, f Factory) {
	per := weir.Per(10, 10*time.Second)
	cases := []struct {
		name      string
		limit     weir.Limit
		take      int64         // at 0
		settleAt  time.Duration // after 0
		give      int64
		remaining int64 // a peek right after
	}{
		{"token-bucket after acting", per, 8, time.Second, 5, 8},
		{"token-bucket never above the burst", per, 8, 5 * time.Second, 8, 10},
		{"token-bucket give more than taken", per, 8, time.Second, 1000, 10},
		{"fixed same window", per.WithAlgorithm(weir.FixedWindow), 8, time.Second, 5, 7},
		{"fixed next window", per.WithAlgorithm(weir.FixedWindow), 8, 10 * time.Second, 5, 10},
		{"counter previous window", per.WithAlgorithm(weir.SlidingWindowCounter), 10, 15 * time.Second, 6, 8},
		{"log", per.WithAlgorithm(weir.SlidingWindowLog), 8, time.Second, 5, 7},
		{"log more than taken", per.WithAlgorithm(weir.SlidingWindowLog), 8, time.Second, 50, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, f)
			ck := weir.Check{Key: "settle", Limit: c.limit}
			d := h.take(&weir.Request{Checks: []weir.Check{ck}, Cost: c.take})
			if !d.Allowed {
				t.Fatalf("take denied: %+v", d)
			}
			h.clk.set(t, c.settleAt)
			h.refund(&weir.Request{Checks: []weir.Check{ck}, Cost: c.give, At: d.Time, Force: true})
			if p := h.peek(ck); p.Remaining != c.remaining {
				t.Fatalf("remaining %d, want %d (%+v)", p.Remaining, c.remaining, p)
			}
		})
	}
	t.Run("after reset", func(t *testing.T) {
		h := newHarness(t, f)
		ck := weir.Check{Key: "settle", Limit: per}
		d := h.take(&weir.Request{Checks: []weir.Check{ck}, Cost: 8})
		h.reset(ck)
		h.clk.set(t, time.Second)
		h.refund(&weir.Request{Checks: []weir.Check{ck}, Cost: 8, At: d.Time, Force: true})
		if p := h.peek(ck); p.Remaining != 10 || p.ResetAfter != 0 {
			t.Fatalf("after reset and settle: %+v, want full", p)
		}
	})
}

// testDebtBound drives random takes, charges and settlements through the
// store on each algorithm and checks, with bookkeeping of its own, the
// bound of docs/algorithms.md ("Debt"):
//
//   - token bucket: over events i..j where j is an admitted take, units
//     taken and charged minus units given back ≤ Burst + ⌊(t_j−t_i)/I⌋;
//   - fixed window: after each admitted take, the window's units ≤ Quota;
//   - counter: after each admitted take, prev·(Period−e)/Period + curr ≤ Quota;
//   - log: after each admitted take at s, the units in (s−Period, s] ≤ Quota.
//
// It runs without a debt cap, so every charge is recorded whole (a cap
// only records less); the vectors of testCharge check the cap.
func testDebtBound(t *testing.T, f Factory) {
	limits := []weir.Limit{
		weir.Per(7, 3*time.Second).WithBurst(4),
		weir.Per(5, 2*time.Second).WithAlgorithm(weir.FixedWindow),
		weir.Per(6, time.Second).WithAlgorithm(weir.SlidingWindowCounter),
		weir.Per(4, time.Second).WithAlgorithm(weir.SlidingWindowLog),
	}
	for _, l := range limits {
		t.Run(l.Algorithm.String(), func(t *testing.T) {
			for seed := range uint64(scale(3, 1)) {
				debtTrace(t, f, l, seed, scale(300, 120))
			}
		})
	}
}

type debtEvent struct {
	at      time.Duration // since base
	units   int64         // taken or charged (+), given back (−)
	take    bool          // an admitted take
	charged time.Duration // the instant the units count at
}

func debtTrace(t *testing.T, f Factory, l weir.Limit, seed uint64, n int) {
	h := newHarness(t, f)
	rng := rand.New(rand.NewPCG(seed, 0xdeb7))
	ck := weir.Check{Key: fmt.Sprintf("debt%d", seed), Limit: l}
	var evs []debtEvent
	type taken struct {
		at    time.Duration
		units int64
	}
	var takes []taken
	unit := l.Period / time.Duration(l.Quota)
	for i := range n {
		switch rng.IntN(4) {
		case 0:
		case 1, 2:
			h.clk.add(t, time.Duration(rng.Int64N(int64(2*unit/time.Microsecond)))*time.Microsecond)
		default:
			h.clk.add(t, time.Duration(rng.Int64N(int64(2*l.Period/time.Microsecond)))*time.Microsecond)
		}
		now := h.elapsed()
		switch op := rng.IntN(10); {
		case op < 5:
			cost := 1 + rng.Int64N(l.Capacity())
			if d := h.take(&weir.Request{Checks: []weir.Check{ck}, Cost: cost}); d.Allowed {
				evs = append(evs, debtEvent{at: now, units: cost, take: true, charged: now})
				takes = append(takes, taken{now, cost})
				if msg := debtWindowBound(l, evs, now); msg != "" {
					t.Fatalf("seed %d op %d: %s", seed, i, msg)
				}
			}
		case op < 8:
			cost := rng.Int64N(3*l.Quota + 1)
			d := h.take(&weir.Request{Checks: []weir.Check{ck}, Cost: cost, Force: true})
			if !d.Allowed || d.Clamped {
				t.Fatalf("seed %d op %d: charge %d: %+v", seed, i, cost, d)
			}
			evs = append(evs, debtEvent{at: now, units: cost, charged: now})
		default:
			if len(takes) == 0 {
				continue
			}
			tk := &takes[rng.IntN(len(takes))]
			give := rng.Int64N(tk.units + 1)
			h.refund(&weir.Request{Checks: []weir.Check{ck}, Cost: give, At: base.Add(tk.at), Force: true})
			if g := givenBack(l, tk.at, now, give, evs); g > 0 {
				evs = append(evs, debtEvent{at: now, units: -g, charged: tk.at})
				tk.units -= g
			}
		}
	}
	if l.Algorithm == weir.TokenBucket {
		if msg := bucketBound(l, evs); msg != "" {
			t.Fatalf("seed %d: %s", seed, msg)
		}
	}
}

func windowOf(at, period time.Duration) time.Duration {
	// base is a boundary of every period the suite uses.
	return at - at%period
}

// givenBack is what a settlement gives back by the documented rules: the
// bucket all of it (a full bucket takes less, which only helps the bound);
// a window only while the window of at is live, at most what it holds;
// the log at most what its event at at holds.
func givenBack(l weir.Limit, at, now time.Duration, give int64, evs []debtEvent) int64 {
	sum := func(match func(time.Duration) bool) (u int64) {
		for _, e := range evs {
			if match(e.charged) {
				u += e.units
			}
		}
		return u
	}
	wa, wn := windowOf(at, l.Period), windowOf(now, l.Period)
	switch l.Algorithm {
	case weir.TokenBucket:
		return give
	case weir.FixedWindow:
		if wa != wn {
			return 0
		}
	case weir.SlidingWindowCounter:
		if wa != wn && wa != wn-l.Period {
			return 0
		}
	case weir.SlidingWindowLog:
		return min(give, sum(func(c time.Duration) bool { return c == at }))
	}
	return min(give, max(0, sum(func(c time.Duration) bool { return windowOf(c, l.Period) == wa })))
}

// debtWindowBound checks a window's bound after an admitted take at now.
func debtWindowBound(l weir.Limit, evs []debtEvent, now time.Duration) string {
	sum := func(from, to time.Duration) (u int64) {
		for _, e := range evs {
			if e.charged >= from && e.charged <= to {
				u += e.units
			}
		}
		return u
	}
	ws := windowOf(now, l.Period)
	switch l.Algorithm {
	case weir.FixedWindow:
		if u := sum(ws, now); u > l.Quota {
			return fmt.Sprintf("fixed window at +%v holds %d > %d", now, u, l.Quota)
		}
	case weir.SlidingWindowCounter:
		curr, prev := sum(ws, now), sum(ws-l.Period, ws-1)
		e := int64(now - ws)
		lhs := new(big.Int).Mul(big.NewInt(max(prev, 0)), big.NewInt(int64(l.Period)-e))
		lhs.Add(lhs, new(big.Int).Mul(big.NewInt(curr), big.NewInt(int64(l.Period))))
		if lhs.Cmp(new(big.Int).Mul(big.NewInt(l.Quota), big.NewInt(int64(l.Period)))) > 0 {
			return fmt.Sprintf("counter at +%v: prev %d curr %d over %d", now, prev, curr, l.Quota)
		}
	case weir.SlidingWindowLog:
		if u := sum(now-l.Period+1, now); u > l.Quota {
			return fmt.Sprintf("log at +%v holds %d > %d", now, u, l.Quota)
		}
	}
	return ""
}

// bucketBound checks every run of events that ends at an admitted take.
func bucketBound(l weir.Limit, evs []debtEvent) string {
	for j := range evs {
		if !evs[j].take {
			continue
		}
		var u int64
		for i := j; i >= 0; i-- {
			u += evs[i].units
			d := evs[j].at - evs[i].at
			b := l.Capacity() + int64(d)*l.Quota/int64(l.Period) // d ≤ a few minutes: no overflow
			if u > b {
				return fmt.Sprintf("events %d..%d over %v: %d units > %d", i, j, d, u, b)
			}
		}
	}
	return ""
}
