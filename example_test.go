package weir_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

func ExampleLimiter_Allow() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	// 3 per minute AND 100 per day, for each user.
	lim, err := weir.NewLimiter(store, weir.PerMinute(3), weir.PerDay(100))
	if err != nil {
		panic(err)
	}
	for range 4 {
		d, err := lim.Allow(ctx, "user:42")
		if err != nil {
			panic(err)
		}
		fmt.Printf("allowed=%v limit=%s remaining=%d\n", d.Allowed, d.Limit.Name, d.Remaining)
	}
	// Output:
	// allowed=true limit=3/m remaining=2
	// allowed=true limit=3/m remaining=1
	// allowed=true limit=3/m remaining=0
	// allowed=false limit=3/m remaining=0
}

func ExampleLimiter_Wait() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := memstore.New()
	defer store.Close()

	// One call per second, bursts of 2: Wait returns at once while the burst
	// lasts, then blocks until each call may go (or ctx ends).
	lim, _ := weir.NewLimiter(store, weir.PerSecond(1).WithBurst(2))
	for range 2 {
		d, err := lim.Wait(ctx, "api.example.com")
		fmt.Println(d.Allowed, d.Delay, err)
	}
	// A third call would sleep one second; Reserve shows the schedule
	// without sleeping.
	r, _ := lim.Reserve(ctx, "api.example.com", 1)
	fmt.Println(r.OK(), r.Decision().Delay.Round(100*time.Millisecond))
	// Output:
	// true 0s <nil>
	// true 0s <nil>
	// true 1s
}

func ExampleLimiter_Acquire() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	// At most 2 jobs at once; a holder that crashes frees its slot after 30 s.
	lim, _ := weir.NewLimiter(store, weir.Concurrent(2, 30*time.Second))
	a, _ := lim.Acquire(ctx, "reports", 1)
	b, _ := lim.Acquire(ctx, "reports", 1)
	_, d, _ := lim.TryAcquire(ctx, "reports", 1)
	fmt.Println("third allowed:", d.Allowed)
	a.Release(ctx)
	c, d, _ := lim.TryAcquire(ctx, "reports", 1)
	fmt.Println("after release:", d.Allowed)
	b.Release(ctx)
	c.Release(ctx)
	// Output:
	// third allowed: false
	// after release: true
}

func ExampleLimiter_Wrap() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	// Fail fast rather than queue: give up if the wait would exceed 1 ms.
	lim, _ := weir.NewLimiter(store, weir.PerHour(1), weir.MaxWait(time.Millisecond))
	send := lim.Wrap("newsletter", func(ctx context.Context) error {
		fmt.Println("sent")
		return nil
	})
	fmt.Println(send(ctx))
	err := send(ctx)
	fmt.Println(errors.Is(err, weir.ErrLimited))
	// Output:
	// sent
	// <nil>
	// true
}

func ExampleParseLimit() {
	for _, s := range []string{"100/s", "5/2s burst=10", "1000/day algo=fixed-window"} {
		l, err := weir.ParseLimit(s)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %d per %v, capacity %d, %v\n", l, l.Quota, l.Period, l.Capacity(), l.Algorithm)
	}
	_, err := weir.ParseLimit("0/s")
	fmt.Println(err)
	// Output:
	// 100/s: 100 per 1s, capacity 100, token-bucket
	// 5/2s burst=10: 5 per 2s, capacity 10, token-bucket
	// 1000/d algo=fixed-window: 1000 per 24h0m0s, capacity 1000, fixed-window
	// weir: invalid Limit.Quota: must be at least 1 (got 0)
}

func ExampleRouter() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	type job struct{ tenant, plan string }
	free, _ := weir.NewLimiter(store, weir.PerMinute(1).WithName("free"))
	pro, _ := weir.NewLimiter(store, weir.PerMinute(100).WithName("pro"))
	r := weir.NewRouter(func(j job) (string, *weir.Limiter) {
		if j.plan == "pro" {
			return j.tenant, pro
		}
		return j.tenant, free
	})
	for _, j := range []job{{"acme", "free"}, {"acme", "free"}, {"globex", "pro"}} {
		d, _ := r.Allow(ctx, j)
		fmt.Println(j.tenant, d.Allowed, d.Limit.Name)
	}
	// Output:
	// acme true free
	// acme false free
	// globex true pro
}

// A limit without a Name keeps its state under its text form; Named shows
// the name a store uses, and a Decision reports.
func ExampleLimit_Named() {
	fmt.Println(weir.PerSecond(10).Named().Name)
	fmt.Println(weir.PerSecond(10).WithBurst(20).Named().Name)
	fmt.Println(weir.PerSecond(10).WithName("api").Named().Name)
	// Output:
	// 10/s
	// 10/s burst=20
	// api
}

func ExampleLimiter_Charge() {
	ctx := context.Background()
	// A stopped clock keeps this example's output exact.
	store := memstore.New(memstore.WithClock(stopped))
	defer store.Close()

	// 10,000 LLM tokens per minute per API key; a key may owe at most
	// 20,000 (two minutes locked out at most).
	lim, _ := weir.NewLimiter(store, weir.PerMinute(10_000).WithMaxDebt(20_000).WithName("tokens"))

	// The answer used 12,500 tokens: charge them, whatever is left.
	d, _ := lim.Charge(ctx, "key:7", 12_500)
	fmt.Println(d.Allowed, d.Remaining, d.Debt, d.RetryAfter.Round(time.Second))

	// Until the debt is repaid, the key is denied.
	d, _ = lim.Allow(ctx, "key:7")
	fmt.Println(d.Allowed)
	// Output:
	// true 0 2500 15s
	// false
}

func ExampleReservation_Settle() {
	ctx := context.Background()
	// A stopped clock keeps this example's output exact.
	store := memstore.New(memstore.WithClock(stopped))
	defer store.Close()
	lim, _ := weir.NewLimiter(store, weir.PerMinute(10_000).WithName("tokens"))

	// Reserve an estimate before the call (TryReserve never waits) ...
	r, err := lim.TryReserve(ctx, "key:7", 1_000)
	if err != nil || !r.OK() {
		fmt.Println("429")
		return
	}
	// ... and settle to the actual cost when the answer arrives: the
	// unused 400 go back.
	if _, err := r.Settle(ctx, 600); err != nil {
		panic(err)
	}
	d, _ := lim.Peek(ctx, "key:7")
	fmt.Println(d.Remaining)

	// A reservation is settled once.
	_, err = r.Settle(ctx, 700)
	fmt.Println(errors.Is(err, weir.ErrSettled))
	// Output:
	// 9400
	// true
}

// stopped is a clock that never moves.
func stopped() time.Time { return time.Unix(1_800_000_000, 0) }
