package weir_test

import (
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// TestParamsAgree: the root package (for Limit.Validate) and
// internal/engine (for the stores' decisions) each turn a Limit into
// algorithm parameters, since engine cannot reach the root's unexported
// method; both must give the same parameters for every algorithm.
func TestParamsAgree(t *testing.T) {
	algos := []weir.Algorithm{weir.TokenBucket, weir.SlidingWindowLog, weir.SlidingWindowCounter, weir.FixedWindow, weir.Concurrency}
	for _, a := range algos {
		for _, l := range []weir.Limit{
			weir.PerSecond(10),
			weir.Per(7, 3*time.Second).WithBurst(4),
			weir.PerDay(1_000_000).WithName("daily"),
		} {
			l = l.WithAlgorithm(a)
			if a != weir.TokenBucket {
				l.Burst = 0
			}
			if got, want := engine.Params(l), weir.ParamsOf(l); got != want {
				t.Errorf("%v: engine.Params %+v, Limit.params %+v", l, got, want)
			}
		}
	}
}
