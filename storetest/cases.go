package storetest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// R10: a request denied by one limit charges none; limits with the same
// key material but different names keep separate state.
func testMultiLimit(t *testing.T, f Factory) {
	h := newHarness(t, f)
	a := weir.Check{Key: "user", Limit: weir.PerSecond(10).WithName("A")}
	b := weir.Check{Key: "user", Limit: weir.PerSecond(1).WithName("B")}
	both := func(cost int64) *weir.Request {
		return &weir.Request{Checks: []weir.Check{a, b}, Cost: cost}
	}
	d := h.take(both(1))
	if msg := (want{allowed: true, remaining: 0, resetAfter: time.Second}).diff(d); msg != "" || d.Limit.Name != "B" {
		t.Fatalf("first request: %s Limit=%q (want B, the one with fewest remaining)", msg, d.Limit.Name)
	}
	for i := range 5 {
		d = h.take(both(1))
		if msg := (want{remaining: 0, retryAfter: time.Second, resetAfter: time.Second}).diff(d); msg != "" || d.Limit.Name != "B" {
			t.Fatalf("request %d denied by B: %s Limit=%q", i, msg, d.Limit.Name)
		}
	}
	// A was charged once (the admitted request), never for the denials.
	if d := h.peek(a); d.Remaining != 9 {
		t.Fatalf("A remaining after B denied 5 requests = %d, want 9 (R10)", d.Remaining)
	}
	// Cost above B's capacity is invalid and charges A nothing.
	if _, err := h.store.Take(context.Background(), both(2)); err == nil {
		t.Fatal("cost 2 over a limit of capacity 1: no error")
	}
	if d := h.peek(a); d.Remaining != 9 {
		t.Fatalf("A remaining after an invalid request = %d, want 9", d.Remaining)
	}
	// After 1s B admits again; the decider is B (0 left), A has 8+... left.
	h.clk.set(t, time.Second)
	d = h.take(both(1))
	if !d.Allowed || d.Limit.Name != "B" || d.Remaining != 0 {
		t.Fatalf("after 1s: %+v, want allowed by both, decided by B with 0 remaining", d)
	}
	if d := h.peek(a); d.Remaining != 9 {
		t.Fatalf("A remaining = %d, want 9 (refilled to 10, one taken)", d.Remaining)
	}
	// Overlapping rules on the same key: separate counters.
	x := weir.Check{Key: "k", Limit: weir.PerHour(1).WithName("x")}
	y := weir.Check{Key: "k", Limit: weir.PerHour(1).WithName("y")}
	if d := h.take(&weir.Request{Checks: []weir.Check{x}, Cost: 1}); !d.Allowed {
		t.Fatal("x: first request denied")
	}
	if d := h.take(&weir.Request{Checks: []weir.Check{y}, Cost: 1}); !d.Allowed {
		t.Fatal("y shares state with x: limits with different names must have separate counters")
	}
	// A request denied by the first limit leaves the second unchanged.
	if d := h.take(&weir.Request{Checks: []weir.Check{x, a}, Cost: 1}); d.Allowed || d.Limit.Name != "x" {
		t.Fatalf("x and A: %+v, want denied by x", d)
	}
	if d := h.peek(a); d.Remaining != 9 {
		t.Fatalf("A remaining after x denied = %d, want 9", d.Remaining)
	}
	// The unnamed limit: the decision names it by its text form.
	u := weir.Check{Key: "k", Limit: weir.Per(2, time.Minute)}
	if d := h.take(&weir.Request{Checks: []weir.Check{u}, Cost: 1}); d.Limit.Name != u.Limit.String() {
		t.Fatalf("unnamed limit decided as %q, want %q", d.Limit.Name, u.Limit.String())
	}
}

