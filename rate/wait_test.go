package rate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir/rate"
)

// All Wait tests run in a synctest bubble: time is fake and only advances
// when every goroutine in the bubble is blocked, so nothing sleeps for real.

func TestWaitPreCancelledChargesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(10, 3)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := lim.WaitN(ctx, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitN = %v, want context.Canceled", err)
		}
		if got := lim.Tokens(); got != 3 {
			t.Fatalf("tokens after pre-cancelled wait = %v, want 3 (nothing charged)", got)
		}
	})
}

func TestWaitExceedsBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(10, 3)
		err := lim.WaitN(context.Background(), 4)
		if err == nil || err.Error() != "rate: Wait(n=4) exceeds limiter's burst 3" {
			t.Fatalf("WaitN(4) = %v", err)
		}
		// Inf ignores the burst.
		if err := rate.NewLimiter(rate.Inf, 0).WaitN(context.Background(), 100); err != nil {
			t.Fatalf("Inf WaitN = %v", err)
		}
	})
}

func TestWaitImpossibleDeadlineFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(10, 3)
		if err := lim.WaitN(context.Background(), 3); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := lim.WaitN(ctx, 3) // needs 300ms
		if err == nil || !strings.Contains(err.Error(), "would exceed context deadline") {
			t.Fatalf("WaitN = %v, want deadline error", err)
		}
		if el := time.Since(start); el != 0 {
			t.Fatalf("impossible wait slept %v, want 0", el)
		}
		if got := lim.Tokens(); got != 0 {
			t.Fatalf("tokens = %v, want 0 (failed wait must not charge)", got)
		}
	})
}

func TestWaitSleepsExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(10, 3)
		start := time.Now()
		if err := lim.WaitN(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 0 {
			t.Fatalf("act-now slept %v", el)
		}
		if err := lim.WaitN(context.Background(), 3); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 200*time.Millisecond {
			t.Fatalf("act-later slept %v, want 200ms", el)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := lim.Wait(ctx); err != nil { // needs 100ms, deadline allows it
			t.Fatal(err)
		}
		if el := time.Since(start); el != 300*time.Millisecond {
			t.Fatalf("slept until %v, want 300ms", el)
		}
	})
}

func TestWaitCancelledRefunds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(10, 3)
		if err := lim.WaitN(context.Background(), 2); err != nil { // 1 token left
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel()
		}()
		start := time.Now()
		err := lim.WaitN(ctx, 3) // would need to wait 200ms
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitN = %v, want context.Canceled", err)
		}
		if el := time.Since(start); el != 100*time.Millisecond {
			t.Fatalf("cancelled after %v, want 100ms", el)
		}
		// The 3 reserved tokens come back: 1 left + 1 refilled = 2.
		if got := lim.Tokens(); got != 2 {
			t.Fatalf("tokens after cancelled wait = %v, want 2", got)
		}
		if err := lim.WaitN(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 100*time.Millisecond {
			t.Fatalf("post-cancel WaitN(2) waited until %v, want immediately", el)
		}
	})
}

func TestWaitZeroLimitBlocksUntilCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(0, 1)
		if !lim.Allow() {
			t.Fatal("first event must use the initial burst")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if err := lim.Wait(ctx); err == nil {
			t.Fatal("Wait on an empty zero-rate limiter with a deadline must fail")
		}
		ctx2, cancel2 := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Minute); cancel2() }()
		if err := lim.Wait(ctx2); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if got := lim.Tokens(); got != 0 {
			t.Fatalf("tokens = %v, want 0 after refund", got)
		}
	})
}

func TestReserveDelayCancelClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := rate.NewLimiter(rate.Every(time.Second), 1)
		if !lim.Allow() || lim.Allow() {
			t.Fatal("burst of 1")
		}
		r := lim.Reserve()
		if d := r.Delay(); d != time.Second {
			t.Fatalf("Delay = %v, want 1s", d)
		}
		time.Sleep(400 * time.Millisecond)
		if d := r.Delay(); d != 600*time.Millisecond {
			t.Fatalf("Delay after 400ms = %v, want 600ms", d)
		}
		r.Cancel()
		if got := lim.Tokens(); got != 0.4 {
			t.Fatalf("tokens after Cancel = %v, want 0.4", got)
		}
		lim.SetLimit(rate.Every(100 * time.Millisecond))
		lim.SetBurst(2)
		time.Sleep(100 * time.Millisecond)
		if got := lim.Tokens(); got < 1.4-1e-9 || got > 1.4+1e-9 {
			t.Fatalf("tokens = %v, want 1.4", got)
		}
	})
}
