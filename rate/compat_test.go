package rate_test

import (
	"math"
	"testing"
	"time"

	"github.com/weir-go/weir/rate"
	xrate "golang.org/x/time/rate"
)

const d = 100 * time.Millisecond

// op is one step of a scripted comparison. Times are in units of d.
type op struct {
	kind string // allow, reserve, tokens, limit, burst, cancel
	k    float64
	n    int           // n for allow/reserve, burst for "burst", reservation index for cancel
	l    rate.Limit    // for "limit"
	dt   time.Duration // added to k*d (random scripts use dt alone)
}

func at(k float64) time.Duration { return time.Duration(k * float64(d)) }

func (h *harness) run(ops []op) {
	h.tb.Helper()
	if h.runUntilMarginal(ops) {
		h.tb.Fatalf("unexpected marginal decision in a scripted case:\n%s", h.history())
	}
}

// runUntilMarginal executes ops, comparing after each one, and reports
// whether it stopped early at a marginal decision.
func (h *harness) runUntilMarginal(ops []op) bool {
	h.tb.Helper()
	for _, o := range ops {
		t := at(o.k) + o.dt
		switch o.kind {
		case "allow":
			h.allowN(t, o.n)
		case "reserve":
			h.reserveN(t, o.n)
		case "tokens":
			h.tokensAt(t)
		case "limit":
			h.setLimitAt(t, o.l)
		case "burst":
			h.setBurstAt(t, o.n)
		case "cancel":
			h.cancelAt(o.n, t)
		default:
			h.tb.Fatalf("bad op %q", o.kind)
		}
		if h.marginal {
			return true
		}
		h.tokensAt(t)
		h.checkConfig()
	}
	return false
}

func allows(steps ...[3]float64) []op { // {k, n, _}
	var ops []op
	for _, s := range steps {
		ops = append(ops, op{kind: "allow", k: s[0], n: int(s[1])})
	}
	return ops
}

func res(k float64, n int) op    { return op{kind: "reserve", k: k, n: n} }
func cancel(k float64, i int) op { return op{kind: "cancel", k: k, n: i} }

