package algo

import (
	"math"
	"testing"
)

// 10/s, burst 10: emission interval I = 100ms, tolerance tau = 1s.
var tb10 = Params{Kind: TokenBucket, Quota: 10, Period: sec}

func TestGCRABasic(t *testing.T) {
	runSteps(t, tb10, []step{
		{at: 0, cost: 1, want: allow(9, 100*ms)},
		{at: 0, cost: 0, op: opPeek, want: allow(9, 100*ms)},
		{at: 0, cost: 9, want: allow(0, sec)},
		{at: 0, cost: 1, want: deny(0, 100*ms, sec)},
		{at: 100*ms - 1, cost: 1, want: deny(0, 1, 900*ms+1)},
		{at: 100*ms - 1, op: opPeek, want: deny(0, 1, 900*ms+1)},
		{at: 100 * ms, op: opPeek, want: allow(1, 900*ms)},
		{at: 100 * ms, cost: 1, want: allow(0, sec)},
		// a denial charges nothing
		{at: 100 * ms, cost: 5, want: deny(0, 500*ms, sec)},
		{at: 600*ms - 1, cost: 5, want: deny(4, 1, 500*ms+1)},
		{at: 600 * ms, cost: 5, want: allow(0, sec)},
		// idle: the bucket refills to Burst and no further
		{at: 10 * sec, op: opPeek, want: allow(10, 0)},
		{at: 100 * sec, cost: 10, want: allow(0, sec)},
	})
}

func TestGCRABurst(t *testing.T) {
	// 1 per second, burst 3 (x/time's TestLimiterBurst3 shape).
	p := Params{Kind: TokenBucket, Quota: 1, Period: sec, Burst: 3}
	runSteps(t, p, []step{
		{at: 0, cost: 1, want: allow(2, sec)},
		{at: 0, cost: 1, want: allow(1, 2*sec)},
		{at: 0, cost: 1, want: allow(0, 3*sec)},
		{at: 0, cost: 1, want: deny(0, sec, 3*sec)},
		{at: sec, cost: 2, want: deny(1, sec, 2*sec)},
		{at: 2 * sec, cost: 2, want: allow(0, 3*sec)},
		{at: 2 * sec, cost: 3, want: deny(0, 3*sec, 3*sec)},
		{at: 5 * sec, cost: 3, want: allow(0, 3*sec)},
	})
	// Burst below Quota: 10/s but only 2 at once.
	p = Params{Kind: TokenBucket, Quota: 10, Period: sec, Burst: 2}
	runSteps(t, p, []step{
		{at: 0, cost: 2, want: allow(0, 200*ms)},
		{at: 0, cost: 1, want: deny(0, 100*ms, 200*ms)},
		{at: 100 * ms, cost: 1, want: allow(0, 200*ms)},
	})
}

// TestGCRAExactRational shows that a non-integer emission interval (1/3 s)
// neither drifts nor rounds against the caller.
func TestGCRAExactRational(t *testing.T) {
	p := Params{Kind: TokenBucket, Quota: 3, Period: sec, Burst: 3}
	runSteps(t, p, []step{
		{at: 0, cost: 3, want: allow(0, sec)},
		{at: 0, cost: 1, want: deny(0, 333333334, sec)},
		{at: 333333333, cost: 1, want: deny(0, 1, sec-333333333)},
		{at: 333333334, cost: 1, want: allow(0, sec)},       // TAT 1.333..s
		{at: 666666667, cost: 1, want: allow(0, sec)},       // TAT 1.666..s
		{at: sec - 1, cost: 1, want: deny(0, 1, 666666668)}, // TAT+I-tau = 1s
		{at: sec, cost: 1, want: allow(0, sec)},             // TAT exactly 2s
		{at: sec, cost: 1, want: deny(0, 333333334, sec)},
	})
}

