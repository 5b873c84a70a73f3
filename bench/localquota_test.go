package bench

// Local quota (package localquota) beside the Redis store used directly
// and redis_rate, on the same redis-server:
//
//	go test -run '^$' -bench 'LocalQuota' -benchtime 2s -count 3 . | tee lq.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl lq.txt
//
// BenchmarkLocalQuota runs 4 OS processes (this test binary re-executed
// with WEIR_LQ_HELPER set) × 16 goroutines, each process with its own
// store and connection pool, as issue 20 asks. With load=admit the limit
// admits everything on 1000 keys round robin; with load=overload (equal
// demand) and load=skewed (one process makes 90% of the calls) 10 keys are
// limited to 20 per second with burst 20, far below the demand, and util-%
// is the admitted units over the exact bound Σ(burst + rate·T) of the keys
// over the run (left-%: what the keys still hold just after it, over the
// same bound). Each reports decisions/s, redis-µs/op (Redis CPU in
// scripts per decision, from INFO commandstats) and p99-µs; the local
// stores also their counters per decision (blocks/op, waits/op, …), the
// mean round trip of a background Take (refill-rtt-ms) and the refill
// lead they ended with (lead-ms, the mean of the processes'). impl=local
// holds blocks for L = 100 ms (the default), local-L1s for 1 s, and
// local-optimistic settles every 10 ms. The decisions of one b.N are split
// between the processes (skewed: 90% to the first), and the run lasts
// until the last process is done; process start-up is not timed.
//
// BenchmarkLQOneProcess runs the same loads with the 4 stores in this one
// process, for profiles (-cpuprofile sees only this process).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// lqStores is the number of stores (processes) of BenchmarkLocalQuota, and
// lqG the goroutines of each.
const (
	lqStores = 4
	lqG      = 16
)

// TestMain runs the helper process of BenchmarkLocalQuota when
// WEIR_LQ_HELPER is set, and the tests and benchmarks otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("WEIR_LQ_HELPER") != "" {
		if err := lqHelper(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "lq helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lqLoads are the loads of both benchmarks.
var lqLoads = []struct {
	name string
	skew bool
}{{"admit", false}, {"overload", false}, {"skewed", true}}

var lqImpls = []string{"local", "local-L1s", "local-optimistic", "redisstore", "redis_rate"}

// lqLimit is the limit of a load: all admit, or 20/s burst 20.
func lqLimit(load string) weir.Limit {
	if load == "admit" {
		return weir.PerSecond(1_000_000).WithName("lq-bench")
	}
	return weir.PerSecond(20).WithName("lq-limited")
}

// lqKeys is the key space of a load: 1000 keys, or 10 hot ones.
func lqKeys(load string) []string {
	if load == "admit" {
		return redisKeys
	}
	return redisKeys[:10]
}

// lqStore is one "process" of the benchmark: its decision function and,
// for the local stores, their counters.
type lqStore struct {
	allow allowFunc
	stats func() localquota.Stats
	close func()
}

// newLQStore builds impl over its own client c, with keys under prefix.
func newLQStore(c *redis.Client, impl string, limit weir.Limit, prefix string) (*lqStore, error) {
	rs, err := redisstore.New(c, redisstore.WithDeadline(5*time.Second), redisstore.WithPrefix(prefix))
	if err != nil {
		return nil, err
	}
	st := &lqStore{close: func() { _ = rs.Close() }}
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
			return nil, err
		}
		st.close = func() { _ = ls.Close(); _ = rs.Close() }
		store, st.stats = ls, ls.Stats
	}
	lim, err := weir.NewLimiter(store, limit)
	if err != nil {
		return nil, err
	}
	st.allow = func(ctx context.Context, key string) (bool, error) {
		d, err := lim.Allow(ctx, key)
		return d.Allowed, err
	}
	if impl == "redis_rate" {
		rl := redis_rate.NewLimiter(c)
		peer := redis_rate.Limit{Rate: int(limit.Quota), Burst: int(limit.Capacity()), Period: limit.Period}
		st.allow = func(ctx context.Context, key string) (bool, error) {
			r, err := rl.Allow(ctx, prefix+key, peer)
			return err == nil && r.Allowed > 0, err
		}
	}
	return st, nil
}

// lqHist is a latency histogram: 1 µs buckets below 1 ms, then 1 ms
// buckets up to 10 s.
type lqHist [11000]int64

