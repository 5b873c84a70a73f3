package redisstore_test

// Local quota (package localquota) over a real redis-server shared by
// several processes: the bound over the whole run and over every interval,
// and the fault cases. Each helper process runs a localquota.Store over its
// own redisstore.Store and records, through a wrapper, every block it took
// and every unit it gave back, so the test can check exact accounting
// (admitted <= taken - returned) and the shared limit's own bound on the
// Redis clock.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

func init() { redistest.RegisterHelper("localquota", helperLocalQuota) }

// lqHold is the L of the helpers' stores.
const lqHold = 100 * time.Millisecond

// lqReport is what a "localquota" helper prints: per key index, the Redis
// instants (µs) of its admissions (the Decision's estimate of the store's
// clock; one entry per unit) and of its charges, and the units returned.
type lqReport struct {
	Admitted, Denied, Errors int64
	Events                   map[int][]int64 // key -> admission instants, µs
	Charges                  map[int][]int64 // key -> charge instant of every unit taken, µs
	Returned                 map[int]int64   // key -> units given back
}

// recorder wraps the shared store and records what the local store took
// from it and gave back.
type recorder struct {
	weir.Store
	mu       sync.Mutex
	keys     map[string]int
	charges  map[int][]int64
	returned map[int]int64
}

func (r *recorder) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	d, err := r.Store.Take(ctx, req)
	if err == nil && d.Allowed && d.Source == weir.SourceStore && req.Cost > 0 {
		r.mu.Lock()
		k := r.keys[req.Checks[0].Key]
		for range req.Cost {
			r.charges[k] = append(r.charges[k], d.Time.UnixMicro())
		}
		r.mu.Unlock()
	}
	return d, err
}

func (r *recorder) Refund(ctx context.Context, req *weir.Request) error {
	err := r.Store.Refund(ctx, req)
	if err == nil {
		r.mu.Lock()
		r.returned[r.keys[req.Checks[0].Key]] += req.Cost
		r.mu.Unlock()
	}
	return err
}

// lqLimit is the limit of the helpers: WEIR_Q per second with burst
// WEIR_B, a token bucket or (WEIR_ALGO=fixed) a fixed window.
func lqLimit() weir.Limit {
	l := weir.PerSecond(int64(envInt("WEIR_Q"))).WithName("lq")
	if os.Getenv("WEIR_ALGO") == "fixed" {
		return l.WithAlgorithm(weir.FixedWindow)
	}
	return l.WithBurst(int64(envInt("WEIR_B")))
}

// helperLocalQuota makes WEIR_RATE requests per second (cost 1) over
// WEIR_KEYS keys from WEIR_G goroutines for WEIR_MS milliseconds through a
// local-quota store over Redis (optimistic with WEIR_SYNC_MS; pausing in
// the first 300 ms of every second with WEIR_BURSTS), and prints an
// lqReport. With WEIR_READY it
// prints "ready" once it holds a block, then keeps going until killed.
func helperLocalQuota() {
	client, done := helperClient()
	defer done()
	// A long deadline unless the test wants errors: accounting is under
	// test, not latency, on a busy machine.
	deadline := 10 * time.Second
	if ms := os.Getenv("WEIR_DEADLINE_MS"); ms != "" {
		deadline = time.Duration(envInt("WEIR_DEADLINE_MS")) * time.Millisecond
	}
	rs, err := redisstore.New(client, redisstore.WithDeadline(deadline))
	if err != nil {
		fatal(err)
	}
	nkeys := envInt("WEIR_KEYS")
	rec := &recorder{Store: rs, keys: map[string]int{}, charges: map[int][]int64{}, returned: map[int]int64{}}
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		rec.keys[keys[i]] = i
	}
	opts := []localquota.Option{localquota.WithHold(lqHold)}
	if os.Getenv("WEIR_SYNC_MS") != "" {
		opts = append(opts, localquota.WithOptimistic(time.Duration(envInt("WEIR_SYNC_MS"))*time.Millisecond))
	}
	s, err := localquota.New(rec, opts...)
	if err != nil {
		fatal(err)
	}
	limit := lqLimit()
	g, rate := envInt("WEIR_G"), envInt("WEIR_RATE")
	end := time.Now().Add(time.Duration(envInt("WEIR_MS")) * time.Millisecond)
	ready := os.Getenv("WEIR_READY") != ""
	burst := os.Getenv("WEIR_BURSTS") != ""
	var once sync.Once
	var mu sync.Mutex
	rep := lqReport{Events: map[int][]int64{}}
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(i)))
			tick := time.NewTicker(time.Duration(g) * time.Second / time.Duration(rate))
			defer tick.Stop()
			for ready || time.Now().Before(end) {
				<-tick.C
				if burst {
					// Every process pauses in the first 300 ms of each
					// wall-clock second and rushes after: the bucket is full
					// again when they all ask at once.
					if ms := time.Now().UnixMilli() % 1000; ms < 300 {
						time.Sleep(time.Duration(300-ms) * time.Millisecond)
					}
				}
				k := rng.IntN(nkeys)
				d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{{Key: keys[k], Limit: limit}}, Cost: 1})
				mu.Lock()
				switch {
				case err != nil:
					if rep.Errors == 0 {
						fmt.Fprintln(os.Stderr, "helper: first error:", err)
					}
					rep.Errors++
				case d.Allowed:
					rep.Admitted++
					rep.Events[k] = append(rep.Events[k], d.Time.UnixMicro())
				default:
					rep.Denied++
				}
				mu.Unlock()
				if ready && s.Stats().Blocks > 0 {
					once.Do(func() { fmt.Println("ready") })
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		fatal(err)
	}
	rep.Charges, rep.Returned = rec.charges, rec.returned
	_ = rs.Close()
	_ = json.NewEncoder(os.Stdout).Encode(rep)
}