func TestGCRAReservation(t *testing.T) {
	runSteps(t, tb10, []step{
		{at: 0, cost: 10, want: allow(0, sec)},
		// 3 more conform at 300ms: too late for maxWait 299ms
		{at: 0, cost: 3, maxWait: 300*ms - 1, want: deny(0, 300*ms, sec)},
		{at: 0, cost: 3, maxWait: 300 * ms, want: reserve(0, 1300*ms, 300*ms)},
		// the next unit comes after the reservation
		{at: 0, cost: 1, maxWait: sec, want: reserve(0, 1400*ms, 400*ms)},
		// a peek never reserves
		{at: 0, cost: 0, maxWait: sec, want: deny(0, 500*ms, 1400*ms)},
		// the denial with maxWait charged nothing
		{at: 400 * ms, cost: 1, want: deny(0, 100*ms, sec)},
	})
}

func TestGCRARefund(t *testing.T) {
	t.Run("cancel restores", func(t *testing.T) {
		runSteps(t, tb10, []step{
			{at: 0, cost: 10, want: allow(0, sec)},
			{at: 0, cost: 3, maxWait: sec, want: reserve(0, 1300*ms, 300*ms)},
			// cancel before its time to act: as if it had never been made
			{at: 100 * ms, op: opRefund, cost: 3, refAt: 300 * ms, want: allow(1, 900*ms)},
			{at: 200 * ms, cost: 2, want: allow(0, sec)},
		})
	})
	t.Run("later reservations keep their place", func(t *testing.T) {
		runSteps(t, tb10, []step{
			{at: 0, cost: 10, want: allow(0, sec)},
			{at: 0, cost: 2, maxWait: sec, want: reserve(0, 1200*ms, 200*ms)}, // acts at 200ms
			{at: 0, cost: 1, maxWait: sec, want: reserve(0, 1300*ms, 300*ms)}, // acts at 300ms
			// 1 unit was reserved after the first: only 2-1 come back (x/time rule)
			{at: 50 * ms, op: opRefund, cost: 2, refAt: 200 * ms, want: deny(0, 250*ms, 1150*ms)},
			{at: 50 * ms, op: opRefund, cost: 1, refAt: 300 * ms, want: deny(0, 150*ms, 1050*ms)},
		})
	})
	t.Run("never above burst", func(t *testing.T) {
		runSteps(t, tb10, []step{
			{at: 0, cost: 1, want: allow(9, 100*ms)},
			{at: 0, op: opRefund, cost: 5, refAt: 0, want: allow(10, 0)},
			{at: 0, op: opRefund, cost: 5, refAt: 0, want: allow(10, 0)},
			{at: 0, cost: 10, want: allow(0, sec)},
			{at: 0, op: opRefund, cost: 0, refAt: 0, want: deny(0, 100*ms, sec)},
		})
	})
	t.Run("nothing after the time to act", func(t *testing.T) {
		// x/time: a reservation whose time to act has passed is not
		// restored; otherwise refunding a used request would mint units.
		runSteps(t, tb10, []step{
			{at: 0, cost: 5, want: allow(5, 500*ms)},
			{at: 100 * ms, cost: 5, want: allow(1, 900*ms)},
			{at: 200 * ms, op: opRefund, cost: 5, refAt: 0, want: allow(2, 800*ms)},
			{at: 200 * ms, cost: 3, want: deny(2, 100*ms, 800*ms)},
		})
	})
}

// TestGCRARefundNoMint is the counterexample behind the at < now rule: with
// a full refund of an already used request, the bucket held more than if the
// request had never been made.
func TestGCRARefundNoMint(t *testing.T) {
	p := Params{Kind: TokenBucket, Quota: 1, Period: sec, Burst: 10}
	with := &State{}
	Commit(&p, with, base, 5, "")     // R1 at 0
	Commit(&p, with, base+sec, 5, "") // R2 at 1s
	Refund(&p, with, base+2*sec, base, 5, "")
	without := &State{}
	Commit(&p, without, base+sec, 5, "") // R2 only
	rw := Check(&p, with, base+2*sec, 0, 0)
	ro := Check(&p, without, base+2*sec, 0, 0)
	if rw.Remaining > ro.Remaining {
		t.Fatalf("refund minted: %d available, %d had R1 never been made", rw.Remaining, ro.Remaining)
	}
}

