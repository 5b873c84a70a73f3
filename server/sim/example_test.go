package sim_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/sim"
)

// Two candidate limits against the same bursty traffic: a token bucket
// with room for bursts, and a fixed window.
func ExampleRun() {
	traffic, err := sim.ParsePattern("bursts:300/10s,width=1s,base=20/s")
	if err != nil {
		panic(err)
	}
	bucket, _ := weir.ParseLimit("50/s burst=200")
	fixed, _ := weir.ParseLimit("50/s algo=fixed-window")
	results, err := sim.Run(context.Background(), []sim.Scenario{
		{Name: "bucket", Limits: []weir.Limit{bucket}},
		{Name: "fixed", Limits: []weir.Limit{fixed}},
	}, sim.Options{Pattern: traffic, For: time.Minute})
	if err != nil {
		panic(err)
	}
	for _, r := range results {
		fmt.Printf("%s: admitted %d of %d, most in 1s %d (bound %d), longest retry-after %v\n",
			r.Scenario, r.Admitted, r.Offered, r.Limits[0].MaxInWindow, r.Limits[0].WindowBound, r.RetryAfter.Max)
	}
	// The picture: one panel per scenario.
	f, err := os.CreateTemp("", "sim-*.svg")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := sim.Plot(f, sim.SVG, results); err != nil {
		panic(err)
	}
	// Output:
	// bucket: admitted 2574 of 3000, most in 1s 249 (bound 249), longest retry-after 20ms
	// fixed: admitted 1380 of 3000, most in 1s 66 (bound 100), longest retry-after 846.666667ms
}
