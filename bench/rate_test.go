package bench

// Side-by-side benchmarks: weir/rate against golang.org/x/time/rate and
// go.uber.org/ratelimit. Sub-benchmark names carry impl=... so that
// `benchstat -col /impl` puts the implementations in columns.

import (
	"context"
	"testing"
	"time"

	uber "go.uber.org/ratelimit"
	xrate "golang.org/x/time/rate"

	"github.com/weir-go/weir/rate"
)

// rateBenchModes are the serial and RunParallel variants.
var rateBenchModes = []struct {
	name     string
	parallel bool
}{{"serial", false}, {"parallel", true}}

// rateBenchLoop runs f b.N times, serially or spread over GOMAXPROCS
// goroutines.
func rateBenchLoop(b *testing.B, parallel bool, f func()) {
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f()
			}
		})
		return
	}
	for b.Loop() {
		f()
	}
}

// BenchmarkAllow compares Limiter.Allow. "allowing": a token per nanosecond,
// so no caller can empty the bucket; "denying": an empty bucket that refills
// once an hour.
func BenchmarkAllow(b *testing.B) {
	for _, c := range []string{"allowing", "denying"} {
		for _, m := range rateBenchModes {
			b.Run("case="+c+"/mode="+m.name+"/impl=xtime", func(b *testing.B) {
				lim := xrate.NewLimiter(1e9, 1_000_000)
				if c == "denying" {
					lim = xrate.NewLimiter(xrate.Every(time.Hour), 1)
					lim.Allow()
				}
				rateBenchLoop(b, m.parallel, func() { lim.Allow() })
			})
			b.Run("case="+c+"/mode="+m.name+"/impl=weir", func(b *testing.B) {
				lim := rate.NewLimiter(1e9, 1_000_000)
				if c == "denying" {
					lim = rate.NewLimiter(rate.Every(time.Hour), 1)
					lim.Allow()
				}
				rateBenchLoop(b, m.parallel, func() { lim.Allow() })
			})
		}
	}
}

// BenchmarkWait compares a wait at a rate that never sleeps: x/time's and
// weir's Limiter.Wait, and go.uber.org/ratelimit's Take.
func BenchmarkWait(b *testing.B) {
	ctx := context.Background()
	for _, m := range rateBenchModes {
		b.Run("mode="+m.name+"/impl=xtime", func(b *testing.B) {
			lim := xrate.NewLimiter(1e9, 1_000_000)
			rateBenchLoop(b, m.parallel, func() { _ = lim.Wait(ctx) })
		})
		b.Run("mode="+m.name+"/impl=uber", func(b *testing.B) {
			lim := uber.New(1_000_000_000) // one per ns: Take never sleeps
			rateBenchLoop(b, m.parallel, func() { lim.Take() })
		})
		b.Run("mode="+m.name+"/impl=weir", func(b *testing.B) {
			lim := rate.NewLimiter(1e9, 1_000_000)
			rateBenchLoop(b, m.parallel, func() { _ = lim.Wait(ctx) })
		})
	}
}

var rateBenchSink int64

// BenchmarkRateClock measures the two clock reads in the same run: x/time's
// Allow calls time.Now (wall + monotonic); weir's reads the monotonic clock
// only, via time.Since on a start time that carries a monotonic reading.
func BenchmarkRateClock(b *testing.B) {
	start := time.Now()
	b.Run("read=time.Now", func(b *testing.B) {
		for b.Loop() {
			rateBenchSink += time.Now().UnixNano()
		}
	})
	b.Run("read=time.Since", func(b *testing.B) {
		for b.Loop() {
			rateBenchSink += int64(time.Since(start))
		}
	})
}
