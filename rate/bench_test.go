package rate_test

import (
	"context"
	"testing"
	"time"

	"github.com/weir-go/weir/rate"
)

// Limiters for the benchmark cases: "allowing" refills a token per
// nanosecond (no call can outrun it), "denying" is empty and refills once an
// hour.
func benchLimiter(allowing bool) *rate.Limiter {
	if allowing {
		return rate.NewLimiter(1e9, 1_000_000)
	}
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	lim.Allow()
	return lim
}

func forCases(b *testing.B, f func(b *testing.B, lim *rate.Limiter, parallel bool)) {
	for _, c := range []struct {
		name     string
		allowing bool
	}{{"allowing", true}, {"denying", false}} {
		for _, p := range []struct {
			name     string
			parallel bool
		}{{"serial", false}, {"parallel", true}} {
			b.Run("case="+c.name+"/mode="+p.name, func(b *testing.B) {
				b.ReportAllocs()
				f(b, benchLimiter(c.allowing), p.parallel)
			})
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	forCases(b, func(b *testing.B, lim *rate.Limiter, parallel bool) {
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					lim.Allow()
				}
			})
			return
		}
		for b.Loop() {
			lim.Allow()
		}
	})
}

func BenchmarkAllowN(b *testing.B) {
	forCases(b, func(b *testing.B, lim *rate.Limiter, parallel bool) {
		now := time.Now()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					lim.AllowN(now, 1)
				}
			})
			return
		}
		for b.Loop() {
			lim.AllowN(now, 1)
		}
	})
}

func BenchmarkReserve(b *testing.B) {
	forCases(b, func(b *testing.B, lim *rate.Limiter, parallel bool) {
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					lim.Reserve()
				}
			})
			return
		}
		for b.Loop() {
			lim.Reserve()
		}
	})
}

// BenchmarkWait uses a rate no caller can outrun, so Wait never sleeps.
func BenchmarkWait(b *testing.B) {
	ctx := context.Background()
	for _, p := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run("mode="+p.name, func(b *testing.B) {
			b.ReportAllocs()
			lim := benchLimiter(true)
			if p.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_ = lim.Wait(ctx)
					}
				})
				return
			}
			for b.Loop() {
				_ = lim.Wait(ctx)
			}
		})
	}
}
