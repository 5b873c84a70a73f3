package redisstore

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore/redistest"
)

// BenchmarkScript measures the Redis CPU one decision costs inside the
// script (INFO commandstats usec of EVALSHA per decision) for batches of 1,
// 16 and 64 decisions of each algorithm on distinct keys (keys=1000), and
// for the token bucket also on one hot key (keys=1):
//
//	go test -run '^$' -bench Script ./redisstore
func BenchmarkScript(b *testing.B) {
	srv := redistest.Start(b)
	client := srv.Client()
	s, err := New(client, WithDeadline(5*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, algo := range []weir.Algorithm{weir.TokenBucket, weir.FixedWindow, weir.SlidingWindowCounter, weir.SlidingWindowLog, weir.Concurrency} {
		nkeys := []int{1000}
		if algo == weir.TokenBucket {
			nkeys = append(nkeys, 1)
		}
		for _, nk := range nkeys {
			for _, n := range []int{1, 16, 64} {
				benchScript(b, s, client, algo, nk, n, 1)
			}
		}
	}
	// Takes of 7 costs interleaved (a localquota.Store's blocks), which
	// the batching layer sends grouped by cost (groupBlobs), and of 64
	// costs, one per take, each sent as its cost alone after the first.
	benchScript(b, s, client, weir.TokenBucket, 1000, 64, 7)
	benchScript(b, s, client, weir.TokenBucket, 1000, 64, 64)
}

// benchScript runs batches of n takes on nkeys keys, of costs 1 to costs
// in turn.
func benchScript(b *testing.B, s *Store, client *redis.Client, algo weir.Algorithm, nkeys, n int, costs int64) {
	name := "algo=" + algo.String() + "/keys=" + strconv.Itoa(nkeys) + "/batch=" + strconv.Itoa(n)
	if costs > 1 {
		name += "/costs=" + strconv.FormatInt(costs, 10)
	}
	b.Run(name, func(b *testing.B) {
		lim := weir.Per(1_000_000, 1_000_000_000).WithAlgorithm(algo).WithName("b")
		batch := make([]*call, n)
		round := 0
		u0, c0 := evalStats(b, client)
		cpu0 := redisCPU(b, client)
		for b.Loop() {
			for i := range batch {
				c, err := s.prepare(opTake, &weir.Request{Checks: []weir.Check{{Key: "k" + strconv.Itoa((round*n+i)%nkeys), Limit: lim}}, Cost: 1 + int64(i)%costs, Lease: "l" + strconv.Itoa(i)})
				if err != nil {
					b.Fatal(err)
				}
				c.deadline = s.mono() + int64(time.Minute) // do sets it
				batch[i] = c
			}
			round++
			s.run(batch)
			for _, c := range batch {
				<-c.done
				if c.err != nil {
					b.Fatal(c.err)
				}
			}
		}
		cpu1 := redisCPU(b, client)
		u1, c1 := evalStats(b, client)
		usec, calls := u1-u0, c1-c0
		b.ReportMetric(float64(usec)/float64(b.N*n), "redis-µs/decision")
		b.ReportMetric((cpu1-cpu0)/float64(b.N*n), "redis-cpu-µs/decision")
		b.ReportMetric(float64(usec)/float64(calls), "redis-µs/call")
	})
}

// redisCPU returns Redis's own CPU time so far, user and system, in µs
// (INFO cpu): unlike commandstats' usec, it does not count the time Redis
// was descheduled, so it holds on a busy machine.
func redisCPU(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatalf("INFO cpu: %q: %v", line, err)
				}
				sum += f * 1e6
			}
		}
	}
	return sum
}

// evalStats returns the usec and calls of EVALSHA and EVAL so far.
func evalStats(b *testing.B, c *redis.Client) (usec, calls int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, f := range strings.Split(line[strings.IndexByte(line, ':')+1:], ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "usec":
				usec += n
			case "calls":
				calls += n
			}
		}
	}
	return usec, calls
}

// BenchmarkScriptPipelined is the script's ceiling as redis-benchmark
// would measure it with -P 16: 4 connections each sending pipelines of 16
// single-decision EVALSHA calls, no batching layer. (redis-benchmark
// itself cannot send the script's packed arguments, which contain NUL
// bytes.) Compare its decisions/s with bench's BenchmarkRedisAllow:
//
//	go test -run '^$' -bench ScriptPipelined ./redisstore
func BenchmarkScriptPipelined(b *testing.B) {
	srv := redistest.Start(b)
	client := srv.Client()
	s, err := New(client)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := client.ScriptLoad(context.Background(), scriptSrc()).Err(); err != nil {
		b.Fatal(err)
	}
	for _, nkeys := range []int{1000, 1} {
		b.Run("keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			lim := weir.PerSecond(1_000_000).WithName("bench")
			calls := make([]*call, nkeys)
			for i := range calls {
				c, err := s.prepare(opTake, &weir.Request{Checks: []weir.Check{{Key: "user:" + strconv.Itoa(i), Limit: lim}}, Cost: 1})
				if err != nil {
					b.Fatal(err)
				}
				calls[i] = c
			}
			ctx := context.Background()
			var next atomic.Uint64
			b.SetParallelism(2) // 4 goroutines on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for {
					p := client.Pipeline()
					n := 0
					for n < 16 && pb.Next() {
						c := calls[next.Add(1)%uint64(nkeys)]
						p.EvalSha(ctx, scriptSHA(), c.keys, append(callHeader(nil, -1, false, 1, pathFastDistinct), c.args...)...)
						n++
					}
					if n == 0 {
						return
					}
					if _, err := p.Exec(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
