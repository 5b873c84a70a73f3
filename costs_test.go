package weir_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// TestCharge: Charge on each algorithm through a Limiter (synctest time):
// always allowed, into debt, and the next request denied until repaid.
func TestCharge(t *testing.T) {
	cases := []struct {
		name      string
		lim       weir.Limit
		charge    int64
		wantDebt  int64
		wantRetry time.Duration
		clamped   bool
	}{
		{"token bucket", weir.Per(10, 10*time.Second), 25, 15, 16 * time.Second, false},
		{"token bucket capped", weir.Per(10, 10*time.Second).WithMaxDebt(5), 25, 5, 6 * time.Second, true},
		{"fixed window", weir.Per(10, 10*time.Second).WithAlgorithm(weir.FixedWindow), 25, 15, 10 * time.Second, false},
		{"sliding log", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowLog), 12, 2, 10 * time.Second, false},
		{"sliding counter", weir.Per(10, 10*time.Second).WithAlgorithm(weir.SlidingWindowCounter), 10, 0, 11 * time.Second, false},
		{"above MaxDebtUnits", weir.Per(10, 10*time.Second).WithAlgorithm(weir.FixedWindow), weir.MaxDebtUnits + 1, weir.MaxDebtUnits - 10, 10 * time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Start on a 10s window boundary: the fake store reads time.Now.
				time.Sleep(time.Until(time.Now().Truncate(10 * time.Second).Add(10 * time.Second)))
				ctx := context.Background()
				l := mustLimiter(t, newFake(), c.lim)
				d, err := l.Charge(ctx, "k", c.charge)
				if err != nil || !d.Allowed || d.Debt != c.wantDebt || d.RetryAfter != c.wantRetry || d.Clamped != c.clamped || d.Remaining != 0 {
					t.Fatalf("Charge: %+v, %v; want debt %d retry %v clamped %v", d, err, c.wantDebt, c.wantRetry, c.clamped)
				}
				time.Sleep(c.wantRetry - time.Nanosecond)
				if d, _ := l.Allow(ctx, "k"); d.Allowed {
					t.Fatalf("admitted before the debt was repaid: %+v", d)
				}
				time.Sleep(time.Nanosecond)
				if d, _ := l.Allow(ctx, "k"); !d.Allowed {
					t.Fatalf("denied once the debt was repaid: %+v", d)
				}
			})
		})
	}
}

// TestChargeErrors: bad input names its field; concurrency limits refuse.
func TestChargeErrors(t *testing.T) {
	ctx := context.Background()
	l := mustLimiter(t, newFake(), weir.PerSecond(10))
	var fe *weir.FieldError
	if _, err := l.Charge(ctx, "k", -1); !errors.As(err, &fe) || fe.Field != "cost" {
		t.Errorf("negative charge: %v", err)
	}
	c := mustLimiter(t, newFake(), weir.PerSecond(10), weir.Concurrent(2, time.Minute))
	_, err := c.Charge(ctx, "k", 1)
	if !errors.Is(err, weir.ErrInvalid) || !errors.Is(err, weir.ErrConcurrency) || !errors.As(err, &fe) || fe.Field != "Limit.Algorithm" {
		t.Errorf("charge on a concurrency limiter: %v", err)
	}
	if _, err := c.Settle(ctx, "k", 2, time.Now(), 1); !errors.Is(err, weir.ErrConcurrency) {
		t.Errorf("settle on a concurrency limiter: %v", err)
	}
	if _, err := l.Settle(ctx, "k", -1, time.Now(), 1); !errors.As(err, &fe) || fe.Field != "reserved" {
		t.Errorf("negative reserved: %v", err)
	}
	// The store refuses a forced concurrency check and a huge forced cost.
	s := newFake()
	if _, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.Concurrent(1, time.Second)}}, Cost: 1, Lease: "a", Force: true}); !errors.Is(err, weir.ErrInvalid) {
		t.Errorf("forced concurrency take: %v", err)
	}
	if _, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerSecond(1)}}, Cost: weir.MaxDebtUnits + 1, Force: true}); !errors.Is(err, weir.ErrInvalid) {
		t.Errorf("forced take above MaxDebtUnits: %v", err)
	}
}

