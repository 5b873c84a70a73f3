package algo

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// t0 is a window boundary for every period the force tests use.
const t0 = 1_000_000 * sec

// TestForce: forced charges on each algorithm, one line per case: the
// Result (the limit after the charge, as a peek of one unit sees it), and
// Clamped at the debt cap.
func TestForce(t *testing.T) {
	tb := Params{Kind: TokenBucket, Quota: 10, Period: 10 * sec} // I = 1s, τ = 10s
	fw := Params{Kind: FixedWindow, Quota: 10, Period: 10 * sec}
	sc := Params{Kind: SlidingWindowCounter, Quota: 10, Period: 10 * sec}
	sl := Params{Kind: SlidingWindowLog, Quota: 10, Period: 10 * sec}
	capped := func(p Params, d int64) Params { p.MaxDebt = d; return p }
	type step struct {
		at, cost int64
		force    bool
		want     Result
	}
	cases := []struct {
		name  string
		p     Params
		steps []step
	}{
		{"tb debt", tb, []step{
			{0, 25, true, Result{Allowed: true, RetryAfter: 16 * sec, ResetAfter: 25 * sec, Debt: 15}},
			{15 * sec, 1, false, Result{RetryAfter: sec, ResetAfter: 10 * sec}},
			{16 * sec, 1, false, Result{Allowed: true, ResetAfter: 10 * sec}},
		}},
		{"tb within quota", tb, []step{
			{0, 4, true, Result{Allowed: true, Remaining: 6, ResetAfter: 4 * sec}},
			{0, 6, true, Result{Allowed: true, RetryAfter: sec, ResetAfter: 10 * sec}},
		}},
		{"tb fractional debt rounds up", Params{Kind: TokenBucket, Quota: 3, Period: 10 * sec}, []step{
			{0, 4, true, Result{Allowed: true, RetryAfter: 6666666667, ResetAfter: 13333333334, Debt: 1}},
			{sec, 0, true, Result{Allowed: true, RetryAfter: 5666666667, ResetAfter: 12333333334, Debt: 1}},
		}},
		{"tb capped", capped(tb, 5), []step{
			{0, 25, true, Result{Allowed: true, RetryAfter: 6 * sec, ResetAfter: 15 * sec, Debt: 5, Clamped: true}},
			{0, 1, true, Result{Allowed: true, RetryAfter: 6 * sec, ResetAfter: 15 * sec, Debt: 5, Clamped: true}},
			{2 * sec, 1, true, Result{Allowed: true, RetryAfter: 5 * sec, ResetAfter: 14 * sec, Debt: 4}},
		}},
		{"tb max charge, no cap", tb, []step{
			{0, MaxDebtUnits, true, Result{Allowed: true, RetryAfter: MaxPeriod + sec, ResetAfter: MaxPeriod + 10*sec, Debt: MaxPeriod / sec, Clamped: true}},
		}},
		{"fixed debt ends with the window", fw, []step{
			{0, 25, true, Result{Allowed: true, RetryAfter: 10 * sec, ResetAfter: 10 * sec, Debt: 15}},
			{9 * sec, 1, false, Result{RetryAfter: sec, ResetAfter: sec}},
			{10 * sec, 10, false, Result{Allowed: true, ResetAfter: 10 * sec}},
		}},
		{"fixed capped", capped(fw, 5), []step{
			{sec, 3, false, Result{Allowed: true, Remaining: 7, ResetAfter: 9 * sec}},
			{2 * sec, 20, true, Result{Allowed: true, RetryAfter: 8 * sec, ResetAfter: 8 * sec, Debt: 5, Clamped: true}},
		}},
		{"counter debt weighs on the next window", sc, []step{
			{0, 25, true, Result{Allowed: true, RetryAfter: 16400 * ms, ResetAfter: 20 * sec, Debt: 15}},
			{16400*ms - 1, 1, false, Result{RetryAfter: 1, ResetAfter: 3600*ms + 1}},
			{16400 * ms, 1, false, Result{Allowed: true, ResetAfter: 13600 * ms}},
		}},
		{"counter capped by the estimate", capped(sc, 2), []step{
			{0, 10, false, Result{Allowed: true, ResetAfter: 20 * sec}},
			{15 * sec, 20, true, Result{Allowed: true, RetryAfter: 3 * sec, ResetAfter: 15 * sec, Debt: 2, Clamped: true}},
		}},
		{"log in debt keeps one event", sl, []step{
			{0, 3, false, Result{Allowed: true, Remaining: 7, ResetAfter: 10 * sec}},
			{sec, 7, true, Result{Allowed: true, RetryAfter: 9 * sec, ResetAfter: 10 * sec}},
			// into debt: the 7 at 1s merge with the charge at 2s, then 3s;
			// the 3 at 0 still leave at 10s
			{2 * sec, 1, true, Result{Allowed: true, RetryAfter: 8 * sec, ResetAfter: 10 * sec, Debt: 1}},
			{3 * sec, 1, true, Result{Allowed: true, RetryAfter: 7 * sec, ResetAfter: 10 * sec, Debt: 2}},
			{10*sec - 1, 1, false, Result{RetryAfter: 1, ResetAfter: 3*sec + 1}},
			{10 * sec, 1, false, Result{Allowed: true, ResetAfter: 10 * sec}},
		}},
		{"log debt leaves with the event", sl, []step{
			{0, 25, true, Result{Allowed: true, RetryAfter: 10 * sec, ResetAfter: 10 * sec, Debt: 15}},
			{10*sec - 1, 1, false, Result{RetryAfter: 1, ResetAfter: 1}},
			{10 * sec, 10, false, Result{Allowed: true, ResetAfter: 10 * sec}},
		}},
		{"log capped", capped(sl, 1), []step{
			{0, 4, false, Result{Allowed: true, Remaining: 6, ResetAfter: 10 * sec}},
			// into debt: the 4 at 0 merge into the charge's event at 1s
			{sec, 20, true, Result{Allowed: true, RetryAfter: 10 * sec, ResetAfter: 10 * sec, Debt: 1, Clamped: true}},
			{10 * sec, 1, false, Result{RetryAfter: sec, ResetAfter: sec}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.p.Validate(); err != nil {
				t.Fatal(err)
			}
			s := &State{}
			for i, st := range c.steps {
				var got Result
				if st.force {
					_, got = Force([]Params{c.p}, []*State{s}, t0+st.at, st.cost, nil)
				} else {
					_, _, got = Decide([]Params{c.p}, []*State{s}, t0+st.at, st.cost, 0, "", nil)
				}
				if got != st.want {
					t.Fatalf("step %d (at %v cost %d force %v): got %+v, want %+v", i, st.at, st.cost, st.force, got, st.want)
				}
			}
		})
	}
}

// TestForceDecider: over several limits the Decision is the limit worst
// off after the charge, and Clamped if any limit clamped.
func TestForceDecider(t *testing.T) {
	ps := []Params{
		{Kind: TokenBucket, Quota: 100, Period: 10 * sec},
		{Kind: FixedWindow, Quota: 10, Period: 10 * sec, MaxDebt: 1},
		{Kind: SlidingWindowLog, Quota: 50, Period: 10 * sec},
		{Kind: SlidingWindowLog, Quota: 5, Period: 20 * sec, MaxDebt: 100}, // decides; the clamp came before
	}
	ss := []*State{{}, {}, {}, {}}
	out := make([]Result, 4)
	k, agg := Force(ps, ss, t0, 20, out)
	if k != 3 || !agg.Clamped || agg.Debt != 15 || agg.RetryAfter != 20*sec {
		t.Fatalf("decider %d %+v, want the last log, clamped (by the fixed window), debt 15", k, agg)
	}
	if out[0].Remaining != 80 || out[2].Remaining != 30 || out[0].Clamped || !out[1].Clamped {
		t.Fatalf("statuses %+v", out)
	}
}

// TestSettle: a settlement gives back even after the reservation's
// instant, never above the full quota; the windows only in their window.
func TestSettle(t *testing.T) {
	cases := []struct {
		name          string
		p             Params
		take          int64 // at t0
		settleAt      int64 // after t0
		give          int64
		wantRemaining int64 // a peek right after
	}{
		{"tb after acting", Params{Kind: TokenBucket, Quota: 10, Period: 10 * sec}, 8, sec, 5, 8},
		{"tb never above the burst", Params{Kind: TokenBucket, Quota: 10, Period: 10 * sec}, 8, 5 * sec, 8, 10},
		{"tb huge give", Params{Kind: TokenBucket, Quota: 10, Period: 10 * sec}, 8, sec, MaxDebtUnits, 10},
		{"fixed same window", Params{Kind: FixedWindow, Quota: 10, Period: 10 * sec}, 8, sec, 5, 7},
		{"fixed next window", Params{Kind: FixedWindow, Quota: 10, Period: 10 * sec}, 8, 10 * sec, 5, 10},
		{"counter previous window", Params{Kind: SlidingWindowCounter, Quota: 10, Period: 10 * sec}, 10, 15 * sec, 6, 8},
		{"log", Params{Kind: SlidingWindowLog, Quota: 10, Period: 10 * sec}, 8, sec, 5, 7},
		{"log more than taken", Params{Kind: SlidingWindowLog, Quota: 10, Period: 10 * sec}, 8, sec, 50, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &State{}
			if ok, _, _ := Decide([]Params{c.p}, []*State{s}, t0, c.take, 0, "", nil); !ok {
				t.Fatal("take denied")
			}
			Settle(&c.p, s, t0+c.settleAt, t0, c.give, "")
			if r := Check(&c.p, s, t0+c.settleAt, 0, 0); r.Remaining != c.wantRemaining {
				t.Fatalf("remaining %d, want %d (%+v)", r.Remaining, c.wantRemaining, r)
			}
		})
	}
}

