package algo

import (
	"math"
	"testing"
)

func TestFixedWindow(t *testing.T) {
	p := Params{Kind: FixedWindow, Quota: 3, Period: sec}
	t.Run("basic", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 0, op: opPeek, want: allow(3, 0)},
			{at: 0, cost: 1, want: allow(2, sec)},
			{at: 0, op: opPeek, want: allow(2, sec)},
			{at: 500 * ms, cost: 2, want: allow(0, 500*ms)},
			{at: 500 * ms, cost: 1, want: deny(0, 500*ms, 500*ms)},
			{at: sec - 1, cost: 1, want: deny(0, 1, 1)},
			{at: sec - 1, op: opPeek, want: deny(0, 1, 1)},
			{at: sec, cost: 1, want: allow(2, sec)},
			{at: sec, cost: 3, want: deny(2, sec, sec)},
			{at: 5 * sec, op: opPeek, want: allow(3, 0)},
		})
	})
	t.Run("2N at a boundary", func(t *testing.T) {
		// Documented, not a bug: 2*Quota within 1ns around a boundary.
		runSteps(t, p, []step{
			{at: sec - 1, cost: 3, want: allow(0, 1)},
			{at: sec, cost: 3, want: allow(0, sec)},
			{at: sec, cost: 1, want: deny(0, sec, sec)},
		})
	})
	t.Run("daily window is UTC-day aligned", func(t *testing.T) {
		d := Params{Kind: FixedWindow, Quota: 1, Period: day}
		runSteps(t, d, []step{
			{at: 23 * hour, cost: 1, want: allow(0, hour)},
			{at: day - 1, cost: 1, want: deny(0, 1, 1)},
			{at: day, cost: 1, want: allow(0, day)},
		})
	})
	t.Run("refund", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 0, cost: 3, want: allow(0, sec)},
			{at: 500 * ms, op: opRefund, cost: 2, refAt: 0, want: allow(2, 500*ms)},
			{at: 500 * ms, op: opRefund, cost: 5, refAt: 100 * ms, want: allow(3, 0)},
			{at: 600 * ms, cost: 3, want: allow(0, 400*ms)},
			// a refund for an earlier window changes nothing
			{at: sec, cost: 3, want: allow(0, sec)},
			{at: sec, op: opRefund, cost: 3, refAt: 600 * ms, want: deny(0, sec, sec)},
		})
	})
	t.Run("clock back", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: sec, cost: 3, want: allow(0, sec)},
			// back into the previous window: the later window still counts
			{at: sec - 1*ms, cost: 1, want: deny(0, sec+ms, sec+ms)},
			{at: 0, op: opPeek, want: deny(0, 2*sec, 2*sec)},
			{at: 2 * sec, cost: 3, want: allow(0, sec)},
		})
	})
}

func TestSlidingWindowCounter(t *testing.T) {
	p := Params{Kind: SlidingWindowCounter, Quota: 10, Period: sec}
	t.Run("weighted previous window", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 0, op: opPeek, want: allow(10, 0)},
			{at: 0, cost: 10, want: allow(0, 2*sec)},
			// next window: 10 in the previous one weigh fully at its start
			{at: sec, cost: 1, want: deny(0, 100*ms, sec)},
			{at: sec + 100*ms - 1, cost: 1, want: deny(0, 1, 900*ms+1)},
			{at: sec + 100*ms, cost: 1, want: allow(0, 1900*ms)},
			{at: 1500 * ms, op: opPeek, want: allow(4, 1500*ms)},
			{at: 1500 * ms, cost: 5, want: deny(4, 100*ms, 1500*ms)},
			{at: 1600 * ms, cost: 5, want: allow(0, 1400*ms)},
			{at: 2 * sec, op: opPeek, want: allow(4, sec)},
			{at: 2 * sec, cost: 10, want: deny(4, sec, sec)},
			{at: 3*sec - 1, cost: 10, want: deny(9, 1, 1)},
			{at: 3 * sec, cost: 10, want: allow(0, 2*sec)},
			// current window full: wait for the next one and its weight
			{at: 3500 * ms, cost: 1, want: deny(0, 600*ms, 1500*ms)},
			{at: 4100*ms - 1, cost: 1, want: deny(0, 1, 900*ms+1)},
			{at: 4100 * ms, cost: 1, want: allow(0, 1900*ms)},
			{at: 10 * sec, op: opPeek, want: allow(10, 0)},
		})
	})
	t.Run("refund", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 0, cost: 6, want: allow(4, 2*sec)},
			{at: 500 * ms, cost: 4, want: allow(0, 1500*ms)},
			{at: sec, op: opRefund, cost: 4, refAt: 500 * ms, want: allow(4, sec)},
			{at: sec, op: opRefund, cost: 9, refAt: 0, want: allow(10, 0)},
			{at: sec, cost: 2, want: allow(8, 2*sec)},
			{at: sec, op: opRefund, cost: 1, refAt: sec, want: allow(9, 2*sec)},
		})
	})
	t.Run("clock back", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 2 * sec, cost: 10, want: allow(0, 2*sec)},
			{at: 2*sec - 1, cost: 1, want: deny(0, sec+100*ms+1, 2*sec+1)},
			{at: 0, op: opPeek, want: deny(0, 3*sec+100*ms, 4*sec)},
		})
	})
}