func testStatuses(t *testing.T, f Factory) {
	h := newHarness(t, f)
	a := weir.Check{Key: "s", Limit: weir.PerSecond(10).WithName("A")}
	b := weir.Check{Key: "s", Limit: weir.PerSecond(1).WithName("B")}
	req := &weir.Request{Checks: []weir.Check{a, b}, Cost: 1, Statuses: make([]weir.Status, 2)}
	h.take(req)
	wants := []weir.Status{
		{Allowed: true, Remaining: 9, ResetAfter: 100 * ms},
		{Allowed: true, Remaining: 0, ResetAfter: time.Second},
	}
	for i, w := range wants {
		if !sameStatus(req.Statuses[i], w) {
			t.Errorf("admitted: Statuses[%d] = %+v, want %+v", i, req.Statuses[i], w)
		}
	}
	req.Statuses = make([]weir.Status, 2)
	if d := h.take(req); d.Allowed {
		t.Fatal("second request admitted by B 1/s")
	}
	wants = []weir.Status{
		// A alone would admit, but nothing was charged: A reports what
		// it holds now.
		{Allowed: true, Remaining: 9, ResetAfter: 100 * ms},
		{Allowed: false, Remaining: 0, RetryAfter: time.Second, ResetAfter: time.Second},
	}
	for i, w := range wants {
		if !sameStatus(req.Statuses[i], w) {
			t.Errorf("denied: Statuses[%d] = %+v, want %+v", i, req.Statuses[i], w)
		}
	}
	// Statuses of the wrong length are left alone.
	sentinel := weir.Status{Remaining: -42}
	req.Statuses = []weir.Status{sentinel}
	h.take(req)
	if req.Statuses[0] != sentinel {
		t.Errorf("Statuses of length 1 for 2 checks was written: %+v", req.Statuses[0])
	}
}

// Reservations (MaxWait) on a token bucket, and their cancellation.
func testReservation(t *testing.T, f Factory) {
	h := newHarness(t, f)
	// I = 100ms, tau = 100ms.
	c := weir.Check{Key: "r", Limit: weir.PerSecond(10).WithBurst(1).WithName("res")}
	runSteps(t, h, c, []step{
		take(0, 1, true, 0, 0, 100*ms),
		// TAT 200ms: acts at 100ms, within MaxWait.
		{cost: 1, maxWait: 150 * ms, w: want{allowed: true, remaining: 0, resetAfter: 200 * ms, delay: 100 * ms}},
		// TAT would be 300ms: acts at 200ms > MaxWait.
		{cost: 1, maxWait: 150 * ms, w: want{remaining: 0, retryAfter: 200 * ms, resetAfter: 200 * ms}},
		// Cancel the reservation that acts at 100ms: TAT back to 100ms.
		{op: opRefund, cost: 1, refundAt: 100 * ms},
		{cost: 1, maxWait: 150 * ms, w: want{allowed: true, remaining: 0, resetAfter: 200 * ms, delay: 100 * ms}},
		// A peek never reserves.
		{cost: 0, maxWait: time.Hour, w: want{remaining: 0, retryAfter: 200 * ms, resetAfter: 200 * ms}},
		{at: 200 * ms, cost: 1, maxWait: time.Second, w: want{allowed: true, remaining: 0, resetAfter: 100 * ms}},
	})
	// Other algorithms ignore MaxWait.
	fw := weir.Check{Key: "r", Limit: weir.Per(1, time.Second).WithAlgorithm(weir.FixedWindow).WithName("fw")}
	h.clk.set(t, 0)
	h.take(&weir.Request{Checks: []weir.Check{fw}, Cost: 1})
	if d := h.take(&weir.Request{Checks: []weir.Check{fw}, Cost: 1, MaxWait: time.Hour}); d.Allowed || d.Delay != 0 {
		t.Fatalf("fixed window with MaxWait: %+v, want denied without delay", d)
	}
	// Several token buckets: the reservation acts when the slowest allows.
	p := weir.Check{Key: "m", Limit: weir.PerSecond(10).WithBurst(1).WithName("p")}
	q := weir.Check{Key: "m", Limit: weir.PerSecond(4).WithBurst(1).WithName("q")}
	both := &weir.Request{Checks: []weir.Check{p, q}, Cost: 1, MaxWait: time.Second}
	h.take(both)
	if d := h.take(both); !d.Allowed || !closeDur(d.Delay, 250*ms) {
		t.Fatalf("reservation on 10/s and 4/s: %+v, want Delay 250ms", d)
	}
	// Each bucket records the reservation at its act time (250ms), so the
	// faster bucket has no unit to spare for others at that instant.
	h.clk.set(t, 250*ms)
	if d := h.take(&weir.Request{Checks: []weir.Check{p}}); d.Remaining != 0 {
		t.Fatalf("10/s bucket at the act time: %+v, want 0 remaining", d)
	}
}

