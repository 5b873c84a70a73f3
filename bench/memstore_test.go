//go:build unix

package bench

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/time/rate"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// keyedN is the number of distinct keys of BenchmarkKeyed.
const keyedN = 1_000_000

// The keyed limit: 1000 per 30 days, bursts of 1000. Nearly every request in
// the benchmark is admitted (and writes state back), and no key's state
// becomes idle during the run, so every implementation holds all 1,000,000
// keys. (With a fast rate, idle token buckets are full again within
// milliseconds, and the memory store evicts them: it would then hold far
// fewer keys than the map-based limiters, which never forget one.)
const (
	keyedQuota  = 1000
	keyedPeriod = 30 * 24 * time.Hour
	keyedBurst  = 1000
)

var keyedRate = rate.Limit(float64(keyedQuota) / keyedPeriod.Seconds())

// keyedKey writes the i-th key, "user:<i>", into buf and returns it as a
// string without allocating. The string aliases buf: implementations may
// only look it up, never keep it (every key already exists when the timed
// loop runs, so no implementation stores it). A real server gets each key
// fresh from a request, so its bytes are not those the store or map kept:
// this is what a lookup meets in production, and it keeps the harness
// itself down to a few nanoseconds and no cache miss.
func keyedKey(buf *[32]byte, i int) string {
	b := strconv.AppendInt(append(buf[:0], "user:"...), int64(i), 10)
	return unsafe.String(&b[0], len(b))
}

// keyedImpl is one keyed limiter: allow(key) decides on one request.
type keyedImpl struct {
	allow     func(key string) bool
	bytesPerK float64
}

// keyedHeap is the live heap after a full collection.
func keyedHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// build creates an implementation, touches every key once and measures
// the heap its state takes per key.
func keyedBuild(b *testing.B, newImpl func() (allow func(string) bool, keep any)) *keyedImpl {
	before := keyedHeap()
	allow, keep := newImpl()
	for i := range keyedN {
		if !allow("user:" + strconv.Itoa(i)) { // a real string: maps keep it
			b.Fatal("first request on a new key denied")
		}
	}
	after := keyedHeap()
	runtime.KeepAlive(keep)
	return &keyedImpl{allow: allow, bytesPerK: float64(after-before) / keyedN}
}

var keyedImpls = map[string]func(b *testing.B) *keyedImpl{
	// weir: the Limiter API over the memory store.
	"weir": func(b *testing.B) *keyedImpl {
		return keyedBuild(b, func() (func(string) bool, any) {
			store := memstore.New()
			lim, err := weir.NewLimiter(store, weir.Per(keyedQuota, keyedPeriod).WithBurst(keyedBurst))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			return func(key string) bool {
				d, err := lim.Allow(ctx, key)
				return err == nil && d.Allowed
			}, store
		})
	},
	// weir-store: the raw Store.Take the Limiter calls.
	"weir-store": func(b *testing.B) *keyedImpl {
		return keyedBuild(b, func() (func(string) bool, any) {
			store := memstore.New()
			limit := weir.Per(keyedQuota, keyedPeriod).WithBurst(keyedBurst).WithName("keyed")
			ctx := context.Background()
			pool := sync.Pool{New: func() any {
				return &weir.Request{Checks: []weir.Check{{Limit: limit}}, Cost: 1}
			}}
			return func(key string) bool {
				req := pool.Get().(*weir.Request)
				req.Checks[0].Key = key
				d, err := store.Take(ctx, req)
				pool.Put(req)
				return err == nil && d.Allowed
			}, store
		})
	},
	// mutexmap: the common hand-rolled keyed limiter.
	"mutexmap": func(b *testing.B) *keyedImpl {
		return keyedBuild(b, func() (func(string) bool, any) {
			var mu sync.Mutex
			m := map[string]*rate.Limiter{}
			return func(key string) bool {
				mu.Lock()
				l := m[key]
				if l == nil {
					l = rate.NewLimiter(keyedRate, keyedBurst)
					m[key] = l
				}
				mu.Unlock()
				return l.Allow()
			}, m
		})
	},
	// syncmap: the same with sync.Map.
	"syncmap": func(b *testing.B) *keyedImpl {
		return keyedBuild(b, func() (func(string) bool, any) {
			var m sync.Map
			return func(key string) bool {
				v, ok := m.Load(key)
				if !ok {
					v, _ = m.LoadOrStore(key, rate.NewLimiter(keyedRate, keyedBurst))
				}
				return v.(*rate.Limiter).Allow()
			}, &m
		})
	},
}

var keyedBuilt = map[string]*keyedImpl{}

// cpuTime is the CPU time (user + system) this process has used. On a
// shared machine, CPU time per operation is far less noisy than wall time,
// which also counts the time other processes held the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the metric cpu-ns/op: CPU time of the whole process per
// operation since start (for par=N, summed over all cores).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkKeyed: 1,000,000 distinct keys, a random key per request,
// serial and parallel. B/key is the heap each implementation's state takes
// per key, measured once when it is built.
func BenchmarkKeyed(b *testing.B) {
	for _, name := range []string{"weir", "weir-store", "mutexmap", "syncmap"} {
		b.Run("impl="+name, func(b *testing.B) {
			impl := keyedBuilt[name]
			if impl == nil {
				impl = keyedImpls[name](b)
				keyedBuilt[name] = impl
			}
			b.Run("par=1", func(b *testing.B) {
				rng := rand.New(rand.NewPCG(2, 2))
				var buf [32]byte
				b.ReportAllocs()
				start := cpuTime()
				for b.Loop() {
					impl.allow(keyedKey(&buf, rng.IntN(keyedN)))
				}
				reportCPU(b, start)
				b.ReportMetric(impl.bytesPerK, "B/key")
			})
			b.Run("par=N", func(b *testing.B) {
				var seed atomic.Uint64
				b.ReportAllocs()
				start := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					s := seed.Add(1)
					rng := rand.New(rand.NewPCG(s, s))
					var buf [32]byte
					for pb.Next() {
						impl.allow(keyedKey(&buf, rng.IntN(keyedN)))
					}
				})
				reportCPU(b, start)
				b.ReportMetric(impl.bytesPerK, "B/key")
			})
		})
	}
}
