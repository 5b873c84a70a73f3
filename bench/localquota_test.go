package bench

// Local quota (package localquota) beside the Redis store used directly
// and redis_rate, on the same redis-server:
//
//	go test -run '^$' -bench 'LocalQuota' -benchtime 2s -count 3 . | tee lq.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl lq.txt
//
// Four stores, each with its own connection pool (as four processes would
// have, but in this one process), share 64 goroutines. With load=admit the
// limit admits everything on 1000 keys; with load=overload (equal demand)
// and load=skewed (the goroutines of one store make 90% of the calls) 10
// keys are limited to 20 per second with burst 20, far below the demand, and
// util-% is the admitted units over the exact bound Σ(burst + rate·T) of
// the keys over the run. Each reports decisions/s, redis-µs/op (Redis CPU
// in scripts per decision, from INFO commandstats) and p99-µs. impl=local
// holds blocks for L = 100 ms (the default), local-L1s for 1 s, and
// local-optimistic settles every 10 ms.

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/redisstore"
)

// lqStores is the number of stores ("processes") of BenchmarkLocalQuota.
const lqStores = 4

func BenchmarkLocalQuota(b *testing.B) {
	admitAll := weir.PerSecond(1_000_000).WithName("lq-bench")
	limited := weir.PerSecond(20).WithName("lq-limited")
	for _, load := range []struct {
		name  string
		limit weir.Limit
		skew  bool
	}{{"admit", admitAll, false}, {"overload", limited, false}, {"skewed", limited, true}} {
		for _, impl := range []string{"local", "local-L1s", "local-optimistic", "redisstore", "redis_rate"} {
			if load.name != "admit" && impl == "redis_rate" {
				continue // the comparison of utilisation is between Weir's two paths
			}
			b.Run(fmt.Sprintf("load=%s/impl=%s", load.name, impl), func(b *testing.B) {
				benchLocalQuota(b, impl, load.limit, load.skew)
			})
		}
	}
}

func benchLocalQuota(b *testing.B, impl string, limit weir.Limit, skew bool) {
	ctx := context.Background()
	prefix := fmt.Sprintf("lq%d:", time.Now().UnixNano())
	var clients []*redis.Client
	allows := make([]allowFunc, lqStores)
	var stats []func() localquota.Stats
	for i := range lqStores {
		c := redisClient(b)
		clients = append(clients, c)
		rs, err := redisstore.New(c, redisstore.WithDeadline(5*time.Second), redisstore.WithPrefix(prefix))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = rs.Close() })
		var store weir.Store = rs
		if impl != "redisstore" && impl != "redis_rate" {
			opt := localquota.WithHold(localquota.DefaultHold)
			switch impl {
			case "local-L1s":
				opt = localquota.WithHold(time.Second)
			case "local-optimistic":
				opt = localquota.WithOptimistic(10 * time.Millisecond)
			}
			ls, err := localquota.New(rs, opt)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ls.Close() })
			store = ls
			stats = append(stats, ls.Stats)
		}
		lim, err := weir.NewLimiter(store, limit)
		if err != nil {
			b.Fatal(err)
		}
		allows[i] = func(ctx context.Context, key string) (bool, error) {
			d, err := lim.Allow(ctx, key)
			return d.Allowed, err
		}
		if impl == "redis_rate" {
			rl := redis_rate.NewLimiter(c)
			peer := redis_rate.Limit{Rate: int(limit.Quota), Burst: int(limit.Capacity()), Period: limit.Period}
			allows[i] = func(ctx context.Context, key string) (bool, error) {
				r, err := rl.Allow(ctx, prefix+key, peer)
				return err == nil && r.Allowed > 0, err
			}
		}
	}
	var worker atomic.Int64
	var next atomic.Uint64
	var admitted atomic.Int64
	var failed atomic.Value
	var mu sync.Mutex
	var lats []time.Duration
	usec, _ := scriptUsec(b, clients[0])
	b.ReportAllocs()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	start := time.Now()
	keys := redisKeys
	if limit.Quota < 1000 {
		keys = keys[:10] // overload: 10 hot keys
	}
	b.RunParallel(func(pb *testing.PB) {
		w := int(worker.Add(1) - 1)
		// Equal: goroutines spread over the stores. Skewed: nine in ten
		// goroutines call through store 0.
		s := w % lqStores
		if skew {
			s = 0
			if w%10 == 9 {
				s = 1 + w/10%(lqStores-1)
			}
		}
		allow := allows[s]
		local := make([]time.Duration, 0, 1024)
		var n int64
		for pb.Next() {
			t := time.Now()
			ok, err := allow(ctx, keys[next.Add(1)%uint64(len(keys))])
			if err != nil {
				failed.Store(err)
				return
			}
			if ok {
				n++
			}
			local = append(local, time.Since(t))
		}
		admitted.Add(n)
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	usec2, _ := scriptUsec(b, clients[0])
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(usec2-usec)/float64(b.N), "redis-µs/op")
	slices.Sort(lats)
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
	}
	if limit.Quota < 1000 {
		// The exact bound of the run: every key's burst plus its rate over
		// the elapsed time (an upper estimate of the Redis clock's span).
		bound := float64(len(keys)) * (float64(limit.Capacity()) + float64(limit.Quota)*elapsed.Seconds()/limit.Period.Seconds())
		b.ReportMetric(100*float64(admitted.Load())/bound, "util-%")
	}
	if len(stats) > 0 {
		var st localquota.Stats
		for _, f := range stats {
			s := f()
			st.Blocks += s.Blocks
			st.Taken += s.Taken
			st.Wasted += s.Wasted
		}
		b.ReportMetric(float64(st.Blocks)/float64(b.N), "blocks/op")
		if limit.Quota < 1000 {
			b.ReportMetric(float64(st.Taken), "taken")
			b.ReportMetric(float64(st.Wasted), "wasted")
			b.ReportMetric(float64(admitted.Load()), "admitted")
		}
	}
}