// Refunds never leave more than a limit's full quota.
func testRefundCeiling(t *testing.T, f Factory) {
	h := newHarness(t, f)
	limits := []weir.Limit{
		weir.PerSecond(10).WithBurst(5),
		weir.Per(5, time.Second).WithAlgorithm(weir.FixedWindow),
		weir.Per(5, time.Second).WithAlgorithm(weir.SlidingWindowCounter),
		weir.Per(5, time.Second).WithAlgorithm(weir.SlidingWindowLog),
	}
	for i, l := range limits {
		l.Name = "ceil-" + l.Algorithm.String()
		c := weir.Check{Key: "k", Limit: l}
		// Refund on a key never seen: nothing to give back.
		h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 3, At: h.clk.now()})
		if d := h.peek(c); d.Remaining != 5 || !d.Allowed {
			t.Errorf("%d %s: refund on an unseen key: %+v, want 5 remaining", i, l, d)
		}
		at := h.clk.now()
		h.take(&weir.Request{Checks: []weir.Check{c}, Cost: 2})
		for range 3 {
			h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 5, At: at})
		}
		if d := h.peek(c); d.Remaining != 5 {
			t.Errorf("%d %s: after refunds Remaining = %d, want 5 (never above the limit)", i, l, d.Remaining)
		}
		if d := h.take(&weir.Request{Checks: []weir.Check{c}, Cost: 5}); !d.Allowed || d.Remaining != 0 {
			t.Errorf("%d %s: full quota after refunds: %+v", i, l, d)
		}
		if d := h.take(&weir.Request{Checks: []weir.Check{c}, Cost: 1}); d.Allowed {
			t.Errorf("%d %s: admitted more than the quota after refunds", i, l)
		}
		h.clk.add(t, 10*time.Second)
	}
}

func testLease(t *testing.T, f Factory) {
	h := newHarness(t, f)
	c := weir.Check{Key: "job", Limit: weir.Concurrent(3, time.Minute).WithName("workers")}
	r := weir.Check{Key: "job", Limit: weir.PerHour(10).WithName("hourly")}
	req := func(cost int64, lease string) *weir.Request {
		return &weir.Request{Checks: []weir.Check{c, r}, Cost: cost, Lease: lease}
	}
	if d := h.take(req(2, "a")); !d.Allowed || d.Limit.Name != "workers" || d.Remaining != 1 {
		t.Fatalf("lease a (2 units): %+v", d)
	}
	// The same id again grows the lease.
	if d := h.take(req(1, "a")); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("lease a again: %+v", d)
	}
	if d := h.take(req(1, "b")); d.Allowed || d.Limit.Name != "workers" || !closeDur(d.RetryAfter, time.Minute) {
		t.Fatalf("lease b while full: %+v, want denied for 1m", d)
	}
	if d := h.peek(r); d.Remaining != 7 {
		t.Fatalf("hourly remaining = %d, want 7 (b was denied, charged nothing)", d.Remaining)
	}
	// Release only the concurrency check, as weir.Lease.Release does.
	h.clk.set(t, 5*time.Second)
	h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 3, Lease: "a", At: base})
	if d := h.peek(c); d.Remaining != 3 {
		t.Fatalf("after release: remaining %d, want 3", d.Remaining)
	}
	if d := h.peek(r); d.Remaining != 7 {
		t.Fatalf("release gave back rate units: hourly remaining %d, want 7", d.Remaining)
	}
	// Releasing an unknown or already released lease does nothing.
	h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 1, Lease: "a", At: base})
	h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 1, Lease: "nobody", At: base})
	if d := h.take(req(3, "b")); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("lease b after release: %+v", d)
	}
	h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 1, Lease: "a", At: base})
	if d := h.peek(c); d.Allowed || d.Remaining != 0 {
		t.Fatalf("releasing a stale lease freed b's units: %+v", d)
	}
	// b expires 1m after it was taken, unreleased.
	h.clk.set(t, 5*time.Second+time.Minute-time.Microsecond)
	if d := h.peek(c); d.Allowed {
		t.Fatalf("b expired early: %+v", d)
	}
	h.clk.set(t, 5*time.Second+time.Minute)
	if d := h.peek(c); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("b did not expire after its TTL: %+v", d)
	}
}

