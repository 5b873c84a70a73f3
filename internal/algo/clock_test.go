package algo

import (
	"math"
	"testing"
)

// allKinds are one limit of each kind, 100 units per second (the bucket
// with burst 100), used by the clock tests.
var allKinds = []Params{
	{Kind: TokenBucket, Quota: 100, Period: sec},
	{Kind: SlidingWindowLog, Quota: 100, Period: sec},
	{Kind: SlidingWindowCounter, Quota: 100, Period: sec},
	{Kind: FixedWindow, Quota: 100, Period: sec},
	{Kind: Concurrency, Quota: 100, Period: sec},
}

// spanBound is the most units kind p may admit in [t1, t2] with t2-t1 = d:
// Burst + floor(d*Quota/Period) for the bucket, Quota*(ceil(d/Period)+1)
// for the windows (the fixed-window bound; the others are tighter), and
// for concurrency Quota*(ceil(d/TTL)+1) leases that run out.
func spanBound(p *Params, d int64) int64 {
	if p.Kind == TokenBucket {
		return satAdd(p.Capacity(), boundUnits(p, d))
	}
	return satMul(p.Quota, ceilDiv(d, p.Period)+1)
}

// TestClockBackwards is R04: backward steps of 10s and 1h mid-stream, and
// 10^5 calls alternating t and t-Δ (golang/go#56287; 2*10^4 under -race or
// -short), admit no more than the bound over the forward span of the clock:
// the steps mint 0 units.
func TestClockBackwards(t *testing.T) {
	for _, p := range allKinds {
		t.Run(kindNames[p.Kind]+"/steps", func(t *testing.T) {
			for _, back := range []int64{10 * sec, hour} {
				s := &State{}
				now, hwm := int64(base), int64(base)
				var admitted int64
				for i := range 6000 { // a request every 5ms, 200/s: twice the rate
					if i == 2000 || i == 4000 {
						now -= back
					}
					now += 5 * ms
					hwm = max(hwm, now)
					r := Check(&p, s, now, 1, 0)
					checkResult(t, 0, i, &p, r, 1)
					if r.Allowed {
						Commit(&p, s, now, 1, leaseName(i))
						admitted++
					}
				}
				if b := spanBound(&p, hwm-base); admitted > b {
					t.Fatalf("back %dns: %d admitted over %dns of forward clock, bound %d", back, admitted, hwm-base, b)
				}
			}
		})
		t.Run(kindNames[p.Kind]+"/alternating", func(t *testing.T) {
			calls := int64(100000)
			if testing.Short() || raceEnabled {
				calls = 20000
			}
			for _, delta := range []int64{ms, 10 * sec} {
				s := &State{}
				t0 := int64(base)
				var admitted, maxT int64
				for i := range calls {
					now := t0 + (i/2)*ms // t advances 1ms per pair
					if i%2 == 1 {
						now -= delta
					}
					maxT = max(maxT, now)
					r := Check(&p, s, now, 1, 0)
					if r.Allowed {
						Commit(&p, s, now, 1, leaseName(int(i)))
						admitted++
					}
				}
				if b := spanBound(&p, maxT-t0); admitted > b {
					t.Fatalf("Δ=%dns: %d admitted, bound over the forward span %d", delta, admitted, b)
				}
			}
		})
	}
}

// TestClockBackwardsDominance: on random states, a reading Δ before the
// latest instant never finds more units available than the latest instant.
func TestClockBackwardsDominance(t *testing.T) {
	for k := Kind(0); k < numKinds; k++ {
		t.Run(kindNames[k], func(t *testing.T) {
			for seed := range uint64(propSeeds() / 5) {
				r := newRand(seed, 31+uint64(k))
				p := randParams(r, k)
				s := &State{}
				now := base + r.Int64N(p.Period+1)
				for i := range 30 {
					now += randStep(r, &p)
					cost := 1 + r.Int64N(p.Capacity())
					if Check(&p, s, now, cost, 0).Allowed {
						Commit(&p, s, now, cost, leaseName(i))
					}
					for _, d := range []int64{1, p.Period / 3, p.Period, 10 * sec, hour} {
						if d <= 0 {
							continue
						}
						for _, c := range []int64{0, 1, p.Capacity()} {
							late, early := Check(&p, s, now, c, 0), Check(&p, s, now-d, c, 0)
							if early.Remaining > late.Remaining || (early.Allowed && !late.Allowed) {
								t.Fatalf("seed %d %+v: %dns back: %+v, at the latest instant %+v", seed, p, d, early, late)
							}
						}
					}
				}
			}
		})
	}
}