// compatCases are compared step by step against x/time, at a t0 with and
// without a monotonic clock reading. Several mirror x/time's own tests.
var compatCases = []struct {
	name  string
	r     rate.Limit
	b     int
	clamp bool // the script goes back in time
	ops   []op
}{
	{"Burst1", 10, 1, false, allows(
		[3]float64{0, 1}, [3]float64{0, 1}, [3]float64{0, 1}, [3]float64{1, 1}, [3]float64{1, 1},
		[3]float64{1, 1}, [3]float64{2, 2}, [3]float64{2, 1}, [3]float64{2, 1})},
	{"Burst3", 10, 3, false, allows(
		[3]float64{0, 2}, [3]float64{0, 2}, [3]float64{0, 1}, [3]float64{0, 1}, [3]float64{1, 4},
		[3]float64{2, 1}, [3]float64{3, 1}, [3]float64{4, 1}, [3]float64{4, 1}, [3]float64{4, 1},
		[3]float64{4, 1}, [3]float64{9, 3}, [3]float64{9, 0})},
	{"Fractional", 0.7692307692307693, 1, false, allows(
		[3]float64{0, 1}, [3]float64{1, 1}, [3]float64{13, 1}, [3]float64{13.0000001, 1}, [3]float64{26, 1})},
	{"SimpleReserve", 10, 2, false, []op{res(0, 2), res(0, 2), res(3, 2)}},
	{"Mix", 10, 2, false, []op{res(0, 3), res(0, 2), {kind: "allow", k: 1, n: 2}, res(1, 2), {kind: "allow", k: 1, n: 1}, {kind: "allow", k: 3, n: 1}}},
	{"CancelInvalid", 10, 2, false, []op{res(0, 2), res(0, 3), cancel(0, 1), res(0, 2)}},
	{"CancelLast", 10, 2, false, []op{res(0, 2), res(0, 2), cancel(1, 1), res(1, 2)}},
	{"CancelTooLate", 10, 2, false, []op{res(0, 2), res(0, 2), cancel(3, 1), res(3, 2)}},
	{"Cancel0Tokens", 10, 2, false, []op{res(0, 2), res(0, 1), res(0, 1), cancel(0, 1), res(0, 1)}},
	{"Cancel1Token", 10, 2, false, []op{res(0, 2), res(0, 2), res(0, 1), cancel(2, 1), res(2, 2)}},
	{"CancelMulti", 10, 4, false, []op{res(0, 4), res(0, 3), res(0, 1), res(0, 1), cancel(1, 3), cancel(1, 1), res(1, 3)}},
	{"CancelTwice", 10, 3, false, []op{res(0, 3), res(0, 2), cancel(1, 1), cancel(1, 1), res(1, 3)}},
	{"CancelZeroSizeReservation", 10, 3, false, []op{res(0, 3), res(0, 0), cancel(0, 1), res(0, 1)}},
	{"ReserveSetLimit", 5, 2, false, []op{res(0, 2), res(0, 2), {kind: "limit", k: 2, l: 10}, res(2, 1)}},
	{"ReserveSetBurst", 5, 2, false, []op{res(0, 2), res(0, 2), {kind: "burst", k: 3, n: 4}, res(3, 4)}},
	{"ReserveSetLimitCancel", 5, 2, false, []op{res(0, 2), res(0, 2), {kind: "limit", k: 2, l: 10}, cancel(2, 1), res(2, 2)}},
	{"SetLimitSlowerThenCancel", 10, 2, false, []op{res(0, 2), res(0, 2), {kind: "limit", k: 1, l: 5}, cancel(1, 1), res(1, 2)}},
	{"SetBurstShrinkGrow", 10, 5, false, []op{{kind: "allow", k: 0, n: 1}, {kind: "burst", k: 0, n: 2}, {kind: "allow", k: 0, n: 2}, {kind: "burst", k: 1, n: 10}, {kind: "allow", k: 20, n: 10}}},
	{"Inf", rate.Inf, 0, false, []op{{kind: "allow", k: 0, n: 5}, res(0, 100), cancel(0, 0), {kind: "allow", k: 0, n: -3}}},
	{"InfThenFinite", rate.Inf, 2, false, []op{res(0, 5), {kind: "limit", k: 1, l: 10}, res(1, 2), cancel(1, 0), {kind: "allow", k: 1, n: 2}}},
	{"FiniteThenInfThenFinite", 10, 3, false, []op{{kind: "allow", k: 0, n: 3}, {kind: "limit", k: 1, l: rate.Inf}, {kind: "allow", k: 1, n: 9}, {kind: "limit", k: 1, l: 10}, {kind: "allow", k: 1, n: 1}, {kind: "allow", k: 1, n: 1}}},
	{"InfSetBurst", rate.Inf, 3, false, []op{{kind: "burst", k: 1, n: 1}, {kind: "limit", k: 1, l: 1}, {kind: "allow", k: 1, n: 1}, {kind: "allow", k: 1, n: 1}}},
	{"Burst0", 10, 0, false, []op{{kind: "allow", k: 0, n: 1}, res(0, 1), {kind: "allow", k: 5, n: 0}, res(5, 0), {kind: "burst", k: 6, n: 1}, {kind: "allow", k: 6, n: 1}, {kind: "allow", k: 16, n: 1}}},
	{"NGreaterThanBurst", 10, 3, false, []op{{kind: "allow", k: 0, n: 4}, res(0, 4), res(0, 3), res(0, 4), {kind: "allow", k: 100, n: 4}}},
	{"NegativeN", 10, 3, false, []op{{kind: "allow", k: 0, n: 3}, {kind: "allow", k: 0, n: -2}, {kind: "allow", k: 0, n: 2}, res(0, 3), {kind: "allow", k: 0, n: -100}, {kind: "allow", k: 0, n: 3}}},
	{"ZeroLimit", 0, 2, false, []op{{kind: "allow", k: 0, n: 1}, {kind: "allow", k: 10, n: 1}, {kind: "allow", k: 20, n: 1}, res(20, 1), res(20, 2), cancel(21, 0), {kind: "allow", k: 30, n: 1}, {kind: "limit", k: 30, l: 10}, {kind: "allow", k: 41, n: 1}}},
	{"NegativeLimit", -5, 2, false, []op{{kind: "allow", k: 0, n: 2}, {kind: "allow", k: 10, n: 1}, res(10, 1), {kind: "limit", k: 11, l: 10}, {kind: "allow", k: 30, n: 1}}},
	{"TinyLimit", 1e-10, 1, false, []op{{kind: "allow", k: 0, n: 1}, {kind: "allow", k: 0, n: 1}, {kind: "allow", k: 36000, n: 1}, res(36000, 1)}},
	{"HugeLimit", 1e12, 5, false, []op{{kind: "allow", k: 0, n: 5}, {kind: "allow", k: 0, n: 5}, res(0, 5), {kind: "allow", k: 1e-8, n: 5}}},
	{"Every1ns", rate.Every(time.Nanosecond), 1, false, []op{{kind: "allow", k: 0, n: 1}, {kind: "allow", k: 0, n: 1}, {kind: "allow", k: 1e-8, n: 1}, res(1e-8, 1), res(1e-8, 1)}},
	{"LongQueue", 2, 10, false, []op{res(0, 10), res(0, 10), res(0, 10), res(0, 10), cancel(10, 3), cancel(10, 1), res(10, 5), {kind: "allow", k: 400, n: 10}}},
	{"ThirdHz", 1.0 / 3, 2, false, []op{{kind: "allow", k: 0, n: 2}, {kind: "allow", k: 29.999, n: 1}, {kind: "allow", k: 30, n: 1}, res(30, 2), {kind: "limit", k: 31, l: 7.0 / 60}, res(40, 1)}},
	// Going back in time: compared against x/time driven at max(t, last).
	{"JumpBackwards", 10, 3, true, allows(
		[3]float64{1, 1}, [3]float64{0, 1}, [3]float64{0, 1}, [3]float64{0, 1}, [3]float64{0, 1},
		[3]float64{1, 1}, [3]float64{1, 1}, [3]float64{1, 1}, [3]float64{2, 1}, [3]float64{2, 1}, [3]float64{2, 1})},
	{"ReserveJumpBack", 10, 2, true, []op{res(1, 2), res(0, 1), res(2, 2), res(0, 3), res(2, 1)}},
	{"SetLimitBackwards", 10, 2, true, []op{{kind: "allow", k: 5, n: 2}, {kind: "limit", k: 1, l: 20}, {kind: "allow", k: 5, n: 1}, {kind: "burst", k: 2, n: 4}, {kind: "allow", k: 6, n: 3}}},
}