// testLeaseLine: a denied take with Queue keeps its holder's place in line
// (Request.Queue): holders are admitted in the order they joined, a
// newcomer does not take freed units ahead of them, a place lapses unless
// renewed, and an admission or a refund ends it. The line must survive
// between calls, so the store saves state on these denials too.
func testLeaseLine(t *testing.T, f Factory) {
	h := newHarness(t, f)
	c := weir.Check{Key: "api", Limit: weir.Concurrent(2, time.Minute).WithName("slots")}
	take := func(lease string, cost int64, queue time.Duration) weir.Decision {
		return h.take(&weir.Request{Checks: []weir.Check{c}, Cost: cost, Lease: lease, Queue: queue})
	}
	release := func(lease string) {
		h.refund(&weir.Request{Checks: []weir.Check{c}, Cost: 1, Lease: lease, At: h.clk.now()})
	}
	const q = 500 * time.Millisecond
	if d := take("a", 2, q); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("a: %+v", d)
	}
	h.clk.set(t, time.Millisecond)
	if d := take("b", 1, q); d.Allowed || d.Remaining != 0 || !closeDur(d.RetryAfter, time.Minute-time.Millisecond) {
		t.Fatalf("b while full: %+v, want denied and in line", d)
	}
	h.clk.set(t, 2*time.Millisecond)
	if d := take("c", 2, q); d.Allowed {
		t.Fatalf("c while full: %+v", d)
	}
	h.clk.set(t, 3*time.Millisecond)
	release("a")
	// Two units are free; b (1) and c (2) are in line, in that order.
	if d := h.peek(c); d.Allowed || d.Remaining != 0 {
		t.Fatalf("peek with b and c in line: %+v, want nothing for a newcomer", d)
	}
	if d := take("d", 1, 0); d.Allowed {
		t.Fatalf("newcomer d took a unit ahead of the line: %+v", d)
	}
	if d := take("c", 2, q); d.Allowed || d.Remaining != 1 {
		t.Fatalf("c ahead of b: %+v, want denied with 1 unit left for it", d)
	}
	// Remaining is what is left to the asker: waiters behind it do not count.
	if d := take("b", 1, q); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("b, first in line: %+v", d)
	}
	// b left the line when admitted; c needs 2 and only 1 is free.
	if d := take("c", 2, q); d.Allowed || d.Remaining != 1 {
		t.Fatalf("c with b holding: %+v", d)
	}
	h.clk.set(t, 4*time.Millisecond)
	release("b")
	if d := take("c", 2, q); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("c after b's release: %+v", d)
	}
	// A waiter that stops asking loses its place once it lapses; one that
	// gives up (refunds) loses it at once.
	if d := take("e", 1, 100*time.Millisecond); d.Allowed {
		t.Fatalf("e while full: %+v", d)
	}
	h.clk.set(t, 5*time.Millisecond)
	if d := take("f", 1, q); d.Allowed {
		t.Fatalf("f while full: %+v", d)
	}
	release("c")
	if d := take("g", 2, 0); d.Allowed || d.Remaining != 0 {
		t.Fatalf("g with e and f in line: %+v", d)
	}
	release("f") // f gives up
	if d := take("g", 2, 0); d.Allowed || d.Remaining != 1 {
		t.Fatalf("g with e in line: %+v, want 1 left", d)
	}
	h.clk.set(t, 4*time.Millisecond+100*time.Millisecond) // e's place lapses
	if d := take("g", 2, 0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("g after e's place lapsed: %+v", d)
	}
	// Holders that join at the same instant go in the byte order of their
	// ids (in a Redis batch every decision has the same instant).
	h.clk.set(t, 200*time.Millisecond)
	for _, id := range []string{"y", "x"} {
		if d := take(id, 2, q); d.Allowed {
			t.Fatalf("%s while g holds both units: %+v", id, d)
		}
	}
	release("g")
	if d := take("y", 2, q); d.Allowed {
		t.Fatalf("y ahead of x, which joined at the same instant: %+v", d)
	}
	if d := take("x", 2, q); !d.Allowed {
		t.Fatalf("x, first of the two: %+v", d)
	}
	release("x")
	if d := take("y", 2, q); !d.Allowed {
		t.Fatalf("y after x: %+v", d)
	}
	// Everything lapses with the lease TTL: the state is then fresh.
	h.clk.set(t, 200*time.Millisecond+time.Minute)
	if d := h.peek(c); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("after the TTL: %+v", d)
	}
}

