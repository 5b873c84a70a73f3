package rate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/weir-go/weir/rate"
)

func ExampleNewLimiter() {
	// 10 events per second with bursts of up to 3. The bucket starts full.
	lim := rate.NewLimiter(10, 3)
	t0 := time.Unix(0, 0)
	for i := range 5 {
		fmt.Println(i, lim.AllowN(t0, 1))
	}
	// 100ms later one more token has accrued.
	fmt.Println(lim.AllowN(t0.Add(100*time.Millisecond), 1))
	// Output:
	// 0 true
	// 1 true
	// 2 true
	// 3 false
	// 4 false
	// true
}

func ExampleLimiter_Wait() {
	lim := rate.NewLimiter(rate.Every(time.Millisecond), 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for range 3 {
		if err := lim.Wait(ctx); err != nil { // blocks ~1ms after the first
			fmt.Println("wait:", err)
			return
		}
	}
	fmt.Println("done")
	// Output: done
}

func ExampleLimiter_ReserveN() {
	lim := rate.NewLimiter(2, 2)
	t0 := time.Unix(0, 0)
	lim.AllowN(t0, 2) // empty the bucket
	r := lim.ReserveN(t0, 1)
	fmt.Println(r.OK(), r.DelayFrom(t0))
	r.CancelAt(t0) // not going to act after all: the token is returned
	fmt.Println(lim.TokensAt(t0.Add(500 * time.Millisecond)))
	// Output:
	// true 500ms
	// 1
}

func ExampleLimiter_AllowN_backwards() {
	// A call stamped earlier than the previous one sees the tokens as of the
	// later time and does not cause them to be minted again.
	lim := rate.NewLimiter(1, 1)
	t0 := time.Unix(0, 0)
	fmt.Println(lim.AllowN(t0.Add(time.Second), 1))
	fmt.Println(lim.AllowN(t0, 1))
	fmt.Println(lim.AllowN(t0.Add(time.Second), 1))
	// Output:
	// true
	// false
	// false
}

func ExampleSometimes() {
	var s = rate.Sometimes{First: 2, Every: 5}
	for i := range 12 {
		s.Do(func() { fmt.Println("call", i) })
	}
	// Output:
	// call 0
	// call 1
	// call 5
	// call 10
}

func ExampleEvery() {
	fmt.Println(rate.Every(100*time.Millisecond), rate.Every(0) == rate.Inf)
	// Output: 10 true
}