// TestGCRATinyRate: 1 per 100 years admits no second event within a year
// (golang/go#71154).
func TestGCRATinyRate(t *testing.T) {
	p := Params{Kind: TokenBucket, Quota: 1, Period: MaxPeriod}
	s := &State{}
	if r := Check(&p, s, base, 1, 0); !r.Allowed {
		t.Fatal("first event denied")
	}
	Commit(&p, s, base, 1, "")
	for _, dt := range []int64{1, sec, day, year, 99 * year, MaxPeriod - 1} {
		r := Check(&p, s, base+dt, 1, 0)
		if r.Allowed || r.RetryAfter != MaxPeriod-dt || r.RetryAfter < 0 {
			t.Fatalf("at +%d: %+v", dt, r)
		}
	}
	if r := Check(&p, s, base+MaxPeriod, 1, 0); !r.Allowed {
		t.Fatalf("after 100 years: %+v", r)
	}
}

// TestGCRAHugeQuota covers Quota above MaxInt64/2, where the remainder sums
// of the exact TAT would overflow int64 without care.
func TestGCRAHugeQuota(t *testing.T) {
	for _, p := range []Params{
		{Kind: TokenBucket, Quota: math.MaxInt64, Period: sec},
		{Kind: TokenBucket, Quota: math.MaxInt64, Period: 1},
		{Kind: TokenBucket, Quota: math.MaxInt64 - 1, Period: 3, Burst: 5},
		{Kind: TokenBucket, Quota: math.MaxInt64/2 + 7, Period: 7},
	} {
		s := &State{}
		now := int64(base)
		var taken int64
		for i := range 200 {
			cost := int64(i%3) + 1
			r := Check(&p, s, now, cost, 0)
			if r.Remaining < 0 || r.Remaining > p.Capacity() || r.RetryAfter < 0 || r.ResetAfter < 0 {
				t.Fatalf("%+v step %d: %+v", p, i, r)
			}
			if r.Allowed {
				Commit(&p, s, now, cost, "")
				taken += cost
			}
			if s.B < 0 || s.B >= p.Quota {
				t.Fatalf("%+v step %d: remainder %d out of [0, Quota)", p, i, s.B)
			}
			if i%7 == 0 {
				now++
			}
		}
		// At most Burst + floor(elapsed*Quota/Period) units.
		bound := satAdd(p.Capacity(), boundUnits(&p, now-base))
		if taken > bound {
			t.Fatalf("%+v: took %d > %d", p, taken, bound)
		}
	}
}

// boundUnits is floor(d*Quota/Period), saturating.
func boundUnits(p *Params, d int64) int64 {
	q, _, ok := mulDiv(d, p.Quota, p.Period)
	if !ok {
		return math.MaxInt64 / 4
	}
	return q
}

// TestGCRAReservationActTime: with I = 1/3 s and burst 1, a reservation
// conforming at 333333333.33ns acts at 333333334ns; the next unit must not
// act before 666666668ns, or two units would act 333333333ns apart
// (bound 1 + floor(333333333*3/1e9) = 1).
func TestGCRAReservationActTime(t *testing.T) {
	p := Params{Kind: TokenBucket, Quota: 3, Period: sec, Burst: 1}
	runSteps(t, p, []step{
		{at: 0, cost: 1, want: allow(0, 333333334)},
		{at: 0, cost: 1, maxWait: sec, want: reserve(0, 666666668, 333333334)},
		{at: 666666667, cost: 1, want: deny(0, 1, 1)},
		{at: 666666668, cost: 1, want: allow(0, 333333334)},
	})
}