func testReset(t *testing.T, f Factory) {
	h := newHarness(t, f)
	limits := []weir.Limit{
		weir.PerHour(3),
		weir.Per(3, time.Hour).WithAlgorithm(weir.FixedWindow),
		weir.Per(3, time.Hour).WithAlgorithm(weir.SlidingWindowCounter),
		weir.Per(3, time.Hour).WithAlgorithm(weir.SlidingWindowLog),
		weir.Concurrent(3, time.Hour),
	}
	var checks []weir.Check
	for _, l := range limits {
		c := weir.Check{Key: "reset", Limit: l}
		checks = append(checks, c)
		h.take(&weir.Request{Checks: []weir.Check{c}, Cost: 3, Lease: "x"})
		if d := h.peek(c); d.Allowed {
			t.Fatalf("%s: not full after 3 units", l)
		}
	}
	other := weir.Check{Key: "other", Limit: limits[0]}
	h.take(&weir.Request{Checks: []weir.Check{other}, Cost: 3})
	h.reset(checks[0])
	if d := h.peek(checks[0]); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("%s after Reset: %+v, want full", checks[0].Limit, d)
	}
	if d := h.peek(checks[1]); d.Allowed {
		t.Fatalf("Reset of one check reset another limit on the same key")
	}
	h.reset(checks[1:]...)
	for _, c := range checks {
		if d := h.peek(c); !d.Allowed || d.Remaining != 3 {
			t.Errorf("%s after Reset: %+v, want full", c.Limit, d)
		}
	}
	if d := h.peek(other); d.Allowed {
		t.Fatalf("Reset of key %q reset key %q", "reset", "other")
	}
	// Resetting what was never seen is fine.
	h.reset(weir.Check{Key: "never", Limit: limits[0]})
}

