package algo

import (
	"math/rand/v2"
	"testing"
)

// A reservation over several buckets is recorded by each bucket at the
// instant it acts, so a faster bucket shared with other requests cannot
// admit a full burst on top of it.
func TestDecideReservationRecordedAtActTime(t *testing.T) {
	const s = int64(1e9)
	fast := Params{Kind: TokenBucket, Quota: 10, Period: s} // burst 10
	slow := Params{Kind: TokenBucket, Quota: 1, Period: s}  // burst 1
	ps := []Params{fast, slow}
	sf, ss := &State{}, &State{}
	out := make([]Result, 2)
	if ok, _, _ := Decide(ps, []*State{sf, ss}, 0, 1, 0, "", out); !ok {
		t.Fatal("first request denied")
	}
	ok, _, agg := Decide(ps, []*State{sf, ss}, 0, 1, 2*s, "", out)
	if !ok || agg.Delay != s {
		t.Fatalf("reservation: ok=%v delay=%d, want delay 1s", ok, agg.Delay)
	}
	// At 1s the reservation acts; the fast bucket alone must then have 9
	// units left for others, not 10: 10 at 1s plus the reservation would be
	// 11 in a zero-length interval against a burst of 10.
	r := Check(&fast, sf, s, 0, 0)
	if r.Remaining != 9 {
		t.Errorf("fast bucket at the act time has %d units, want 9", r.Remaining)
	}
	// A request that mixes a bucket with a window cannot reserve.
	win := Params{Kind: FixedWindow, Quota: 100, Period: s}
	mixed := []Params{slow, win}
	if ok, _, _ := Decide(mixed, []*State{{}, {}}, 0, 1, 0, "", nil); !ok {
		t.Fatal("mixed first request denied")
	}
	st := []*State{ss, {}}
	if ok, _, _ := Decide(mixed, st, 5*s, 1, 0, "", nil); !ok {
		t.Fatal("mixed request at 5s denied")
	}
	if ok, _, _ := Decide(mixed, st, 5*s, 1, 10*s, "", nil); ok {
		t.Error("a request with a window reserved a future slot")
	}
}

// R01 for reservations over several buckets: counted at the instants the
// requests act, every bucket keeps its bound.
func TestDecideMultiBucketReservationBound(t *testing.T) {
	const s = int64(1e9)
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		ps := []Params{
			{Kind: TokenBucket, Quota: 1 + r.Int64N(20), Period: s, Burst: 1 + r.Int64N(10)},
			{Kind: TokenBucket, Quota: 1 + r.Int64N(5), Period: (1 + r.Int64N(3)) * s, Burst: 1 + r.Int64N(5)},
		}
		// A third party uses the first bucket alone, without reserving.
		st := []*State{{}, {}}
		var acts [2][]int64 // act instants per bucket
		now := int64(0)
		for range 400 {
			now += r.Int64N(s / 2)
			if r.IntN(3) == 0 {
				res := Check(&ps[0], st[0], now, 1, 0)
				if res.Allowed {
					Commit(&ps[0], st[0], now, 1, "")
					acts[0] = append(acts[0], now)
				}
				continue
			}
			ok, _, agg := Decide(ps, st, now, 1, 3*s, "", nil)
			if ok {
				acts[0] = append(acts[0], now+agg.Delay)
				acts[1] = append(acts[1], now+agg.Delay)
			}
		}
		for b := range ps {
			checkBucketBound(t, seed, &ps[b], acts[b])
		}
	}
}

func checkBucketBound(t *testing.T, seed uint64, p *Params, acts []int64) {
	t.Helper()
	xs := append([]int64(nil), acts...)
	for i := 1; i < len(xs); i++ { // insertion sort: short lists
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	for i := range xs {
		for j := i; j < len(xs); j++ {
			n := int64(j - i + 1)
			bound := p.Capacity() + (xs[j]-xs[i])*p.Quota/p.Period
			if n > bound {
				t.Fatalf("seed %d, %+v: %d acts in [%d, %d], bound %d", seed, *p, n, xs[i], xs[j], bound)
			}
		}
	}
}