func (h *lqHist) add(d time.Duration) {
	us := d.Microseconds()
	i := us
	if us >= 1000 {
		i = min(1000+us/1000, int64(len(h)-1))
	}
	h[i]++
}

// p99 returns the lower edge of the bucket of the 99th percentile, in µs.
func (h *lqHist) p99() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	want := n * 99 / 100
	var seen int64
	for i, c := range h {
		seen += c
		if seen > want {
			if i < 1000 {
				return int64(i)
			}
			return int64(i-1000) * 1000
		}
	}
	return 0
}

// lqResult is what one run of one store reports.
type lqResult struct {
	Admitted int64
	Errors   int64 // decisions that returned an error (counted as denials)
	Stats    localquota.Stats
	Hist     *lqHist
}

// lqRun makes n decisions over keys from g goroutines through st, key
// order round robin from offset.
func lqRun(st *lqStore, keys []string, n int64, g, offset int) lqResult {
	ctx := context.Background()
	var left atomic.Int64
	left.Store(n)
	var next atomic.Uint64
	next.Store(uint64(offset))
	var mu sync.Mutex
	res := lqResult{Hist: new(lqHist)}
	var wg sync.WaitGroup
	base := time.Now()
	nk := uint64(len(keys))
	for range g {
		wg.Go(func() {
			var h lqHist
			var admitted, errs int64
			// The goroutines claim decisions and keys lqChunk at a time:
			// two shared atomics per decision cost these processes as much
			// CPU as a local decision. The keys are still taken round robin
			// over the run. A decision's latency is the time since the
			// goroutine's previous one ended: one clock read per decision,
			// counting the loop's few ns with it.
			last := time.Since(base)
			for {
				m := min(left.Add(-lqChunk)+lqChunk, lqChunk)
				if m <= 0 {
					break
				}
				k := next.Add(uint64(m)) - uint64(m)
				for j := range uint64(m) {
					ok, err := st.allow(ctx, keys[(k+j)%nk])
					if err != nil {
						// A store slower than its deadline on a busy
						// machine: counted, reported, not fatal.
						errs++
					}
					if ok {
						admitted++
					}
					now := time.Since(base)
					h.add(now - last)
					last = now
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Admitted += admitted
			res.Errors += errs
			for i, c := range h {
				res.Hist[i] += c
			}
		})
	}
	wg.Wait()
	if st.stats != nil {
		res.Stats = st.stats()
	}
	return res
}

// lqChunk is how many decisions (and keys) a goroutine of lqRun claims at
// once.
const lqChunk = 64

// lqHelper is one process of BenchmarkLocalQuota: it builds its store from
// the environment, says "ready", runs when a line arrives on in, and
// writes its lqResult as JSON.
func lqHelper(in io.Reader, out io.Writer) error {
	n, err := strconv.ParseInt(os.Getenv("WEIR_LQ_N"), 10, 64)
	if err != nil {
		return fmt.Errorf("WEIR_LQ_N: %w", err)
	}
	offset, err := strconv.Atoi(os.Getenv("WEIR_LQ_OFFSET"))
	if err != nil {
		return fmt.Errorf("WEIR_LQ_OFFSET: %w", err)
	}
	load := os.Getenv("WEIR_LQ_LOAD")
	c := redis.NewClient(&redis.Options{Addr: os.Getenv("WEIR_REDIS_ADDR"), MaxRetries: -1, PoolSize: 64})
	defer c.Close()
	st, err := newLQStore(c, os.Getenv("WEIR_LQ_IMPL"), lqLimit(load), os.Getenv("WEIR_LQ_PREFIX"))
	if err != nil {
		return err
	}
	defer st.close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	res := lqRun(st, lqKeys(load), n, lqG, offset)
	return json.NewEncoder(out).Encode(res)
}

// BenchmarkLocalQuota: 4 OS processes × 16 goroutines (see the file
// comment).
func BenchmarkLocalQuota(b *testing.B) {
	for _, load := range lqLoads {
		for _, impl := range lqImpls {
			if load.name != "admit" && impl == "redis_rate" {
				continue // the comparison of utilisation is between Weir's two paths
			}
			b.Run(fmt.Sprintf("load=%s/impl=%s", load.name, impl), func(b *testing.B) {
				benchLQProcesses(b, impl, load.name, load.skew)
			})
		}
	}
}

// lqShares splits n decisions between the stores: equally, or 90% to the
// first.
func lqShares(n int64, skew bool) []int64 {
	sh := make([]int64, lqStores)
	if skew {
		rest := n / 10
		for i := 1; i < lqStores; i++ {
			sh[i] = rest / (lqStores - 1)
		}
	} else {
		for i := 1; i < lqStores; i++ {
			sh[i] = n / lqStores
		}
	}
	sh[0] = n
	for _, s := range sh[1:] {
		sh[0] -= s
	}
	return sh
}

func benchLQProcesses(b *testing.B, impl, load string, skew bool) {
	b.StopTimer()
	addr := redisAddr(b)
	client := redisClient(b)
	prefix := fmt.Sprintf("lq%d:", time.Now().UnixNano())
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var procs []proc
	defer func() {
		for _, p := range procs {
			_ = p.stdin.Close()
			_ = p.cmd.Wait()
		}
	}()
	for i, n := range lqShares(int64(b.N), skew) {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), "WEIR_LQ_HELPER=1", "WEIR_REDIS_ADDR="+addr, "WEIR_LQ_IMPL="+impl,
			"WEIR_LQ_LOAD="+load, "WEIR_LQ_PREFIX="+prefix, "WEIR_LQ_N="+strconv.FormatInt(n, 10),
			"WEIR_LQ_OFFSET="+strconv.Itoa(i*len(lqKeys(load))/lqStores))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		p := proc{cmd, stdin, bufio.NewReader(stdout)}
		procs = append(procs, p)
		if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
			b.Fatalf("helper %d: %q, %v", i, line, err)
		}
	}
	usec, calls := scriptUsec(b, client)
	cpu := redisCPU(b, client)
	b.StartTimer()
	start := time.Now()
	for _, p := range procs {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			b.Fatal(err)
		}
	}
	results := make([]lqResult, len(procs))
	for i, p := range procs {
		if err := json.NewDecoder(p.out).Decode(&results[i]); err != nil {
			b.Fatalf("helper %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	all := lqResult{Hist: new(lqHist)}
	for _, r := range results {
		all.add(r)
	}
	usec2, calls2 := scriptUsec(b, client)
	b.ReportMetric((redisCPU(b, client)-cpu)*1e6/float64(b.N), "redis-cpu-µs/op")
	lqReport(b, all, elapsed, usec2-usec, calls2-calls, impl, load)
	if load != "admit" {
		lqLeft(b, client, prefix, load, elapsed)
	}
}

// lqLeft reports left-%: what the limited keys still hold just after the
// run (a peek of each, a few ms after the last process ended), over the
// bound of util-%: the part of the bound the run ended without spending. A
// store that admits a unit only once it is back in the bucket ends with up
// to about one per key. util-% + left-% is 100, less what a full bucket
// wasted, plus what refilled before the peek and what the optimistic mode
// admitted beyond the bound.
func lqLeft(b *testing.B, c *redis.Client, prefix, load string, elapsed time.Duration) {
	rs, err := redisstore.New(c, redisstore.WithPrefix(prefix))
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	limit, keys := lqLimit(load), lqKeys(load)
	var left int64
	for _, k := range keys {
		d, err := rs.Take(context.Background(), &weir.Request{Checks: []weir.Check{{Key: k, Limit: limit}}})
		if err != nil {
			b.Fatal(err)
		}
		left += d.Remaining
	}
	bound := float64(len(keys)) * (float64(limit.Capacity()) + float64(limit.Quota)*elapsed.Seconds()/limit.Period.Seconds())
	b.ReportMetric(100*float64(left)/bound, "left-%")
}

func (r *lqResult) add(o lqResult) {
	r.Admitted += o.Admitted
	r.Errors += o.Errors
	for i, c := range o.Hist {
		r.Hist[i] += c
	}
	r.Stats.Blocks += o.Stats.Blocks
	r.Stats.Taken += o.Stats.Taken
	r.Stats.Wasted += o.Stats.Wasted
	r.Stats.Returned += o.Stats.Returned
	r.Stats.Waits += o.Stats.Waits
	r.Stats.Fetches += o.Stats.Fetches
	r.Stats.Created += o.Stats.Created
	r.Stats.Refills += o.Stats.Refills
	r.Stats.Refreshes += o.Stats.Refreshes
	r.Stats.Returns += o.Stats.Returns
	r.Stats.Landed += o.Stats.Landed
	r.Stats.LandedTime += o.Stats.LandedTime
	r.Stats.Lead += o.Stats.Lead // a sum over the stores: lqReport reports their mean
}

// lqReport reports the metrics of one run of b.N decisions.
func lqReport(b *testing.B, r lqResult, elapsed time.Duration, usec, calls int64, impl, load string) {
	limit, keys := lqLimit(load), lqKeys(load)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(usec)/float64(b.N), "redis-µs/op")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	b.ReportMetric(float64(r.Hist.p99()), "p99-µs")
	if r.Errors > 0 {
		b.ReportMetric(float64(r.Errors), "errors")
	}
	if load != "admit" {
		// The exact bound of the run: every key's burst plus its rate over
		// the elapsed time (an upper estimate of the Redis clock's span).
		bound := float64(len(keys)) * (float64(limit.Capacity()) + float64(limit.Quota)*elapsed.Seconds()/limit.Period.Seconds())
		b.ReportMetric(100*float64(r.Admitted)/bound, "util-%")
	}
	if impl != "redisstore" && impl != "redis_rate" {
		b.ReportMetric(float64(r.Stats.Blocks)/float64(b.N), "blocks/op")
		b.ReportMetric(float64(r.Stats.Waits)/float64(b.N), "waits/op")
		b.ReportMetric(float64(r.Stats.Fetches)/float64(b.N), "fetches/op")
		b.ReportMetric(float64(r.Stats.Created)/float64(b.N), "created/op")
		b.ReportMetric(float64(r.Stats.Refills)/float64(b.N), "refills/op")
		b.ReportMetric(float64(r.Stats.Refreshes)/float64(b.N), "refreshes/op")
		b.ReportMetric(float64(r.Stats.Returns)/float64(b.N), "returns/op")
		if r.Stats.Landed > 0 {
			b.ReportMetric(r.Stats.LandedTime.Seconds()*1e3/float64(r.Stats.Landed), "refill-rtt-ms")
		}
		if impl != "local-optimistic" {
			b.ReportMetric(r.Stats.Lead.Seconds()*1e3/lqStores, "lead-ms")
		}
		if load != "admit" {
			b.ReportMetric(float64(r.Stats.Taken), "taken")
			b.ReportMetric(float64(r.Stats.Wasted), "wasted")
			b.ReportMetric(float64(r.Admitted), "admitted")
		}
	}
}

// redisCPU returns the CPU time the Redis server has used so far, user and
// system, in seconds (INFO cpu): unlike commandstats' usec, which is the
// elapsed time of the scripts, it counts neither the time Redis was
// descheduled nor only scripts (it includes reading and writing the
// sockets).
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
				sum += f
			}
		}
	}
	return sum
}

