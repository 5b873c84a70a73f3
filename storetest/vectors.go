package storetest

import (
	"testing"
	"time"

	"github.com/weir-go/weir"
)

const ms = time.Millisecond

// op is one step of a vector.
type op uint8

const (
	opTake   op = iota // Take (cost 0: peek)
	opRefund           // Refund cost charged at refundAt (lease: release)
	opReset            // Reset the check
)

// step is one line of a vector: at the instant base+at, do op, and (for
// opTake) expect w.
type step struct {
	at       time.Duration
	op       op
	cost     int64
	maxWait  time.Duration
	lease    string
	refundAt time.Duration
	w        want
}

func take(at time.Duration, cost int64, allowed bool, remaining int64, retry, reset time.Duration) step {
	return step{at: at, cost: cost, w: want{allowed: allowed, remaining: remaining, retryAfter: retry, resetAfter: reset}}
}

// vector is one limit on one key driven through steps. The expected values
// are derived by hand from the rules in internal/algo (see each comment).
type vector struct {
	name  string
	limit weir.Limit
	steps []step
}

var vectors = []vector{
	{
		// GCRA: I = 100ms, tau = 5*I = 500ms. Admit when
		// max(TAT,now) + n*I - tau <= now; Remaining = floor((now+tau-TAT')/I);
		// ResetAfter = TAT' - now.
		name:  "token-bucket 10/s burst 5",
		limit: weir.PerSecond(10).WithBurst(5),
		steps: []step{
			take(0, 1, true, 4, 0, 100*ms),
			take(0, 4, true, 0, 0, 500*ms),
			take(0, 1, false, 0, 100*ms, 500*ms),       // TAT 500ms: 600-500 = 100ms after now
			take(250*ms, 1, true, 1, 0, 350*ms),        // TAT 600ms; 750-600 = 1.5 I
			take(250*ms, 2, false, 1, 50*ms, 350*ms),   // 800-500 = 300ms > 250ms
			take(250*ms, 0, true, 1, 0, 350*ms),        // peek: one unit fits
			take(1000*ms, 5, true, 0, 0, 500*ms),       // bucket refilled: TAT = now
			take(1000*ms, 0, false, 0, 100*ms, 500*ms), // peek when empty
			take(1600*ms, 0, true, 5, 0, 0),            // TAT 1500 < now: full again
		},
	},
	{
		// I = 333333333⅓ ns: the TAT is kept as an exact rational.
		name:  "token-bucket 3/s",
		limit: weir.PerSecond(3),
		steps: []step{
			take(0, 1, true, 2, 0, 333333334),
			take(0, 2, true, 0, 0, 1000*ms),
			take(0, 1, false, 0, 333333334, 1000*ms),
			take(1000*ms, 3, true, 0, 0, 1000*ms),
			take(1000*ms+333334*time.Microsecond, 1, true, 0, 0, 1000*ms-333334*time.Microsecond+333333334),
		},
	},
	{
		// Windows of 1s aligned to the epoch, at most 3 units each.
		name:  "fixed-window 3/s",
		limit: weir.Per(3, time.Second).WithAlgorithm(weir.FixedWindow),
		steps: []step{
			take(200*ms, 2, true, 1, 0, 800*ms),
			take(500*ms, 2, false, 1, 500*ms, 500*ms),
			take(500*ms, 1, true, 0, 0, 500*ms),
			take(900*ms, 0, false, 0, 100*ms, 100*ms),
			take(1000*ms, 3, true, 0, 0, 1000*ms),
			take(1999*ms, 1, false, 0, 1*ms, 1*ms),
			take(2500*ms, 0, true, 3, 0, 0),
		},
	},
	{
		// estimate = prev*(P-elapsed)/P + curr; admit when estimate+n <= 10.
		name:  "sliding-window 10/s",
		limit: weir.Per(10, time.Second).WithAlgorithm(weir.SlidingWindowCounter),
		steps: []step{
			take(500*ms, 6, true, 4, 0, 1500*ms),
			// 6+5 > 10: wait for the next window, where 6*(1-e) + 5 <= 10
			// first holds at e = 1 - floor(5e9/6)ns = 166666667ns.
			take(900*ms, 5, false, 4, 266666667, 1100*ms),
			// prev 6 weighs 3 at e = 0.5s: 10-3 = 7 left.
			take(1500*ms, 0, true, 7, 0, 500*ms),
			take(1500*ms, 7, true, 0, 0, 1500*ms),
			// prev weighs 1.5 at e = 0.75s: 1.5 + 8 <= 10.
			take(1750*ms, 1, true, 0, 0, 1250*ms),
			// 1.5 + 9 > 10: wait until 6*(1-e) <= 1, e = 1 - floor(1e9/6)ns.
			take(1750*ms, 1, false, 0, 83333334, 1250*ms),
		},
	},
	{
		// Exact log: at most 3 units in any window (now-1s, now].
		name:  "sliding-log 3/s",
		limit: weir.Per(3, time.Second).WithAlgorithm(weir.SlidingWindowLog),
		steps: []step{
			take(0, 1, true, 2, 0, 1000*ms),
			take(300*ms, 1, true, 1, 0, 1000*ms),
			take(600*ms, 2, false, 1, 400*ms, 700*ms), // the event at 0 leaves at 1s
			take(600*ms, 1, true, 0, 0, 1000*ms),
			take(1000*ms, 1, true, 0, 0, 1000*ms), // the event at 0 is out of (0, 1s]
			take(1000*ms, 0, false, 0, 300*ms, 1000*ms),
			take(2500*ms, 0, true, 3, 0, 0),
		},
	},
	{
		// At most 2 units held; leases expire 10s after they are taken.
		name:  "concurrency 2 ttl 10s",
		limit: weir.Concurrent(2, 10*time.Second),
		steps: []step{
			{at: 0, cost: 1, lease: "a", w: want{allowed: true, remaining: 1, resetAfter: 10 * time.Second}},
			{at: 1 * time.Second, cost: 1, lease: "b", w: want{allowed: true, remaining: 0, resetAfter: 10 * time.Second}},
			// Full: the earliest lease (a) expires at 10s.
			{at: 2 * time.Second, cost: 1, lease: "c", w: want{remaining: 0, retryAfter: 8 * time.Second, resetAfter: 9 * time.Second}},
			{at: 3 * time.Second, op: opRefund, cost: 1, lease: "a"},
			{at: 3 * time.Second, cost: 1, lease: "c", w: want{allowed: true, remaining: 0, resetAfter: 10 * time.Second}},
			// b expired at 11s without being released.
			{at: 11500 * ms, cost: 1, lease: "d", w: want{allowed: true, remaining: 0, resetAfter: 10 * time.Second}},
			{at: 14 * time.Second, w: want{allowed: true, remaining: 1, resetAfter: 7500 * ms}},
			{at: 14 * time.Second, op: opRefund, lease: "d"},
			{at: 14 * time.Second, w: want{allowed: true, remaining: 2}},
		},
	},
	{
		// A fixed window refund gives back units of the current window.
		name:  "fixed-window refund and reset",
		limit: weir.Per(5, time.Minute).WithAlgorithm(weir.FixedWindow),
		steps: []step{
			take(time.Second, 5, true, 0, 0, 59*time.Second),
			{at: 2 * time.Second, op: opRefund, cost: 2, refundAt: time.Second},
			take(2*time.Second, 0, true, 2, 0, 58*time.Second),
			take(2*time.Second, 3, false, 2, 58*time.Second, 58*time.Second),
			{at: 3 * time.Second, op: opReset},
			take(3*time.Second, 5, true, 0, 0, 57*time.Second),
		},
	},
}

func testVectors(t *testing.T, f Factory) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			h := newHarness(t, f)
			v.limit.Name = v.name
			runSteps(t, h, weir.Check{Key: "k", Limit: v.limit}, v.steps)
		})
	}
}

func runSteps(t *testing.T, h *harness, c weir.Check, steps []step) {
	t.Helper()
	for i, s := range steps {
		h.clk.set(t, s.at)
		switch s.op {
		case opTake:
			req := &weir.Request{Checks: []weir.Check{c}, Cost: s.cost, MaxWait: s.maxWait, Lease: s.lease}
			d := h.take(req)
			if msg := s.w.diff(d); msg != "" {
				t.Errorf("step %d: +%v %s:%s", i, s.at, describe(req), msg)
			}
			if !d.Time.Equal(h.clk.now()) {
				t.Errorf("step %d: Decision.Time = %v, want the store clock %v", i, d.Time, h.clk.now())
			}
			if d.Limit.Name != c.Limit.Name {
				t.Errorf("step %d: Decision.Limit.Name = %q, want %q", i, d.Limit.Name, c.Limit.Name)
			}
		case opRefund:
			h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: s.cost, Lease: s.lease, At: base.Add(s.refundAt)})
		case opReset:
			h.reset(c)
		}
	}
}
