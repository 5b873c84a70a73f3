package localquota_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/memstore"
)

// BenchmarkAllow measures a local decision: parallel Limiter.Allow over a
// local store whose shared store is a memstore, on one hot key and on 1000
// keys, with a limit that admits every request (so the blocks are spent
// and refilled as in production). The shared store's own cost is part of
// it, one Take per block; blocks/op says how often. The local path alone
// is the rest:
//
//	go test -run '^$' -bench Allow -benchmem ./localquota/
func BenchmarkAllow(b *testing.B) {
	for _, mode := range []string{"exact", "optimistic"} {
		for _, nkeys := range []int{1, 1000} {
			b.Run("mode="+mode+"/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
				shared := memstore.New()
				defer shared.Close()
				opts := []localquota.Option{}
				if mode == "optimistic" {
					opts = append(opts, localquota.WithOptimistic(10e6))
				}
				s, err := localquota.New(shared, opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				lim, err := weir.NewLimiter(s, weir.PerSecond(1_000_000_000).WithName("bench"))
				if err != nil {
					b.Fatal(err)
				}
				keys := make([]string, nkeys)
				for i := range keys {
					keys[i] = "user:" + strconv.Itoa(i)
				}
				var seq atomic.Uint64
				var denied atomic.Int64
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := int(seq.Add(1) * 7919)
					for pb.Next() {
						i++
						d, err := lim.Allow(ctx, keys[i%nkeys])
						if err != nil || !d.Allowed {
							denied.Add(1)
						}
					}
				})
				b.StopTimer()
				if n := denied.Load(); n > 0 {
					b.Fatalf("%d of %d requests denied or failed under a limit that admits all", n, b.N)
				}
				b.ReportMetric(float64(s.Stats().Blocks)/float64(b.N), "blocks/op")
			})
		}
	}
}