// TestDebtBound (R-debt): random traces of takes, forced charges and
// settlements on every algorithm (no debt cap, so each charge is recorded
// whole), checked by bookkeeping kept apart from the algorithms:
//
//   - token bucket: for events i..j where j is an admitted take, the units
//     taken and charged in i..j minus those given back in i..j are at most
//     Burst + ⌊(t_j − t_i)·Quota/Period⌋;
//   - fixed window: after every admitted take, the units taken and charged
//     in its window minus those given back there are at most Quota;
//   - counter: after every admitted take, prev·(Period−e)/Period + curr
//     ≤ Quota, with prev and curr the same sums for the two windows;
//   - log: after every admitted take at s, the units recorded in
//     (s−Period, s] are at most Quota.
//
// A settlement gives back part of an earlier take (any instant for the
// bucket; the windows only while that window is current or, for the
// counter, the previous one; the log from its event).
func TestDebtBound(t *testing.T) {
	seeds := propSeeds() / 5
	for _, k := range []Kind{TokenBucket, FixedWindow, SlidingWindowCounter, SlidingWindowLog} {
		t.Run(kindName(k), func(t *testing.T) {
			for seed := range uint64(seeds) {
				debtTrace(t, seed, k)
				if t.Failed() {
					t.Fatalf("seed %d", seed)
				}
			}
		})
	}
}