// TestSettle: one line per rule of Reservation.Settle.
func TestSettle(t *testing.T) {
	per := weir.Per(10, 10*time.Second) // 1 unit per second, burst 10
	cases := []struct {
		name   string
		lim    weir.Limit
		run    func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error)
		want   int64 // Remaining of a peek after
		errIs  error
		wantTB bool // the settle's decision: Allowed
	}{
		{"smaller gives back", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			return r.Settle(ctx, 3)
		}, 7, nil, true},
		{"smaller after acting, later", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			time.Sleep(2 * time.Second)
			return r.Settle(ctx, 3) // 2+2+5 = 9, the actual 3 counted at t0
		}, 9, nil, true},
		{"never above the quota", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			time.Sleep(7 * time.Second)
			return r.Settle(ctx, 0)
		}, 10, nil, true},
		{"larger charges the excess", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			return r.Settle(ctx, 14)
		}, 0, nil, true},
		{"equal changes nothing", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			return r.Settle(ctx, 5)
		}, 5, nil, true},
		{"twice is ErrSettled", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			r.Settle(ctx, 5)
			return r.Settle(ctx, 0)
		}, 5, weir.ErrSettled, false},
		{"after Cancel is ErrSettled", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			r.Cancel(ctx)
			return r.Settle(ctx, 9)
		}, 10, weir.ErrSettled, false},
		{"Cancel after Settle does nothing", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			d, err := r.Settle(ctx, 8)
			r.Cancel(ctx)
			return d, err
		}, 2, nil, true},
		{"after Reset: smaller leaves the fresh state full", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			l.Reset(ctx, "k")
			return r.Settle(ctx, 0)
		}, 10, nil, true},
		{"after Reset and a take: the give-back lands on it, never above the quota", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			l.Reset(ctx, "k")
			l.AllowN(ctx, "k", 4)
			return r.Settle(ctx, 0)
		}, 10, nil, true},
		{"after Reset: larger charges the fresh state", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			l.Reset(ctx, "k")
			return r.Settle(ctx, 8)
		}, 7, nil, true},
		{"negative actual", per, func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			return r.Settle(ctx, -1)
		}, 5, weir.ErrInvalid, false},
		{"fixed window: smaller gives back in the window", per.WithAlgorithm(weir.FixedWindow), func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			return r.Settle(ctx, 1)
		}, 9, nil, true},
		{"fixed window: nothing once the window is gone", per.WithAlgorithm(weir.FixedWindow), func(ctx context.Context, l *weir.Limiter, r *weir.Reservation) (weir.Decision, error) {
			time.Sleep(10 * time.Second)
			l.AllowN(ctx, "k", 3)
			return r.Settle(ctx, 1)
		}, 7, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Until(time.Now().Truncate(10 * time.Second).Add(10 * time.Second)))
				ctx := context.Background()
				l := mustLimiter(t, newFake(), c.lim)
				r, err := l.TryReserve(ctx, "k", 5)
				if err != nil || !r.OK() || r.Units() != 5 {
					t.Fatalf("TryReserve: %v %v", r, err)
				}
				d, err := c.run(ctx, l, r)
				if c.errIs != nil {
					if !errors.Is(err, c.errIs) {
						t.Fatalf("err %v, want %v", err, c.errIs)
					}
				} else if err != nil || d.Allowed != c.wantTB {
					t.Fatalf("settle: %+v, %v", d, err)
				}
				if p, _ := l.Peek(ctx, "k"); p.Remaining != c.want {
					t.Fatalf("remaining %d, want %d", p.Remaining, c.want)
				}
			})
		})
	}
}

// TestSettleDenied: a reservation that is not OK settles to nothing.
func TestSettleDenied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.Per(10, 10*time.Second))
		l.AllowN(ctx, "k", 8)
		r, err := l.TryReserve(ctx, "k", 5)
		if err != nil || r.OK() || r.Units() != 0 {
			t.Fatalf("TryReserve past the quota: %v %v", r.OK(), err)
		}
		d, err := r.Settle(ctx, 50)
		if err != nil || d.Allowed || d != r.Decision() {
			t.Fatalf("settle of a denial: %+v %v", d, err)
		}
		if p, _ := l.Peek(ctx, "k"); p.Remaining != 2 {
			t.Fatalf("remaining %d, want 2: the denial charged", p.Remaining)
		}
	})
}

// TestSettleLargerDebt: the excess of a settle is a charge: debt, Clamped.
func TestSettleLargerDebt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustLimiter(t, newFake(), weir.Per(10, 10*time.Second).WithMaxDebt(20))
		r, _ := l.TryReserve(ctx, "k", 5)
		d, err := r.Settle(ctx, 100)
		if err != nil || !d.Allowed || d.Debt != 20 || !d.Clamped || d.RetryAfter != 21*time.Second {
			t.Fatalf("settle 100 of 5: %+v %v", d, err)
		}
	})
}