// lqEnv is the helpers' environment for one run.
func lqEnv(addr string, keys, q, b, g, rate int, dur time.Duration, algo string) []string {
	return []string{"WEIR_ADDR=" + addr, "WEIR_KEYS=" + strconv.Itoa(keys), "WEIR_Q=" + strconv.Itoa(q),
		"WEIR_B=" + strconv.Itoa(b), "WEIR_G=" + strconv.Itoa(g), "WEIR_RATE=" + strconv.Itoa(rate),
		"WEIR_MS=" + strconv.Itoa(int(dur/time.Millisecond)), "WEIR_ALGO=" + algo}
}

// tbCheck checks, for one key of a token bucket q/s with burst b, the
// admissions ev (sorted instants, µs) against b + ⌊(T+L)·q⌋ over every
// interval between them, and in all against the bucket's own bound
// b + ⌊T·q⌋ over the span T of the charges. It returns a violation or "".
func tbCheck(ev, charges []int64, q, b int64) string {
	l := lqHold.Microseconds()
	// n admissions in [ev[i], ev[j]] fit when n <= b + (ev[j]-ev[i]+l)·q/1e6,
	// that is G(j) - G(i) <= b·1e6 + l·q with G(k) = k·1e6 - q·ev[k]: one
	// pass keeping the largest -G(i) so far checks every pair.
	if len(ev) > 0 {
		t0 := ev[0]
		var bestI int64 = -1 << 62 // max over i <= j of q·ev[i] - (i-1)·1e6
		for j := range ev {
			bestI = max(bestI, q*(ev[j]-t0)-int64(j-1)*1_000_000)
			if j+1 < len(ev) && ev[j+1] == ev[j] {
				continue // count every admission at the same instant
			}
			if int64(j)*1_000_000-q*(ev[j]-t0)+bestI > b*1_000_000+l*q {
				return fmt.Sprintf("an interval ending at %d µs (admission %d) holds more than %d + ⌊(T+L)·%d/s⌋", ev[j], j, b, q)
			}
		}
	}
	if len(charges) == 0 {
		return ""
	}
	// Every admitted unit was charged within the span of the charges, and
	// a return never leaves the bucket more permissive than if the
	// returned units had not been charged (their decayed part stays
	// charged, wasted): so the admitted units are within the bucket's own
	// bound over that span, with 0 over.
	if n, m := int64(len(ev)), b+(charges[len(charges)-1]-charges[0])*q/1_000_000; n > m {
		return fmt.Sprintf("%d admitted over the run, bound %d over the span of the charges", n, m)
	}
	return ""
}

// optCheck checks the optimistic mode (algo "optimistic=N/S_ms"): at every
// admission instant t, the units admitted since the first admission t0 are
// at most b + ⌊(t−t0)·q⌋ + N·⌈q·S⌉. The instants are the processes'
// clocks (the Decision of an optimistic admission carries the local
// clock), all this machine's.
func optCheck(t *testing.T, ev []int64, algo string, q, b int64) string {
	var n, syncMS int64
	if _, err := fmt.Sscanf(algo, "optimistic=%d/%d", &n, &syncMS); err != nil {
		return err.Error()
	}
	over := n * ((q*syncMS + 999) / 1000)
	worst := int64(-1 << 62)
	for j := range ev {
		if j+1 < len(ev) && ev[j+1] == ev[j] {
			continue
		}
		bound := b + (ev[j]-ev[0])*q/1_000_000
		worst = max(worst, int64(j+1)-bound)
		if int64(j+1) > bound+over {
			return fmt.Sprintf("%d admitted by %d µs, bound %d + N·⌈rate·S⌉ %d", j+1, ev[j], bound, over)
		}
	}
	t.Logf("optimistic: worst overshoot %d units, formula N·⌈rate·S⌉ = %d", worst, over)
	return ""
}

