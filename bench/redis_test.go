package bench

// Weir's Redis store side by side with github.com/go-redis/redis_rate/v10
// on the same local redis-server (started by the benchmark on a free
// loopback port, or the one at WEIR_REDIS_ADDR). Compare with
//
//	go test -run '^$' -bench 'Redis' -count 6 . | tee redis.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl redis.txt
//
// Besides ns/op and allocs, each benchmark reports p99-µs (latency of one
// decision) and redis-µs/op (Redis CPU per decision, from INFO
// commandstats: the usec of EVALSHA and EVAL divided by the decisions) and
// decisions/call (how many decisions one script call carried).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
)

var redisBench struct {
	once sync.Once
	addr string
	err  error
}

// redisAddr returns the address of the benchmark's redis-server, starting
// one on a free loopback port (it lives as long as the test binary).
func redisAddr(b testing.TB) string {
	redisBench.once.Do(func() {
		if a := os.Getenv("WEIR_REDIS_ADDR"); a != "" {
			redisBench.addr = a
			return
		}
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			redisBench.err = fmt.Errorf("redis-server not found: %w", err)
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			redisBench.err = err
			return
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		dir, err := os.MkdirTemp("", "weir-bench-redis")
		if err != nil {
			redisBench.err = err
			return
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
		// The server dies with the benchmark binary.
		cmd.SysProcAttr = pdeathsig()
		if err := cmd.Start(); err != nil {
			redisBench.err = err
			return
		}
		redisBench.addr = "127.0.0.1:" + strconv.Itoa(port)
		for range 500 {
			if c, err := net.Dial("tcp", redisBench.addr); err == nil {
				c.Close()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		redisBench.err = fmt.Errorf("redis-server did not start")
	})
	if redisBench.err != nil {
		if os.Getenv("WEIR_REQUIRE_REDIS") == "1" {
			b.Fatal(redisBench.err)
		}
		b.Skip(redisBench.err)
	}
	return redisBench.addr
}

func redisClient(b *testing.B) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:       redisAddr(b),
		MaxRetries: -1,
		PoolSize:   64,
	})
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// scriptUsec returns the Redis CPU time spent in EVALSHA and EVAL so far,
// and the number of calls.
func scriptUsec(b *testing.B, c *redis.Client) (usec, calls int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, f := range strings.Split(line[strings.IndexByte(line, ':')+1:], ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				usec += n
			}
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				calls += n
			}
		}
	}
	return usec, calls
}

// allowFunc makes one decision on key.
type allowFunc func(ctx context.Context, key string) (bool, error)

// redisImpls returns the two implementations over client, each with a
// limit that admits nearly everything (so every call writes state).
func redisImpls(b *testing.B, c *redis.Client) []struct {
	name  string
	allow allowFunc
} {
	s, err := redisstore.New(c, redisstore.WithDeadline(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	lim, err := weir.NewLimiter(s, weir.PerSecond(1_000_000).WithName("bench"))
	if err != nil {
		b.Fatal(err)
	}
	rl := redis_rate.NewLimiter(c)
	peerLimit := redis_rate.Limit{Rate: 1_000_000, Burst: 1_000_000, Period: time.Second}
	return []struct {
		name  string
		allow allowFunc
	}{
		{"weir", func(ctx context.Context, key string) (bool, error) {
			d, err := lim.Allow(ctx, key)
			return d.Allowed, err
		}},
		{"redis_rate", func(ctx context.Context, key string) (bool, error) {
			r, err := rl.Allow(ctx, key, peerLimit)
			if err != nil {
				return false, err
			}
			return r.Allowed > 0, nil
		}},
	}
}

// redisKeys is the key space of BenchmarkRedisAllow: 1000 keys, round robin.
var redisKeys = func() []string {
	k := make([]string, 1000)
	for i := range k {
		k[i] = "user:" + strconv.Itoa(i)
	}
	return k
}()

// BenchmarkRedisAllow measures one Allow per op from g goroutines (g=1 is
// a serial loop; others use b.RunParallel with g goroutines), on 1000 keys
// round robin (keys=1000) or on one hot key (keys=1).
func BenchmarkRedisAllow(b *testing.B) {
	c := redisClient(b)
	for _, nkeys := range []int{1000, 1} {
		for _, g := range []int{1, 16, 64, 256} {
			for _, impl := range redisImpls(b, c) {
				benchAllow(b, c, nkeys, g, impl.name, impl.allow)
			}
		}
	}
}

func benchAllow(b *testing.B, c *redis.Client, nkeys, g int, name string, allow allowFunc) {
	b.Run(fmt.Sprintf("keys=%d/g=%d/impl=%s", nkeys, g, name), func(b *testing.B) {
		{
			impl := struct{ allow allowFunc }{allow}
			ctx := context.Background()
			var next atomic.Uint64
			var mu sync.Mutex
			var lats []time.Duration
			var failed atomic.Value
			usec, calls := scriptUsec(b, c)
			b.ReportAllocs()
			if g == 1 {
				local := make([]time.Duration, 0, 1024)
				for b.Loop() {
					t := time.Now()
					if _, err := impl.allow(ctx, redisKeys[next.Add(1)%uint64(nkeys)]); err != nil {
						b.Fatal(err)
					}
					local = append(local, time.Since(t))
				}
				lats = local
			} else {
				b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					local := make([]time.Duration, 0, 1024)
					for pb.Next() {
						t := time.Now()
						if _, err := impl.allow(ctx, redisKeys[next.Add(1)%uint64(nkeys)]); err != nil {
							failed.Store(err)
							return
						}
						local = append(local, time.Since(t))
					}
					mu.Lock()
					lats = append(lats, local...)
					mu.Unlock()
				})
			}
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			usec2, calls2 := scriptUsec(b, c)
			b.ReportMetric(float64(usec2-usec)/float64(b.N), "redis-µs/op")
			b.ReportMetric(float64(b.N)/float64(max(1, calls2-calls)), "decisions/call")
			slices.Sort(lats)
			if len(lats) > 0 {
				b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
			}
		}
	})
}

// BenchmarkRedisBurst100 is seed 002's headline: 100 goroutines each make
// one token-bucket decision at once; an op is the whole burst.
func BenchmarkRedisBurst100(b *testing.B) {
	c := redisClient(b)
	for _, impl := range redisImpls(b, c) {
		b.Run("impl="+impl.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			round := 0
			for b.Loop() {
				round++
				var wg sync.WaitGroup
				for i := range 100 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := impl.allow(ctx, redisKeys[(round*100+i)%1000]); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// BenchmarkRedisSemaphore100 is seed 002's other headline: 100 goroutines
// each acquire (and then release) a lease of one distributed semaphore of
// capacity 100 at once; an op is the whole burst. redis_rate has no
// semaphore.
func BenchmarkRedisSemaphore100(b *testing.B) {
	c := redisClient(b)
	s, err := redisstore.New(c, redisstore.WithDeadline(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lim, err := weir.NewLimiter(s, weir.Concurrent(100, time.Minute).WithName("sem"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("impl=weir", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var wg sync.WaitGroup
			leases := make([]*weir.Lease, 100)
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, _, err := lim.TryAcquire(ctx, "api", 1)
					if err != nil || l == nil {
						b.Errorf("acquire: %v %v", l, err)
					}
					leases[i] = l
				}()
			}
			wg.Wait()
			b.StopTimer()
			for _, l := range leases {
				if l != nil {
					_ = l.Release(ctx)
				}
			}
			b.StartTimer()
		}
	})
}
