package algo

import (
	"testing"
)

// TestDecideAtomic is R10: a request that limit B denies leaves limit A
// exactly as it was, and the decision names B.
func TestDecideAtomic(t *testing.T) {
	ps := []Params{
		{Kind: TokenBucket, Quota: 10, Period: sec}, // A: 10/s
		{Kind: TokenBucket, Quota: 1, Period: sec},  // B: 1/s
	}
	a, b := &State{}, &State{}
	ss := []*State{a, b}
	out := make([]Result, 2)
	now := int64(base)
	ok, k, agg := Decide(ps, ss, now, 1, 0, "", out)
	if !ok || k != 1 || agg.Remaining != 0 {
		t.Fatalf("first: %v %d %+v", ok, k, agg)
	}
	before := cloneState(a)
	beforeA := Check(&ps[0], a, now, 0, 0)
	for i := range 5 {
		ok, k, agg = Decide(ps, ss, now+int64(i)*ms, 1, 0, "", out)
		if ok || k != 1 || !out[0].Allowed || out[1].Allowed {
			t.Fatalf("denial %d: %v %d %+v %+v", i, ok, k, agg, out)
		}
		if agg.RetryAfter != sec-int64(i)*ms || agg.Delay != 0 {
			t.Fatalf("denial %d: %+v", i, agg)
		}
	}
	if !statesEqual(a, before) || Check(&ps[0], a, now, 0, 0) != beforeA {
		t.Fatalf("A changed by requests B denied: %+v -> %+v", *before, *a)
	}
	// at 1s both admit again
	if ok, _, _ := Decide(ps, ss, now+sec, 1, 0, "", nil); !ok {
		t.Fatal("not admitted after B's RetryAfter")
	}
}

// TestDecideMixed: random requests against one limit of every kind; after
// a denial every state is unchanged, after an admission every state equals
// a state charged on its own.
func TestDecideMixed(t *testing.T) {
	ps := []Params{
		{Kind: FixedWindow, Quota: 5, Period: sec},
		{Kind: SlidingWindowLog, Quota: 4, Period: sec},
		{Kind: SlidingWindowCounter, Quota: 4, Period: sec},
		{Kind: TokenBucket, Quota: 3, Period: sec, Burst: 4},
		{Kind: Concurrency, Quota: 4, Period: 700 * ms},
	}
	ss := make([]*State, len(ps))
	for i := range ss {
		ss[i] = &State{}
	}
	r := newRand(1, 2)
	now := int64(base)
	out := make([]Result, len(ps))
	var admitted, denied int
	for i := range 5000 {
		now += r.Int64N(300 * ms)
		cost := r.Int64N(5) // 0..4, a peek when 0
		before := make([]*State, len(ss))
		want := make([]*State, len(ss))
		for j := range ss {
			before[j] = cloneState(ss[j])
			want[j] = cloneState(ss[j])
			Commit(&ps[j], want[j], now, cost, leaseName(i))
		}
		ok, k, agg := Decide(ps, ss, now, cost, 0, leaseName(i), out)
		for j := range ps {
			r := Check(&ps[j], before[j], now, cost, 0)
			if !ok && r.Allowed {
				// Not charged: this limit reports what it holds now.
				pk := Check(&ps[j], before[j], now, 0, 0)
				r.Remaining, r.ResetAfter = pk.Remaining, pk.ResetAfter
			}
			if r != out[j] {
				t.Fatalf("out[%d] = %+v, want %+v", j, out[j], r)
			}
		}
		switch {
		case !ok:
			denied++
			for j := range ss {
				if !statesEqual(before[j], ss[j]) {
					t.Fatalf("step %d: denied by %d but limit %d changed", i, k, j)
				}
			}
			// the decider is the denying limit with the longest RetryAfter
			for j := range out {
				if !out[j].Allowed && out[j].RetryAfter > agg.RetryAfter {
					t.Fatalf("step %d: decider %d RetryAfter %d < limit %d's %d", i, k, agg.RetryAfter, j, out[j].RetryAfter)
				}
			}
			if out[k].Allowed || agg.Allowed || agg != out[k] {
				t.Fatalf("step %d: decider %d %+v agg %+v", i, k, out[k], agg)
			}
		case cost == 0:
			for j := range ss {
				if !statesEqual(before[j], ss[j]) {
					t.Fatalf("step %d: a peek changed limit %d", i, j)
				}
			}
		default:
			admitted++
			for j := range ss {
				if !statesEqual(want[j], ss[j]) {
					t.Fatalf("step %d: limit %d charged %+v, want %+v", i, j, ss[j], want[j])
				}
			}
		}
		if ok {
			// the decider has the fewest Remaining, the first on ties
			for j := range out {
				if out[j].Remaining < agg.Remaining || (out[j].Remaining == agg.Remaining && j < k) {
					t.Fatalf("step %d: decider %d (%d remaining) but limit %d has %d", i, k, agg.Remaining, j, out[j].Remaining)
				}
			}
		}
	}
	if admitted == 0 || denied == 0 {
		t.Fatalf("admitted %d, denied %d: the test exercises nothing", admitted, denied)
	}
	t.Logf("%d admitted, %d denied", admitted, denied)
}

// TestDecideDelay: a reservation over several token buckets acts when the
// slowest lets it, whether or not out is given.
func TestDecideDelay(t *testing.T) {
	ps := []Params{
		{Kind: TokenBucket, Quota: 10, Period: sec}, // I = 100ms
		{Kind: TokenBucket, Quota: 2, Period: sec},  // I = 500ms
	}
	for _, withOut := range []bool{true, false} {
		a, b := &State{}, &State{}
		Commit(&ps[0], a, base, 10, "")
		Commit(&ps[1], b, base, 2, "")
		var out []Result
		if withOut {
			out = make([]Result, 2)
		}
		ok, _, agg := Decide(ps, []*State{a, b}, base, 1, sec, "", out)
		if !ok || agg.Delay != 500*ms {
			t.Fatalf("out=%v: %v %+v, want Delay 500ms", withOut, ok, agg)
		}
		// maxWait below the slowest: denied, nothing charged
		a2, b2 := cloneState(a), cloneState(b)
		ok, k, agg := Decide(ps, []*State{a2, b2}, base, 1, 600*ms, "", out)
		if ok || k != 1 || agg.Delay != 0 || agg.RetryAfter != sec {
			t.Fatalf("out=%v: %v %d %+v", withOut, ok, k, agg)
		}
		if !statesEqual(a, a2) || !statesEqual(b, b2) {
			t.Fatal("a denied reservation charged a limit")
		}
	}
}

func TestDecidePeek(t *testing.T) {
	ps := []Params{{Kind: FixedWindow, Quota: 2, Period: sec}, {Kind: TokenBucket, Quota: 5, Period: sec}}
	ss := []*State{{}, {}}
	for range 10 {
		ok, k, agg := Decide(ps, ss, base, 0, sec, "", nil)
		if !ok || k != 0 || agg.Remaining != 2 || agg.Delay != 0 {
			t.Fatalf("peek: %v %d %+v", ok, k, agg)
		}
	}
	if !statesEqual(ss[0], &State{}) || !statesEqual(ss[1], &State{}) {
		t.Fatal("a peek changed a state")
	}
}