func TestSlidingWindowLog(t *testing.T) {
	p := Params{Kind: SlidingWindowLog, Quota: 3, Period: sec}
	t.Run("exact window", func(t *testing.T) {
		s := runSteps(t, p, []step{
			{at: 0, op: opPeek, want: allow(3, 0)},
			{at: 0, cost: 1, want: allow(2, sec)},
			{at: 400 * ms, cost: 2, want: allow(0, sec)},
			{at: 500 * ms, cost: 1, want: deny(0, 500*ms, 900*ms)},
			{at: sec - 1, cost: 1, want: deny(0, 1, 400*ms+1)},
			// (0, 1s]: the event at 0 has left
			{at: sec, cost: 1, want: allow(0, sec)},
			{at: 1200 * ms, cost: 2, want: deny(0, 200*ms, 800*ms)},
			{at: 1400 * ms, op: opPeek, want: allow(2, 600*ms)},
			{at: 1400 * ms, op: opRefund, cost: 1, refAt: sec, want: allow(3, 0)},
		})
		if len(s.Log) != 1 || s.Log[0] != (Event{At: base + 400*ms, Cost: 2}) {
			t.Fatalf("log %+v", s.Log)
		}
		Prune(&p, s, base+1400*ms)
		if s.Log != nil {
			t.Fatalf("after Prune: %+v", s.Log)
		}
	})
	t.Run("same instant shares an event", func(t *testing.T) {
		s := runSteps(t, p, []step{
			{at: 0, cost: 1, want: allow(2, sec)},
			{at: 0, cost: 1, want: allow(1, sec)},
			{at: 0, cost: 1, want: allow(0, sec)},
		})
		if len(s.Log) != 1 || s.Log[0].Cost != 3 {
			t.Fatalf("log %+v", s.Log)
		}
	})
	t.Run("memory bounded by Quota events", func(t *testing.T) {
		q := Params{Kind: SlidingWindowLog, Quota: 50, Period: sec}
		s := &State{}
		for i := range int64(10000) {
			now := base + i*3*ms
			if Check(&q, s, now, 1, 0).Allowed {
				Commit(&q, s, now, 1, "")
			}
			if int64(len(s.Log)) > q.Quota {
				t.Fatalf("log holds %d events > Quota %d", len(s.Log), q.Quota)
			}
		}
	})
	t.Run("clock back", func(t *testing.T) {
		s := runSteps(t, p, []step{
			{at: sec, cost: 2, want: allow(1, sec)},
			// recorded at the later instant: it stays in the window longer
			{at: 0, cost: 1, want: allow(0, 2*sec)},
			{at: 2*sec - 1, cost: 1, want: deny(0, 1, 1)},
			{at: 2 * sec, cost: 3, want: allow(0, sec)},
		})
		if len(s.Log) != 1 {
			t.Fatalf("log %+v", s.Log)
		}
	})
}

func TestConcurrency(t *testing.T) {
	p := Params{Kind: Concurrency, Quota: 2, Period: 10 * sec}
	t.Run("leases", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 0, op: opPeek, want: allow(2, 0)},
			{at: 0, cost: 1, lease: "a", want: allow(1, 10*sec)},
			{at: sec, cost: 1, lease: "b", want: allow(0, 10*sec)},
			{at: 2 * sec, cost: 1, lease: "c", want: deny(0, 8*sec, 9*sec)},
			{at: 3 * sec, op: opRefund, lease: "a", want: allow(1, 8*sec)},
			{at: 3 * sec, op: opRefund, lease: "a", want: allow(1, 8*sec)},
			{at: 3 * sec, cost: 1, lease: "c", want: allow(0, 10*sec)},
			// b's TTL ends at 11s even though it was never released
			{at: 11*sec - 1, op: opPeek, want: deny(0, 1, 2*sec+1)},
			{at: 11 * sec, op: opPeek, want: allow(1, 2*sec)},
			{at: 13 * sec, op: opPeek, want: allow(2, 0)},
		})
	})
	t.Run("retry after is exact without releases", func(t *testing.T) {
		runSteps(t, p, []step{
			{at: 0, cost: 2, lease: "a", want: allow(0, 10*sec)},
			{at: 4 * sec, cost: 1, lease: "b", want: deny(0, 6*sec, 6*sec)},
			{at: 10*sec - 1, cost: 1, lease: "b", want: deny(0, 1, 1)},
			{at: 10 * sec, cost: 1, lease: "b", want: allow(1, 10*sec)},
		})
	})
	t.Run("same id extends and grows", func(t *testing.T) {
		s := runSteps(t, p, []step{
			{at: 20 * sec, cost: 1, lease: "x", want: allow(1, 10*sec)},
			{at: 25 * sec, cost: 1, lease: "x", want: allow(0, 10*sec)},
			{at: 30 * sec, op: opPeek, want: deny(0, 5*sec, 5*sec)},
		})
		if len(s.Leases) != 1 || s.Leases[0].Cost != 2 || s.Leases[0].Expires != base+35*sec {
			t.Fatalf("leases %+v", s.Leases)
		}
		Prune(&p, s, base+35*sec)
		if s.Leases != nil {
			t.Fatalf("after Prune: %+v", s.Leases)
		}
	})
}