func testInvalid(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ctx := context.Background()
	tb := weir.Check{Key: "inv", Limit: weir.PerSecond(10).WithBurst(5).WithName("tb")}
	fw := weir.Check{Key: "inv", Limit: weir.Per(3, time.Second).WithAlgorithm(weir.FixedWindow).WithName("fw")}
	cc := weir.Check{Key: "inv", Limit: weir.Concurrent(2, time.Second).WithName("cc")}
	bad := weir.Check{Key: "inv", Limit: weir.Limit{Name: "bad", Quota: 0, Period: time.Second}}
	cases := []struct {
		name  string
		req   *weir.Request
		field string
		also  error
	}{
		{"negative cost", &weir.Request{Checks: []weir.Check{tb}, Cost: -1}, "cost", nil},
		{"cost above burst", &weir.Request{Checks: []weir.Check{tb}, Cost: 6}, "cost", weir.ErrExceedsCapacity},
		{"cost above quota", &weir.Request{Checks: []weir.Check{tb, fw}, Cost: 4}, "cost", weir.ErrExceedsCapacity},
		{"lease missing", &weir.Request{Checks: []weir.Check{tb, cc}, Cost: 1}, "lease", nil},
		{"bad limit", &weir.Request{Checks: []weir.Check{tb, bad}, Cost: 1}, "quota", nil},
		{"no checks", &weir.Request{Cost: 1}, "checks", nil},
		{"negative max wait", &weir.Request{Checks: []weir.Check{tb}, Cost: 1, MaxWait: -time.Second}, "wait", nil},
		{"period not whole microseconds", &weir.Request{Checks: []weir.Check{{Key: "inv", Limit: weir.Per(1, 1500)}}, Cost: 1}, "period", nil},
	}
	for _, tc := range cases {
		_, err := h.store.Take(ctx, tc.req)
		t.Run(tc.name, func(t *testing.T) { wantField(t, err, tc.field, tc.also) })
	}
	if _, err := h.store.Take(ctx, nil); err == nil {
		t.Error("Take(nil): no error")
	}
	// Nothing was charged.
	for _, c := range []weir.Check{tb, fw, cc} {
		if d := h.peek(c); !d.Allowed || d.Remaining != c.Limit.Capacity() {
			t.Errorf("%s after invalid requests: %+v, want untouched", c.Limit.Name, d)
		}
	}
}

// Keys that are distinct as byte strings never share state, whatever bytes
// they hold, and (name, key) pairs are not confused by concatenation.
func testKeys(t *testing.T, f Factory) {
	h := newHarness(t, f)
	long := strings.Repeat("ключ-🔑-", 150)
	keys := []string{"", "\x00", "\x00\x00", "a\x00b", "{", "}", "{}", "{a}", ":", "a:b", "a", "A", " ", "\xff\xfe", long, long + "x"}
	lim := weir.PerHour(1).WithName("keys")
	for i, k := range keys {
		if d := h.take(&weir.Request{Checks: []weir.Check{{Key: k, Limit: lim}}, Cost: 1}); !d.Allowed {
			t.Errorf("key %d %q: first request denied: shares state with an earlier key", i, k)
		}
	}
	for i, k := range keys {
		if d := h.peek(weir.Check{Key: k, Limit: lim}); d.Allowed {
			t.Errorf("key %d %q: not charged", i, k)
		}
	}
	pairs := [][2]weir.Check{
		{{Key: "bc", Limit: weir.PerHour(1).WithName("a")}, {Key: "c", Limit: weir.PerHour(1).WithName("ab")}},
		{{Key: ":b", Limit: weir.PerHour(1).WithName("a")}, {Key: "b", Limit: weir.PerHour(1).WithName("a:")}},
		{{Key: "\x00b", Limit: weir.PerHour(1).WithName("a")}, {Key: "b", Limit: weir.PerHour(1).WithName("a\x00")}},
		{{Key: "}b", Limit: weir.PerHour(1).WithName("{a")}, {Key: "b", Limit: weir.PerHour(1).WithName("{a}")}},
	}
	for i, p := range pairs {
		h.take(&weir.Request{Checks: []weir.Check{p[0]}, Cost: 1})
		if d := h.peek(p[1]); !d.Allowed {
			t.Errorf("pair %d: (%q, %q) shares state with (%q, %q)", i, p[1].Limit.Name, p[1].Key, p[0].Limit.Name, p[0].Key)
		}
	}
	// Many distinct keys, each independent.
	n := scale(500, 100)
	for i := range n {
		k := weir.Check{Key: "many:" + strconv.Itoa(i), Limit: lim}
		if d := h.take(&weir.Request{Checks: []weir.Check{k}, Cost: 1}); !d.Allowed {
			t.Fatalf("key %q denied on first use", k.Key)
		}
	}
}