// BenchmarkLQOneProcess runs the loads of BenchmarkLocalQuota with the 4
// stores in this process (64 goroutines in all), for profiles.
func BenchmarkLQOneProcess(b *testing.B) {
	for _, load := range lqLoads {
		for _, impl := range lqImpls {
			if load.name != "admit" && impl == "redis_rate" {
				continue
			}
			b.Run(fmt.Sprintf("load=%s/impl=%s", load.name, impl), func(b *testing.B) {
				benchLQOneProcess(b, impl, load.name, load.skew)
			})
		}
	}
}

func benchLQOneProcess(b *testing.B, impl, load string, skew bool) {
	prefix := fmt.Sprintf("lq%d:", time.Now().UnixNano())
	var stores []*lqStore
	var clients []*redis.Client
	for range lqStores {
		c := redisClient(b)
		st, err := newLQStore(c, impl, lqLimit(load), prefix)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(st.close)
		stores, clients = append(stores, st), append(clients, c)
	}
	usec, calls := scriptUsec(b, clients[0])
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	results := make([]lqResult, lqStores)
	var wg sync.WaitGroup
	for i, n := range lqShares(int64(b.N), skew) {
		wg.Go(func() { results[i] = lqRun(stores[i], lqKeys(load), n, lqG, i*len(lqKeys(load))/lqStores) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := lqResult{Hist: new(lqHist)}
	for _, r := range results {
		all.add(r)
	}
	usec2, calls2 := scriptUsec(b, clients[0])
	lqReport(b, all, elapsed, usec2-usec, calls2-calls, impl, load)
}
