package iolimit_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestCreditAfterIdle: bytes that passed on credit (without a clock
// reading) are charged when the clock is next read, not forgotten because
// the bucket looks full after an idle spell. A limiter that charged them
// at the time of the grant would let 2·burst through at once here.
func TestCreditAfterIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 1 * mib, 64 * kib
		lim := mustLimit(t, rate, burst)
		ctx := t.Context()
		if err := lim.WaitN(ctx, 1); err != nil { // a clock reading: the rest of the bucket becomes credit
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		start := time.Now()
		if err := lim.WaitN(ctx, burst-1); err != nil { // on credit
			t.Fatal(err)
		}
		if err := lim.WaitN(ctx, burst); err != nil {
			t.Fatal(err)
		}
		// The credit is charged at 10 s: the next burst is due when
		// burst-1 bytes have refilled.
		want := time.Duration((burst - 1) * int64(time.Second) / rate)
		if d := time.Since(start); d < want {
			t.Fatalf("2·burst-1 bytes passed within %v, want at least %v", d, want)
		}
	})
}

// TestCreditBound is a property test of the credit path: goroutines that
// sleep for random spells (from nothing to longer than the bucket takes
// to fill) and take random amounts never pass more than burst + rate·T
// in any interval.
func TestCreditBound(t *testing.T) {
	for seed := range uint64(30) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			rate := int64(1+rng.IntN(1000)) * kib
			burst := max(1, rate/int64(1+rng.IntN(50)))
			lim := mustLimit(t, rate, burst)
			rec := newRecorder()
			var wg sync.WaitGroup
			for g := range 3 {
				r := rand.New(rand.NewPCG(seed, uint64(g)))
				wg.Go(func() {
					for range 300 {
						switch r.IntN(4) {
						case 0:
							time.Sleep(time.Duration(r.Int64N(int64(2 * time.Second))))
						case 1:
							time.Sleep(time.Duration(r.Int64N(int64(time.Millisecond))))
						}
						n := 1 + r.Int64N(burst)
						if r.IntN(3) == 0 {
							n = 1 + r.Int64N(min(burst, 16))
						}
						if err := lim.WaitN(t.Context(), n); err != nil {
							t.Error(err)
							return
						}
						rec.note(int(n))
					}
				})
			}
			wg.Wait()
			checkBound(t, rec.events, rate, burst)
		})
	}
}

// TestReserve: Reserve charges at once and says how long to wait, like
// WaitN without the sleep; it keeps the same bound.
func TestReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, burst = 1 * mib, 64 * kib
		lim := mustLimit(t, rate, burst)
		if d, err := lim.Reserve(burst); err != nil || d != 0 {
			t.Fatalf("Reserve(burst) on a full bucket = %v, %v; want 0, nil", d, err)
		}
		d, err := lim.Reserve(kib)
		// 1 KiB at 1 MiB/s is 976,562.5 ns, rounded up.
		if err != nil || d != 976563 {
			t.Fatalf("Reserve(1 KiB) on an empty bucket = %v, %v; want 976.563µs", d, err)
		}
		// The next reservation queues behind the first: exact halves add up.
		if d2, _ := lim.Reserve(kib); d2 != 1953125 {
			t.Errorf("second Reserve(1 KiB) = %v, want 1.953125ms", d2)
		}
		if _, err := lim.Reserve(-1); err == nil {
			t.Error("Reserve(-1) succeeded")
		} else {
			checkField(t, err, "n")
		}
		if d, err := lim.Reserve(0); d != 0 || err != nil {
			t.Errorf("Reserve(0) = %v, %v", d, err)
		}
		// A caller that sleeps as told keeps burst + rate·T.
		lim = mustLimit(t, rate, burst)
		rec := newRecorder()
		for range 2000 {
			d, err := lim.Reserve(3000)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(d)
			rec.note(3000)
		}
		checkBound(t, rec.events, rate, burst)
	})
}
