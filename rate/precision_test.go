package rate_test

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/weir-go/weir/rate"
	xrate "golang.org/x/time/rate"
)

// R04: a call stamped earlier than the previous one must not mint tokens.
// x/time v0.16.0 moves its "last" timestamp backwards on such calls and then
// re-accrues the interval when time moves forward again (golang/go#56287).
func TestBackwardsTimeMintsNothing(t *testing.T) {
	const (
		calls = 100_000
		r     = 10
		b     = 5
		delta = time.Second // worth 10 tokens at r
	)
	t0 := time.Now()

	t.Run("AllowN/fixed", func(t *testing.T) {
		w, x := rate.NewLimiter(r, b), xrate.NewLimiter(r, b)
		wn, xn := 0, 0
		for i := range calls {
			tm := t0
			if i%2 == 1 {
				tm = t0.Add(-delta)
			}
			if w.AllowN(tm, 1) {
				wn++
			}
			if x.AllowN(tm, 1) {
				xn++
			}
		}
		if wn != b {
			t.Errorf("weir admitted %d events with time never passing t0, want exactly the burst %d", wn, b)
		}
		// Pin x/time's behaviour so this test demonstrably detects minting.
		if xn < calls/4 {
			t.Errorf("x/time admitted only %d; the minting this test guards against is no longer reproduced", xn)
		}
		t.Logf("alternating t0 and t0-%v, %d calls: weir admitted %d, x/time %d", delta, calls, wn, xn)
	})

	t.Run("AllowN/advancing", func(t *testing.T) {
		w := rate.NewLimiter(r, b)
		step := time.Millisecond
		wn := 0
		var latest time.Time
		for i := range calls {
			tm := t0.Add(time.Duration(i/2) * step)
			if i%2 == 1 {
				tm = tm.Add(-delta)
			} else {
				latest = tm
			}
			if w.AllowN(tm, 1) {
				wn++
			}
			if tok := w.TokensAt(tm); tok > b {
				t.Fatalf("tokens %v exceed burst", tok)
			}
		}
		elapsed := latest.Sub(t0).Seconds()
		bound := b + int(math.Floor(r*elapsed))
		if wn > bound || wn < bound-1 {
			t.Errorf("weir admitted %d, want %d (burst + rate*elapsed)", wn, bound)
		}
	})

	t.Run("SetLimitAt", func(t *testing.T) {
		w, x := rate.NewLimiter(r, b), xrate.NewLimiter(r, b)
		wn, xn := 0, 0
		for range calls / 2 {
			if w.AllowN(t0, 1) {
				wn++
			}
			if x.AllowN(t0, 1) {
				xn++
			}
			w.SetLimitAt(t0.Add(-delta), r)
			x.SetLimitAt(t0.Add(-delta), r)
		}
		if wn != b {
			t.Errorf("weir admitted %d, want %d: SetLimitAt in the past must not mint", wn, b)
		}
		t.Logf("AllowN(t0) + SetLimitAt(t0-%v): weir admitted %d, x/time %d", delta, wn, xn)
	})

	t.Run("ReserveN", func(t *testing.T) {
		// Reservations alternate between t0 and t0-delta. Every granted
		// token must be paid for by refill: the k-th token beyond the burst
		// may not be scheduled before (k/r) after t0, give or take the
		// backwards offset of the call that reserved it.
		w := rate.NewLimiter(r, b)
		for i := range 2000 {
			tm := t0
			if i%2 == 1 {
				tm = t0.Add(-delta)
			}
			res := w.ReserveN(tm, 1)
			act := tm.Add(res.DelayFrom(tm))
			k := i + 1 - b
			earliest := t0.Add(time.Duration(float64(k) / r * float64(time.Second))).Add(-delta)
			if k > 0 && act.Before(earliest.Add(-time.Nanosecond)) {
				t.Fatalf("reservation %d acts at %v, earlier than %v", i, act.Sub(t0), earliest.Sub(t0))
			}
		}
	})
}

// R07: precision over long runs. Decisions arrive every step for 30 fake
// days, each asking for n tokens where n = ceil(1.5*rate*step) (so the rate,
// not the arrivals, is the constraint) with burst 2n. With exact arithmetic
// the bucket never overflows after the start, so the number of admitted
// requests after the K-th arrival is exactly
//
//	min(K+1, floor((b + rate*t_K) / n))
//
// computed below with math/big from the exact value of the float64 rate.
// The limiter must agree within one event.
//
// 10^8 decisions per rate run without -race; under -race or -short the same
// 30 days are covered with 10^6 decisions (larger steps).
func TestLongRunPrecision(t *testing.T) {
	decisions := int64(100_000_000)
	if raceEnabled || testing.Short() {
		decisions = 1_000_000
	}
	const span = 30 * 24 * time.Hour
	step := span / time.Duration(decisions)
	for _, r := range []float64{0.7692307692307693, 1.0 / 3, 1e6, 7.0 / 60} {
		t.Run(big.NewFloat(r).Text('g', 16), func(t *testing.T) {
			t.Parallel()
			n := int(math.Max(1, math.Ceil(1.5*r*step.Seconds())))
			b := 2 * n
			lim := rate.NewLimiter(rate.Limit(r), b)
			t0 := time.Unix(1_700_000_000, 0)
			var got int64
			for k := range decisions {
				if lim.AllowN(t0.Add(time.Duration(k)*step), n) {
					got++
				}
			}
			tK := new(big.Rat).SetFrac(big.NewInt(int64(decisions-1)*int64(step)), big.NewInt(1e9))
			avail := new(big.Rat).Mul(new(big.Rat).SetFloat64(r), tK)
			avail.Add(avail, new(big.Rat).SetInt64(int64(b)))
			avail.Quo(avail, new(big.Rat).SetInt64(int64(n)))
			want := new(big.Int).Quo(avail.Num(), avail.Denom()).Int64() // floor: avail > 0
			want = min(want, decisions)
			if d := got - want; d > 1 || d < -1 {
				t.Errorf("rate %v, n %d: admitted %d requests, exact %d", r, n, got, want)
			}
			t.Logf("rate %v: %d decisions, n=%d, admitted %d, exact %d", r, decisions, n, got, want)
		})
	}
}