func TestCompatScripts(t *testing.T) {
	for _, tc := range compatCases {
		for _, mono := range []bool{true, false} {
			t0 := time.Now()
			if !mono {
				t0 = t0.Round(0) // strip the monotonic reading: wall-clock arithmetic
			}
			name := tc.name + "/mono"
			if !mono {
				name = tc.name + "/wall"
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, t0, tc.r, tc.b, tc.clamp)
				h.run(tc.ops)
			})
		}
	}
}

func TestCompatZeroValue(t *testing.T) {
	t0 := time.Now()
	h := &harness{tb: t, t0: t0, w: &rate.Limiter{}, x: &xrate.Limiter{}, lastMut: math.MinInt64}
	h.checkConfig()
	h.run([]op{
		{kind: "allow", k: 0, n: 1}, res(0, 1), {kind: "allow", k: 1, n: 0}, res(1, 0), {kind: "allow", k: 1, n: -1},
		{kind: "tokens", k: 2}, {kind: "burst", k: 3, n: 2}, {kind: "allow", k: 3, n: 2}, {kind: "allow", k: 3, n: 1},
		{kind: "limit", k: 4, l: 10}, {kind: "allow", k: 14, n: 2},
	})
	var z rate.Limiter
	if z.Allow() || z.Reserve().OK() || z.Limit() != 0 || z.Burst() != 0 || z.Tokens() != 0 {
		t.Fatal("zero Limiter must reject and report zero configuration")
	}
}

