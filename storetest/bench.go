package storetest

import (
	"context"
	"testing"

	"github.com/weir-go/weir"
)

// BenchCosts measures, on store s, the cost of settling next to a plain
// Allow, through a Limiter with one token bucket that always admits (so
// every operation writes): "allow" is Limiter.Allow; "charge" is
// Limiter.Charge of 1 (a forced take); "reserve+settle-smaller" is
// TryReserve(2) then Settle(1) (a take, then a forced refund);
// "reserve+settle-larger" is TryReserve(1) then Settle(2) (a take, then a
// charge of the excess). Each runs serially on one key, with -benchmem
// figures from b.ReportAllocs. A store package calls it from its own
// Benchmark function.
func BenchCosts(b *testing.B, s weir.Store) {
	ctx := context.Background()
	lim, err := weir.NewLimiter(s, weir.PerSecond(1_000_000_000).WithName("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("op=allow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, err := lim.Allow(ctx, "allow"); err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("op=charge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lim.Charge(ctx, "charge", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	settle := func(name string, reserve, actual int64) {
		b.Run("op="+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := lim.TryReserve(ctx, name, reserve)
				if err != nil || !r.OK() {
					b.Fatal(r, err)
				}
				if _, err := r.Settle(ctx, actual); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	settle("reserve+settle-smaller", 2, 1)
	settle("reserve+settle-larger", 1, 2)
}