// fwCheck checks a fixed window of q per second: at most q admissions per
// epoch-aligned second (their Redis instants).
func fwCheck(ev []int64, q int64) string {
	per := map[int64]int64{}
	for _, t := range ev {
		per[t/1_000_000]++
		if per[t/1_000_000] > q {
			return fmt.Sprintf("%d admitted in the second %d, bound %d", per[t/1_000_000], t/1_000_000, q)
		}
	}
	return ""
}

// lqVerify merges the reports and checks every key; it returns the totals.
func lqVerify(t *testing.T, reps []lqReport, q, b int64, algo string) (admitted, taken, returned, errs int64) {
	t.Helper()
	events, charges, ret := map[int][]int64{}, map[int][]int64{}, map[int]int64{}
	for _, r := range reps {
		admitted += r.Admitted
		errs += r.Errors
		for k, ev := range r.Events {
			events[k] = append(events[k], ev...)
		}
		for k, c := range r.Charges {
			charges[k] = append(charges[k], c...)
			taken += int64(len(c))
		}
		for k, n := range r.Returned {
			ret[k] += n
			returned += n
		}
	}
	bad := 0
	for k, ev := range events {
		slices.Sort(ev)
		slices.Sort(charges[k])
		// Exact mode takes every unit before admitting it. The optimistic
		// mode admits first and settles later, so a settle that a busy
		// machine pushes past the store's deadline leaves admitted units
		// never taken: its promise is the overshoot bound checked below.
		if !strings.HasPrefix(algo, "optimistic=") && int64(len(ev)) > int64(len(charges[k]))-ret[k] {
			t.Errorf("key %d: admitted %d > taken %d - returned %d: a unit was admitted that was never taken", k, len(ev), len(charges[k]), ret[k])
		}
		msg := ""
		switch {
		case algo == "fixed":
			msg = fwCheck(ev, q)
		case strings.HasPrefix(algo, "optimistic="):
			msg = optCheck(t, ev, algo, q, b)
		default:
			msg = tbCheck(ev, charges[k], q, b)
		}
		if msg != "" && bad < 5 {
			t.Errorf("key %d: %s", k, msg)
			bad++
		}
	}
	return admitted, taken, returned, errs
}

