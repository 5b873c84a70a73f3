package rate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir/rate"
)

// TestConcurrentNoOverAdmission hammers one limiter from several goroutines
// that share a fake clock (so calls arrive slightly out of order), while
// others reserve-and-cancel and re-apply the configuration, which forces the
// slow path and state swaps. Admitted Allow events may never exceed
// burst + rate*elapsed: reservations only ever take tokens away, and a
// cancellation gives back at most what its reservation took.
func TestConcurrentNoOverAdmission(t *testing.T) {
	const (
		r       = 1000.0
		b       = 10
		workers = 4
		perW    = 20_000
	)
	ops := perW
	if raceEnabled {
		ops = 5_000
	}
	t0 := time.Now()
	var clock atomic.Int64 // ns since t0
	lim := rate.NewLimiter(r, b)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				now := t0.Add(time.Duration(clock.Add(1000))) // 1µs per call
				switch {
				case w == 0 && i%50 == 0:
					lim.SetLimitAt(now, r)
				case w == 1 && i%50 == 0:
					lim.SetBurstAt(now, b)
				case w == 1 && i%3 == 0:
					res := lim.ReserveN(now, 1)
					res.CancelAt(now)
				default:
					if lim.AllowN(now, 1) {
						admitted.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Duration(clock.Load()).Seconds()
	bound := int64(b + r*elapsed + 1)
	if got := admitted.Load(); got > bound {
		t.Fatalf("admitted %d events, bound %d", got, bound)
	}
	if got := admitted.Load(); got < bound/2 {
		t.Fatalf("admitted only %d events of %d possible: limiter is starving callers", got, bound)
	}
}

// TestConcurrentRealClock exercises the monotonic-clock hot path (Allow,
// Reserve, Wait) from several goroutines without sleeping. The rate is so
// high that Wait never blocks; the test checks the race detector and the
// accounting (admitted <= burst + rate*elapsed).
func TestConcurrentRealClock(t *testing.T) {
	const r, b = 1e5, 100
	lim := rate.NewLimiter(r, b)
	start := time.Now()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 2000 {
				switch i % 4 {
				case 0:
					if lim.Allow() {
						admitted.Add(1)
					}
				case 1:
					res := lim.Reserve()
					if res.Delay() > 0 {
						res.Cancel()
					} else {
						admitted.Add(1)
					}
				case 2:
					ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
					if lim.Wait(ctx) == nil {
						admitted.Add(1)
					}
					cancel()
				default:
					_ = lim.Tokens()
				}
			}
		})
	}
	wg.Wait()
	bound := int64(b + r*time.Since(start).Seconds() + 1)
	if got := admitted.Load(); got > bound {
		t.Fatalf("admitted %d, bound %d", got, bound)
	}
}

// TestZeroAllocs pins the allocation behaviour of the hot paths.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	lim := rate.NewLimiter(1e9, 1<<20)
	now := time.Now()
	ctx := context.Background()
	for name, f := range map[string]func(){
		"Allow":    func() { lim.Allow() },
		"AllowN":   func() { lim.AllowN(now, 1) },
		"Wait":     func() { _ = lim.Wait(ctx) },
		"TokensAt": func() { lim.TokensAt(now) },
		"Tokens":   func() { lim.Tokens() },
	} {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, a)
		}
	}
	if a := testing.AllocsPerRun(1000, func() { lim.Reserve() }); a > 1 {
		t.Errorf("Reserve: %v allocs/op, want at most 1 (the *Reservation, as in x/time)", a)
	}
}
