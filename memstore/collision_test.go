package memstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// TestLowBitsCollision: states whose identities agree on their low 64
// bits (forced with SetLowHash: one shard, one home slot) keep separate
// state, for every algorithm: spending one key's quota leaves the other's
// whole, a reset of one leaves the other spent, and a request that checks
// both is decided on both (not refused as a collision).
func TestLowBitsCollision(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, l := range []weir.Limit{
		weir.PerMinute(3).WithName("token-bucket"),
		weir.PerMinute(3).WithAlgorithm(weir.FixedWindow).WithName("fixed-window"),
		weir.PerMinute(3).WithAlgorithm(weir.SlidingWindowCounter).WithName("sliding-counter"),
		weir.PerMinute(3).WithAlgorithm(weir.SlidingWindowLog).WithName("sliding-log"),
		weir.Concurrent(3, time.Minute).WithName("concurrency"),
	} {
		t.Run(l.Name, func(t *testing.T) {
			s := memstore.New(memstore.WithClock(func() time.Time { return at }))
			memstore.SetLowHash(s, func(name, key string) uint64 { return 0x9e3779b97f4a7c15 })
			lease := 0
			take := func(keys ...string) (weir.Decision, error) {
				t.Helper()
				req := &weir.Request{Cost: 1, Lease: "lease-" + strconv.Itoa(lease)}
				lease++
				for _, k := range keys {
					req.Checks = append(req.Checks, weir.Check{Key: k, Limit: l})
				}
				return s.Take(ctx, req)
			}
			allowed := func(want bool, keys ...string) {
				t.Helper()
				d, err := take(keys...)
				if err != nil || d.Allowed != want {
					t.Fatalf("take %v: allowed %v, %v; want allowed %v", keys, d.Allowed, err, want)
				}
			}
			for range 3 {
				allowed(true, "a")
			}
			allowed(false, "a")
			for range 3 {
				allowed(true, "b") // b's own quota, untouched by a's
			}
			allowed(false, "b")
			if err := s.Reset(ctx, []weir.Check{{Key: "a", Limit: l}}); err != nil {
				t.Fatal(err)
			}
			allowed(true, "a")
			allowed(false, "b") // the reset of a left b spent
			allowed(true, "a", "c")
			allowed(false, "a", "b")
			if got := s.Stats().Keys; got != 3 {
				t.Errorf("%d states stored, want 3 (a, b, c)", got)
			}
		})
	}
}