// TestRetryAfterExact: for every algorithm except concurrency with
// releases, a denied request retried exactly RetryAfter later (nothing else
// happening) is admitted, and one nanosecond earlier it is not.
func TestRetryAfterExact(t *testing.T) {
	n := propSeeds()
	for k := Kind(0); k < numKinds; k++ {
		t.Run(kindNames[k], func(t *testing.T) {
			var checked int
			for seed := range uint64(n) {
				tr := newRand(seed, 7+uint64(k))
				p := randParams(tr, k)
				s := &State{}
				now := base + tr.Int64N(p.Period+1)
				for i := range 30 {
					now += randStep(tr, &p)
					cost := 1 + tr.Int64N(p.Capacity())
					r := Check(&p, s, now, cost, 0)
					if r.Allowed {
						Commit(&p, s, now, cost, leaseName(i))
						continue
					}
					at := now + r.RetryAfter
					if got := Check(&p, s, at, cost, 0); !got.Allowed {
						t.Fatalf("seed %d %+v: denied at +%d with RetryAfter %d; at the retry: %+v", seed, p, now-base, r.RetryAfter, got)
					}
					if got := Check(&p, s, at-1, cost, 0); got.Allowed && r.RetryAfter > 1 {
						t.Fatalf("seed %d %+v: RetryAfter %d not the earliest: admitted 1ns before", seed, p, r.RetryAfter)
					}
					// ResetAfter: back to full quota if nothing else is admitted.
					full := Check(&p, s, now+r.ResetAfter, 0, 0)
					if full.Remaining != p.Capacity() {
						t.Fatalf("seed %d %+v: at ResetAfter %d only %d remain", seed, p, r.ResetAfter, full.Remaining)
					}
					if r.ResetAfter > 0 {
						if early := Check(&p, s, now+r.ResetAfter-1, 0, 0); early.Remaining == p.Capacity() && early.ResetAfter == 0 {
							t.Fatalf("seed %d %+v: ResetAfter %d not the earliest", seed, p, r.ResetAfter)
						}
					}
					checked++
				}
			}
			if checked == 0 {
				t.Fatal("no denial was checked")
			}
			t.Logf("%d denials checked", checked)
		})
	}
}

// TestExpiresAt: the instant from which a state is fresh, per algorithm.
func TestExpiresAt(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		ops  []int64 // offsets of cost-1 commits
		want int64   // offset; math.MinInt64 when already fresh
	}{
		{"bucket untouched", tb10, nil, 0},
		{"bucket", tb10, []int64{0, 0}, 200 * ms},
		{"bucket fractional TAT", Params{Kind: TokenBucket, Quota: 3, Period: sec}, []int64{0}, 333333334},
		{"fixed untouched", Params{Kind: FixedWindow, Quota: 5, Period: sec}, nil, math.MinInt64},
		{"fixed", Params{Kind: FixedWindow, Quota: 5, Period: sec}, []int64{500 * ms}, sec},
		{"counter current", Params{Kind: SlidingWindowCounter, Quota: 5, Period: sec}, []int64{500 * ms}, 2 * sec},
		{"counter previous only", Params{Kind: SlidingWindowCounter, Quota: 5, Period: sec}, []int64{500 * ms, 1500 * ms}, 3 * sec},
		{"log", Params{Kind: SlidingWindowLog, Quota: 5, Period: sec}, []int64{100 * ms, 700 * ms}, 1700 * ms},
		{"lease", Params{Kind: Concurrency, Quota: 5, Period: sec}, []int64{100 * ms, 300 * ms}, 1300 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &State{}
			for i, at := range tt.ops {
				Commit(&tt.p, s, base+at, 1, leaseName(i))
			}
			want := tt.want
			if want != math.MinInt64 {
				want += base
			}
			if tt.ops == nil && tt.p.Kind == TokenBucket {
				want = 0 // the zero TAT
			}
			got := ExpiresAt(&tt.p, s)
			if got != want {
				t.Fatalf("ExpiresAt = %d, want %d", got-base, want-base)
			}
			if got != math.MinInt64 {
				if Fresh(&tt.p, s, got-1) || !Fresh(&tt.p, s, got) {
					t.Fatalf("Fresh does not switch at ExpiresAt")
				}
			}
		})
	}
}