func kindName(k Kind) string {
	return [...]string{"token-bucket", "sliding-log", "sliding-window", "fixed-window", "concurrency"}[k]
}

type debtEvent struct {
	at, units int64 // units: + taken or charged, − given back
	take      bool  // an admitted take
	charged   int64 // for the windows: the instant the units count at
}

func debtTrace(t *testing.T, seed uint64, k Kind) {
	r := rand.New(rand.NewPCG(seed, 0xdeb7))
	p := randParams(r, k)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &State{}
	now := t0 + r.Int64N(p.Period)
	var evs []debtEvent
	type taken struct{ at, units int64 }
	var takes []taken
	for range 200 {
		now += randStep(r, &p)
		switch op := r.IntN(10); {
		case op < 5: // take
			cost := 1 + r.Int64N(p.Capacity())
			if ok, _, _ := Decide([]Params{p}, []*State{s}, now, cost, 0, "", nil); ok {
				evs = append(evs, debtEvent{at: now, units: cost, take: true, charged: now})
				takes = append(takes, taken{now, cost})
				checkWindow(t, &p, evs, now)
			}
		case op < 8: // force
			cost := r.Int64N(3*p.Quota + 1)
			_, res := Force([]Params{p}, []*State{s}, now, cost, nil)
			if res.Clamped || !res.Allowed {
				t.Fatalf("charge of %d clamped or denied: %+v", cost, res)
			}
			evs = append(evs, debtEvent{at: now, units: cost, charged: now})
		default: // settle part of an earlier take
			if len(takes) == 0 {
				continue
			}
			i := r.IntN(len(takes))
			tk := &takes[i]
			give := r.Int64N(tk.units + 1)
			Settle(&p, s, now, tk.at, give, "")
			if g := given(&p, s, tk.at, now, give, evs); g > 0 {
				evs = append(evs, debtEvent{at: now, units: -g, charged: tk.at})
				tk.units -= g
			}
		}
	}
	if k == TokenBucket {
		checkBucket(t, &p, evs)
	}
}

