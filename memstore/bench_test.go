package memstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// reportCPU adds cpu-ns/op, the process's CPU time per operation since
// start (summed over cores for parallel runs): on a shared machine it is
// far less noisy than wall time.
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func newReq(key string) *weir.Request {
	return &weir.Request{Checks: []weir.Check{{Key: key, Limit: weir.PerSecond(1e9).WithName("bench")}}, Cost: 1}
}

// BenchmarkTake decides on one existing token-bucket key that always
// admits: the lock, the lookup, GCRA and the write-back.
func BenchmarkTake(b *testing.B) {
	ctx := context.Background()
	b.Run("par=1", func(b *testing.B) {
		s := memstore.New()
		req := newReq("k")
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if _, err := s.Take(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	b.Run("par=N/same-key", func(b *testing.B) {
		s := memstore.New()
		b.ReportAllocs()
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			req := newReq("k")
			for pb.Next() {
				if _, err := s.Take(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportCPU(b, start)
	})
	b.Run("par=N/key-per-goroutine", func(b *testing.B) {
		s := memstore.New()
		var id atomic.Int64
		b.ReportAllocs()
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			req := newReq("k" + strconv.FormatInt(id.Add(1), 10))
			for pb.Next() {
				if _, err := s.Take(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportCPU(b, start)
	})
}

// BenchmarkTakeDenied measures a denial (nothing to write back).
func BenchmarkTakeDenied(b *testing.B) {
	clk := time.Unix(1_700_000_000, 0)
	s := memstore.New(memstore.WithClock(func() time.Time { return clk }))
	req := &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.PerHour(1).WithName("bench")}}, Cost: 1}
	_, _ = s.Take(context.Background(), req)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if d, _ := s.Take(context.Background(), req); d.Allowed {
			b.Fatal("admitted")
		}
	}
	reportCPU(b, start)
}

// BenchmarkTakeMulti decides on two limits (user and tenant) at once.
func BenchmarkTakeMulti(b *testing.B) {
	s := memstore.New()
	req := &weir.Request{Checks: []weir.Check{
		{Key: "user:1", Limit: weir.PerSecond(1e9).WithName("user")},
		{Key: "tenant:1", Limit: weir.Per(1e12, time.Hour).WithAlgorithm(weir.SlidingWindowCounter).WithName("tenant")},
	}, Cost: 1}
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := s.Take(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkLimiterAllow is weir.Limiter.Allow over the store.
func BenchmarkLimiterAllow(b *testing.B) {
	lim, err := weir.NewLimiter(memstore.New(), weir.PerSecond(1e9))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("par=1", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			_, _ = lim.Allow(ctx, "k")
		}
		reportCPU(b, start)
	})
	b.Run("par=N", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = lim.Allow(ctx, "k")
			}
		})
		reportCPU(b, start)
	})
}
