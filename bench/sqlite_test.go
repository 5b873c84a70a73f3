package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/sqlitestore"
)

// BenchmarkSQLiteTake measures single-process decisions on the SQLite store
// (a real file in b.TempDir(), WAL, one transaction per decision) next to
// the memory store: throughput (decisions/s) and the 99th percentile of
// the latency of one Take (p99-ns), serially and from 16 goroutines
// (b.SetParallelism), on one hot key and spread over 10,000 keys. Every
// request is admitted, so every decision writes.
//
//	go test -run '^$' -bench BenchmarkSQLiteTake -count 10 . | tee sqlite.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl sqlite.txt
func BenchmarkSQLiteTake(b *testing.B) {
	limit := weir.PerSecond(1_000_000_000).WithName("bench")
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	impls := []struct {
		name string
		open func(b *testing.B) weir.Store
	}{
		{"sqlite", func(b *testing.B) weir.Store {
			s, err := sqlitestore.Open(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"memstore", func(b *testing.B) weir.Store {
			s := memstore.New()
			b.Cleanup(func() { s.Close() })
			return s
		}},
	}
	for _, spread := range []struct {
		name string
		keys []string
	}{{"hot", keys[:1]}, {"10k", keys}} {
		for _, mode := range []string{"serial", "parallel16"} {
			for _, impl := range impls {
				b.Run(spread.name+"/"+mode+"/impl="+impl.name, func(b *testing.B) {
					s := impl.open(b)
					if mode == "serial" {
						benchSerial(b, s, limit, spread.keys)
					} else {
						benchParallel(b, s, limit, spread.keys)
					}
				})
			}
		}
	}
}

// take decides on one admitted unit and returns how long it took, or an
// error for a failed or denied decision.
func take(s weir.Store, req *weir.Request) (time.Duration, error) {
	t0 := time.Now()
	d, err := s.Take(context.Background(), req)
	if err == nil && !d.Allowed {
		err = fmt.Errorf("denied: %+v", d)
	}
	return time.Since(t0), err
}

func benchSerial(b *testing.B, s weir.Store, limit weir.Limit, keys []string) {
	req := &weir.Request{Checks: []weir.Check{{Limit: limit}}, Cost: 1}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	i := 0
	start := time.Now()
	for b.Loop() {
		req.Checks[0].Key = keys[i%len(keys)]
		i++
		d, err := take(s, req)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	report(b, time.Since(start), lat)
}

func benchParallel(b *testing.B, s weir.Store, limit weir.Limit, keys []string) {
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ReportAllocs()
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 goroutines
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req := &weir.Request{Checks: []weir.Check{{Limit: limit}}, Cost: 1}
		lat := make([]time.Duration, 0, 1<<12)
		i := 0
		for pb.Next() {
			req.Checks[0].Key = keys[i%len(keys)]
			i += 7
			d, err := take(s, req)
			if err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				break
			}
			lat = append(lat, d)
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	report(b, time.Since(start), all)
}

// report adds decisions/s and the 99th percentile latency.
func report(b *testing.B, elapsed time.Duration, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