// given is how much a settlement gave back by the rules (independent of
// the state): the bucket all of it (the algorithm's clamp at a full bucket
// only gives less, which the bound allows, so count all); the windows only
// while the window of at is live.
func given(p *Params, _ *State, at, now, give int64, evs []debtEvent) int64 {
	switch p.Kind {
	case TokenBucket:
		return give
	case FixedWindow:
		if windowStart(at, p.Period) != windowStart(now, p.Period) {
			return 0
		}
	case SlidingWindowCounter:
		if ws := windowStart(at, p.Period); ws != windowStart(now, p.Period) && ws != windowStart(now, p.Period)-p.Period {
			return 0
		}
	case SlidingWindowLog:
		// The log gives back from the event at at, which merges every
		// unit recorded at that instant.
		var at1 int64
		for _, e := range evs {
			if e.charged == at {
				at1 += e.units
			}
		}
		return min(give, at1)
	}
	// A window gives back at most what it holds.
	var in int64
	for _, e := range evs {
		if windowStart(e.charged, p.Period) == windowStart(at, p.Period) {
			in += e.units
		}
	}
	return min(give, max(0, in))
}

// checkWindow checks the window bound after an admitted take at now.
func checkWindow(t *testing.T, p *Params, evs []debtEvent, now int64) {
	t.Helper()
	sum := func(from, to int64) (u int64) { // units counted at instants in [from, to]
		for _, e := range evs {
			if e.charged >= from && e.charged <= to {
				u += e.units
			}
		}
		return u
	}
	ws := windowStart(now, p.Period)
	switch p.Kind {
	case FixedWindow:
		if u := sum(ws, now); u > p.Quota {
			t.Errorf("fixed window at %d holds %d > quota %d", now, u, p.Quota)
		}
	case SlidingWindowCounter:
		curr, prev := sum(ws, now), sum(ws-p.Period, ws-1)
		e := now - ws
		lhs := new(big.Int).Mul(big.NewInt(max(prev, 0)), big.NewInt(p.Period-e))
		lhs.Add(lhs, new(big.Int).Mul(big.NewInt(curr), big.NewInt(p.Period)))
		rhs := new(big.Int).Mul(big.NewInt(p.Quota), big.NewInt(p.Period))
		if lhs.Cmp(rhs) > 0 {
			t.Errorf("counter at %d: prev %d curr %d over quota %d", now, prev, curr, p.Quota)
		}
	case SlidingWindowLog:
		if u := sum(now-p.Period+1, now); u > p.Quota {
			t.Errorf("log at %d holds %d > quota %d", now, u, p.Quota)
		}
	}
}

// checkBucket checks every interval that ends at an admitted take.
func checkBucket(t *testing.T, p *Params, evs []debtEvent) {
	t.Helper()
	for j := range evs {
		if !evs[j].take {
			continue
		}
		var u int64
		for i := j; i >= 0; i-- {
			u += evs[i].units
			if b := p.Capacity() + boundUnits(p, evs[j].at-evs[i].at); u > b {
				t.Errorf("events %d..%d (%dns): %d units > bound %d", i, j, evs[j].at-evs[i].at, u, b)
				return
			}
		}
	}
}

// TestSettleGivesBackIntoThePresent is the example of docs/algorithms.md
// ("Debt"): a settlement after acting returns units into the present, so
// the bucket's bound needs its G term.
func TestSettleGivesBackIntoThePresent(t *testing.T) {
	p := Params{Kind: TokenBucket, Quota: 10, Period: 10 * sec}
	s := &State{}
	take := func(at, n int64) bool {
		ok, _, _ := Decide([]Params{p}, []*State{s}, t0+at, n, 0, "", nil)
		return ok
	}
	if !take(0, 10) || !take(5*sec, 5) {
		t.Fatal("setup denied")
	}
	Settle(&p, s, t0+5*sec, t0, 10, "")
	if !take(5*sec, 10) || take(5*sec, 1) {
		t.Fatal("want exactly 10 more at 5s after settling the estimate to 0")
	}
}