// TestLocalQuotaMultiProcess: 4 processes × 16 goroutines, each with a
// local-quota store over its own Redis connection pool, one key and 1000
// keys, equal demand and skewed (one process sends 90%), at twice the
// limit: every key within its bound over every interval (Redis clock, L =
// 100 ms) and over the whole run with 0 over, and no admission that was
// not first taken from Redis. CI runs 2 s per case; WEIR_SOAK=1 runs 20 s.
func TestLocalQuotaMultiProcess(t *testing.T) {
	srv := redistest.Start(t)
	dur := pick(2*time.Second, 20*time.Second)
	cases := []struct {
		name       string
		keys, q, b int
		total      int // requests per second, all processes
		algo       string
		skew       bool
	}{
		{"one key", 1, 2000, 200, 4000, "token", false},
		{"one key skewed", 1, 2000, 200, 4000, "token", true},
		{"one key fixed window", 1, 2000, 0, 4000, "fixed", false},
		{"1000 keys", 1000, 4, 4, 8000, "token", false},
		{"1000 keys skewed", 1000, 4, 4, 8000, "token", true},
		{"one key optimistic", 1, 2000, 200, 4000, "optimistic=4/20", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := srv.Addr
			if _, err := srv.Do("FLUSHALL"); err != nil {
				t.Fatal(err)
			}
			reps := make([]lqReport, 4)
			errs := make([]error, 4)
			var wg sync.WaitGroup
			for p := range 4 {
				rate := tc.total / 4
				if tc.skew {
					rate = tc.total / 30 // the other three: 10% in all
					if p == 0 {
						rate = tc.total * 9 / 10
					}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					env := lqEnv(addr, tc.keys, tc.q, tc.b, 16, rate, dur, tc.algo)
					if strings.HasPrefix(tc.algo, "optimistic=") {
						env = append(env, "WEIR_SYNC_MS=20", "WEIR_BURSTS=1")
					}
					out, err := helper(t, "localquota", env...).Output()
					if err == nil {
						err = json.Unmarshal(out, &reps[p])
					}
					errs[p] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			admitted, taken, returned, nerr := lqVerify(t, reps, int64(tc.q), int64(tc.b), tc.algo)
			t.Logf("admitted %d; taken %d, returned %d; errors %d", admitted, taken, returned, nerr)
			if nerr != 0 {
				t.Errorf("%d errors", nerr)
			}
			if admitted == 0 {
				t.Fatal("nothing admitted")
			}
		})
	}
}

// TestLocalQuotaRedisFaults: under load from 2 processes, Redis is
// stopped with SIGSTOP for 2 s and resumed, then killed with SIGKILL and
// restarted (R13). Processes serve from held blocks for at most L after
// the store stops answering, then fail; afterwards decisions resume, and
// every admission was taken from Redis first (exact accounting across the
// faults). The bound over the run is checked up to the restart, which
// forgets the state as it does for the Redis store itself.
func TestLocalQuotaRedisFaults(t *testing.T) {
	srv := redistest.Start(t)
	dur := 5 * time.Second
	var reps [2]lqReport
	var errs [2]error
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := helper(t, "localquota", append(lqEnv(srv.Addr, 1, 1000, 100, 8, 1500, dur, "token"), "WEIR_DEADLINE_MS=1000")...).Output()
			if err == nil {
				err = json.Unmarshal(out, &reps[p])
			}
			errs[p] = err
		}()
	}
	time.Sleep(time.Second)
	srv.Pause()
	time.Sleep(2 * time.Second) // twice the helpers' deadline
	srv.Resume()
	time.Sleep(500 * time.Millisecond)
	srv.Kill()
	srv.Restart()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var admitted, denied, nerr int64
	for _, r := range reps {
		admitted, denied, nerr = admitted+r.Admitted, denied+r.Denied, nerr+r.Errors
		var ev, ch []int64
		for _, e := range r.Events {
			ev = append(ev, e...)
		}
		for _, c := range r.Charges {
			ch = append(ch, c...)
		}
		if n, m := int64(len(ev)), int64(len(ch))-r.Returned[0]; n > m {
			t.Errorf("a process admitted %d > taken %d - returned %d", n, len(ch), r.Returned[0])
		}
	}
	t.Logf("admitted %d, denied %d, errors %d (during the faults)", admitted, denied, nerr)
	if nerr == 0 {
		t.Error("no errors while Redis was stopped: the fault did not take")
	}
	if admitted == 0 {
		t.Error("nothing admitted")
	}
}

// TestLocalQuotaKilledHolder: a process SIGKILLed while it holds blocks
// of a fixed window of 1000 per second: its units are not returned, but
// they lapse with their window. Checked exactly on Redis: the window two
// after the kill (a Take sent just before it may be charged in the next)
// holds the whole quota. Then a fresh process never gets more than the
// quota in a window; how many of its windows it fills is logged, not
// asserted (on a busy machine its requests may come too slowly or fail).
func TestLocalQuotaKilledHolder(t *testing.T) {
	srv := redistest.Start(t)
	cmd, out := startHelper(t, "localquota", append(lqEnv(srv.Addr, 1, 1000, 0, 4, 4000, time.Hour, "fixed"), "WEIR_READY=1")...)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ctx := context.Background()
	client := srv.Client()
	defer client.Close()
	now, err := client.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Sleep into the window two after the kill's, on Redis's clock.
	time.Sleep(now.Truncate(time.Second).Add(2*time.Second + 50*time.Millisecond).Sub(now))
	rs, err := redisstore.New(client)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	limit := weir.PerSecond(1000).WithName("lq").WithAlgorithm(weir.FixedWindow)
	d, err := rs.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "k0", Limit: limit}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Remaining != 1000 {
		t.Fatalf("the window two after the kill holds %d of 1000 (peeked at %v): the killed holder's units did not lapse", d.Remaining, d.Time)
	}
	reps := runHelpers[lqReport](t, 1, "localquota", lqEnv(srv.Addr, 1, 1000, 0, 8, 3000, 2500*time.Millisecond, "fixed")...)
	per := map[int64]int64{}
	for _, ev := range reps[0].Events {
		for _, at := range ev {
			per[at/1_000_000]++
		}
	}
	full := 0
	for _, n := range per {
		if n > 1000 {
			t.Errorf("%d in one window, bound 1000", n)
		}
		if n == 1000 {
			full++
		}
	}
	t.Logf("after the kill: admissions per window %v (%d full), %d errors", per, full, reps[0].Errors)
}