// TestGoldenJumpBackwards pins the deliberate difference from x/time: after
// an event stamped earlier than the last one, x/time re-mints the tokens for
// the interval it "travelled back", weir does not.
func TestGoldenJumpBackwards(t *testing.T) {
	t0 := time.Now()
	type step struct {
		k    float64
		toks float64 // weir's TokensAt before the call
		ok   bool
		xok  bool // what x/time v0.16.0 answers
	}
	steps := []step{
		{1, 3, true, true}, {0, 2, true, true}, {0, 1, true, true}, {0, 0, false, false},
		{1, 0, false, true}, // x/time: "got a token" minted by going back to t0
		{2, 1, true, true}, {2, 0, false, false}, {3, 1, true, true},
	}
	w, x := rate.NewLimiter(10, 3), xrate.NewLimiter(10, 3)
	for i, s := range steps {
		tm := t0.Add(at(s.k))
		if got := w.TokensAt(tm); got != s.toks {
			t.Errorf("step %d: TokensAt = %v, want %v", i, got, s.toks)
		}
		if got := w.AllowN(tm, 1); got != s.ok {
			t.Errorf("step %d: weir AllowN = %v, want %v", i, got, s.ok)
		}
		if got := x.AllowN(tm, 1); got != s.xok {
			t.Errorf("step %d: x/time AllowN = %v, want %v (pinned v0.16.0 behaviour)", i, got, s.xok)
		}
	}
}

// TestGoldenReserve checks absolute expectations (not only agreement with
// x/time) for reservations and cancellation.
func TestGoldenReserve(t *testing.T) {
	t0 := time.Now()
	tm := func(k float64) time.Time { return t0.Add(at(k)) }
	lim := rate.NewLimiter(10, 4)
	want := func(r *rate.Reservation, from float64, wantD time.Duration) {
		t.Helper()
		if !r.OK() {
			t.Fatalf("reservation not OK")
		}
		if got := r.DelayFrom(tm(from)); got != wantD {
			t.Errorf("DelayFrom = %v, want %v", got, wantD)
		}
	}
	want(lim.ReserveN(tm(0), 4), 0, 0)
	rA := lim.ReserveN(tm(0), 3)
	want(rA, 0, 3*d)
	want(lim.ReserveN(tm(0), 1), 0, 4*d)
	rC := lim.ReserveN(tm(0), 1)
	want(rC, 0, 5*d)
	rC.CancelAt(tm(1))
	rA.CancelAt(tm(1))
	want(lim.ReserveN(tm(1), 3), 1, 4*d)
	if r := lim.ReserveN(tm(1), 5); r.OK() || r.DelayFrom(tm(1)) != rate.InfDuration {
		t.Errorf("n > burst must not be OK and must report InfDuration")
	}
	var zero rate.Reservation
	if zero.OK() || zero.Delay() != rate.InfDuration {
		t.Errorf("zero Reservation must not be OK")
	}
	zero.Cancel() // must not panic
}

func TestEvery(t *testing.T) {
	for _, iv := range []time.Duration{0, -1, 1, time.Microsecond, time.Millisecond, 10 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 13 * time.Second / 10, math.MaxInt64} {
		if w, x := rate.Every(iv), xrate.Every(iv); float64(w) != float64(x) {
			t.Errorf("Every(%v) = %v, x/time %v", iv, w, x)
		}
	}
	if rate.Inf != rate.Limit(xrate.Inf) || rate.InfDuration != xrate.InfDuration {
		t.Error("Inf constants differ from x/time")
	}
}

// TestExtremeTimes feeds times at the edges of time.Time's range. Results
// are compared with x/time where both are meaningful; mostly this checks
// that saturation never panics or mints tokens.
func TestExtremeTimes(t *testing.T) {
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(1<<40, 0), time.Now(), time.Now().Add(200 * 365 * 24 * time.Hour), time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)}
	for _, r := range []rate.Limit{10, 1.0 / 3, 0, rate.Inf, 1e9} {
		lim := rate.NewLimiter(r, 3)
		granted := 0
		for _, tm := range times {
			if lim.AllowN(tm, 3) {
				granted += 3
			}
			_ = lim.TokensAt(tm)
			res := lim.ReserveN(tm, 1)
			_ = res.DelayFrom(tm)
			res.CancelAt(tm)
			lim.SetLimitAt(tm, r)
			lim.SetBurstAt(tm, 3)
		}
		if tok := lim.TokensAt(time.Now()); tok > 3 || math.IsNaN(tok) {
			t.Errorf("limit %v: tokens %v out of range", r, tok)
		}
	}
}