// TestClockForward is R05: after jumps of 1s, 1 day and 100 years an
// exhausted limit admits at most its capacity at once, and every duration
// stays in range.
func TestClockForward(t *testing.T) {
	for _, p := range allKinds {
		t.Run(kindNames[p.Kind], func(t *testing.T) {
			for _, jump := range []int64{sec, day, MaxPeriod} {
				s := &State{}
				now := int64(base)
				for i := range 1000 { // exhaust
					if Check(&p, s, now, 1, 0).Allowed {
						Commit(&p, s, now, 1, leaseName(i))
					}
				}
				now += jump
				var extra int64
				for i := range 1000 {
					r := Check(&p, s, now, 1, 0)
					checkResult(t, 0, i, &p, r, 1)
					if r.RetryAfter > 2*p.Period || r.ResetAfter > 2*p.Period {
						t.Fatalf("jump %d: durations out of range: %+v", jump, r)
					}
					if r.Allowed {
						Commit(&p, s, now, 1, leaseName(1000+i))
						extra++
					}
				}
				if extra > p.Capacity() || extra > max(1, boundUnits(&p, jump))+p.Capacity() {
					t.Fatalf("jump %d: %d admitted at once, capacity %d", jump, extra, p.Capacity())
				}
				// the counter still weighs the previous window after 1s
				if extra != p.Capacity() && (p.Kind != SlidingWindowCounter || jump >= 2*p.Period) {
					t.Fatalf("jump %d: only %d of %d available after the jump", jump, extra, p.Capacity())
				}
			}
		})
	}
}

// TestExtremes: extreme but valid params and instants never panic and keep
// every Result in range.
func TestExtremes(t *testing.T) {
	params := []Params{
		{Kind: TokenBucket, Quota: 1, Period: 1},
		{Kind: TokenBucket, Quota: math.MaxInt64, Period: 1},
		{Kind: TokenBucket, Quota: math.MaxInt64, Period: MaxPeriod},
		{Kind: TokenBucket, Quota: 1, Period: MaxPeriod},
		{Kind: TokenBucket, Quota: 1 << 31, Period: sec, Burst: 1 << 31},
		{Kind: TokenBucket, Quota: math.MaxInt64, Period: 1, Burst: math.MaxInt64},
		{Kind: FixedWindow, Quota: math.MaxInt64, Period: MaxPeriod},
		{Kind: FixedWindow, Quota: 1, Period: 1},
		{Kind: SlidingWindowCounter, Quota: math.MaxInt64, Period: MaxPeriod},
		{Kind: SlidingWindowCounter, Quota: 1, Period: 1},
		{Kind: SlidingWindowLog, Quota: math.MaxInt64, Period: MaxPeriod},
		{Kind: Concurrency, Quota: math.MaxInt64, Period: MaxPeriod},
	}
	instants := []int64{0, 1, base, base + 100*year, -base, math.MaxInt64 - 2*MaxPeriod - 1}
	for _, p := range params {
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		for _, now := range instants {
			s := &State{}
			for i, cost := range []int64{1, p.Capacity(), 0, p.Capacity() / 2, 1} {
				for _, mw := range []int64{0, MaxPeriod} {
					r := Check(&p, s, now, cost, mw)
					checkResult(t, 0, i, &p, r, cost)
					if r.Allowed {
						Commit(&p, s, now, cost, "x")
					}
				}
			}
			Refund(&p, s, now, now, p.Capacity(), "x")
			r := Check(&p, s, now, 0, 0)
			checkResult(t, 0, 99, &p, r, 0)
			_ = ExpiresAt(&p, s)
			Prune(&p, s, now)
		}
	}
}
