package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func take(t testing.TB, s weir.Store, cost int64, checks ...weir.Check) weir.Decision {
	t.Helper()
	d, err := s.Take(context.Background(), &weir.Request{Checks: checks, Cost: cost})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ctx := context.Background()
	cases := []struct {
		name   string
		checks []weir.Check
	}{
		{"token-bucket", []weir.Check{{Key: "k", Limit: weir.PerSecond(1e6).WithName("tb")}}},
		{"fixed-window", []weir.Check{{Key: "k", Limit: weir.Per(1e9, time.Second).WithAlgorithm(weir.FixedWindow).WithName("fw")}}},
		{"sliding-window", []weir.Check{{Key: "k", Limit: weir.Per(1e9, time.Second).WithAlgorithm(weir.SlidingWindowCounter).WithName("swc")}}},
		{"two limits", []weir.Check{
			{Key: "k", Limit: weir.PerSecond(1e6).WithName("a")},
			{Key: "tenant", Limit: weir.PerMinute(1e9).WithName("b")},
		}},
		{"four limits", []weir.Check{
			{Key: "k", Limit: weir.PerSecond(1e6).WithName("a")},
			{Key: "k", Limit: weir.PerMinute(1e9).WithName("b")},
			{Key: "k", Limit: weir.Per(1e9, time.Hour).WithAlgorithm(weir.FixedWindow).WithName("c")},
			{Key: "t", Limit: weir.Per(1e9, time.Hour).WithAlgorithm(weir.SlidingWindowCounter).WithName("d")},
		}},
	}
	s := memstore.New()
	for _, tc := range cases {
		req := &weir.Request{Checks: tc.checks, Cost: 1}
		for _, cost := range []int64{1, 0} {
			req.Cost = cost
			if _, err := s.Take(ctx, req); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := s.Take(ctx, req); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s cost %d: %v allocations per Take on an existing key, want 0", tc.name, cost, allocs)
			}
		}
	}
	// Through a Limiter: Allow on an existing key allocates nothing either.
	lim, err := weir.NewLimiter(s, weir.PerSecond(1e6), weir.PerHour(1e9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lim.Allow(ctx, "user"); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = lim.Allow(ctx, "user") }); allocs != 0 {
		t.Errorf("Limiter.Allow: %v allocations, want 0", allocs)
	}
}

func TestCapRefusesWhenNothingIsFresh(t *testing.T) {
	clk := newFakeClock()
	s := memstore.New(memstore.WithClock(clk.now), memstore.WithMaxKeys(10))
	ctx := context.Background()
	hour := weir.PerHour(1).WithName("hour")
	sec := weir.PerSecond(1).WithName("sec")
	for i := range 5 {
		take(t, s, 1, weir.Check{Key: fmt.Sprint("h", i), Limit: hour})
		take(t, s, 1, weir.Check{Key: fmt.Sprint("s", i), Limit: sec})
	}
	if got := s.Stats().Keys; got != 10 {
		t.Fatalf("Keys = %d, want 10", got)
	}
	_, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "new", Limit: hour}}, Cost: 1})
	if !errors.Is(err, memstore.ErrFull) || !errors.Is(err, weir.ErrUnavailable) {
		t.Fatalf("new key at the cap: %v, want ErrFull matching ErrUnavailable", err)
	}
	if st := s.Stats(); st.Refused != 1 || st.Evicted != 0 || st.Keys != 10 {
		t.Fatalf("Stats = %+v, want 1 refused, 0 evicted, 10 keys", st)
	}
	// Peeks and existing keys still work at the cap.
	if d := take(t, s, 0, weir.Check{Key: "new", Limit: hour}); !d.Allowed {
		t.Fatalf("peek on a new key at the cap: %+v", d)
	}
	for i := range 5 {
		if d := take(t, s, 1, weir.Check{Key: fmt.Sprint("h", i), Limit: hour}); d.Allowed {
			t.Fatalf("h%d admitted twice: its state was lost", i)
		}
	}
	// A second later the per-second states are fresh: exactly five new
	// keys fit, and the hourly states are never evicted.
	clk.advance(time.Second)
	for i := range 5 {
		if d := take(t, s, 1, weir.Check{Key: fmt.Sprint("n", i), Limit: hour}); !d.Allowed {
			t.Fatalf("n%d denied", i)
		}
	}
	if _, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "n5", Limit: hour}}, Cost: 1}); !errors.Is(err, memstore.ErrFull) {
		t.Fatalf("sixth new key: %v, want ErrFull", err)
	}
	for i := range 5 {
		if d := take(t, s, 1, weir.Check{Key: fmt.Sprint("h", i), Limit: hour}); d.Allowed {
			t.Fatalf("h%d admitted again after eviction: a non-fresh state was evicted", i)
		}
	}
	if st := s.Stats(); st.Evicted != 5 || st.Keys != 10 || st.Refused != 2 {
		t.Fatalf("Stats = %+v, want 5 evicted, 10 keys, 2 refused", st)
	}
	// A multi-check request that needs two new states at the cap charges
	// nothing.
	clk.advance(2 * time.Hour) // everything is fresh
	for i := range 10 {
		take(t, s, 1, weir.Check{Key: fmt.Sprint("m", i), Limit: hour})
	}
	d, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "m0", Limit: sec}, {Key: "m1", Limit: sec}}, Cost: 1})
	if !errors.Is(err, memstore.ErrFull) {
		t.Fatalf("two new states at the cap: %+v, %v", d, err)
	}
	if d := take(t, s, 0, weir.Check{Key: "m0", Limit: hour}); d.Allowed {
		t.Fatal("m0 hour state lost")
	}
}

// TestFloodKeepsHotKeys is the R22 pattern: a flood of new keys against a
// key cap never resets the hot keys, and memory stays bounded.
func TestFloodKeepsHotKeys(t *testing.T) {
	clk := newFakeClock()
	const capKeys = 20_000
	s := memstore.New(memstore.WithClock(clk.now), memstore.WithMaxKeys(capKeys))
	ctx := context.Background()
	hot := weir.PerMinute(60).WithName("hot") // 1/s, burst 60
	cold := weir.PerSecond(2).WithName("new") // fresh 500ms after one use
	admitted := make([]int, 100)
	flood := 300_000
	if testing.Short() || raceEnabled {
		flood = 40_000
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	refused := 0
	var peak int64
	for i := range flood {
		if i%100 == 0 {
			clk.advance(time.Millisecond) // 100k new keys per fake second
			for k := range admitted {
				if take(t, s, 1, weir.Check{Key: fmt.Sprint("hot", k), Limit: hot}).Allowed {
					admitted[k]++
				}
			}
		}
		_, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: fmt.Sprint("flood", i), Limit: cold}}, Cost: 1})
		if errors.Is(err, memstore.ErrFull) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, s.Stats().Keys)
	}
	elapsed := time.Duration(flood/100) * time.Millisecond
	// Each hot key: at most burst + rate*elapsed (R01), and since demand
	// far exceeds the rate, not less than that minus one.
	bound := 60 + int(elapsed/time.Second)
	for k, n := range admitted {
		if n > bound || n < bound-1 {
			t.Fatalf("hot%d admitted %d over %v, want %d: hot state was reset or lost", k, n, elapsed, bound)
		}
	}
	if peak > capKeys {
		t.Fatalf("peak keys %d above the cap %d", peak, capKeys)
	}
	// New keys arrive at 100k per fake second and stay 500ms: the cap is
	// hit, and the flood is refused rather than the hot keys evicted.
	if refused == 0 || peak < capKeys*9/10 {
		t.Fatalf("the flood never reached the cap (peak %d, %d refused): the test tests nothing", peak, refused)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	st := s.Stats()
	t.Logf("flood of %d keys: peak %d keys, %d refused, %d evicted, heap grew %d KiB", flood, peak, refused, st.Evicted, grown/1024)
	// 20k token-bucket states take well under 4 MiB; the flood of 300k
	// keys must not have grown the heap beyond that.
	if grown > 4<<20 {
		t.Fatalf("heap grew by %d bytes for a cap of %d keys", grown, capKeys)
	}
	runtime.KeepAlive(s)
}

// Without a cap, lazy eviction at every insertion keeps idle keys from
// piling up.
func TestLazyEviction(t *testing.T) {
	clk := newFakeClock()
	s := memstore.New(memstore.WithClock(clk.now))
	lim := weir.PerSecond(1000).WithName("l") // fresh 1ms after one use
	n := 200_000
	if testing.Short() || raceEnabled {
		n = 40_000
	}
	for i := range n {
		take(t, s, 1, weir.Check{Key: fmt.Sprint(i), Limit: lim})
		if i%10 == 0 {
			clk.advance(time.Millisecond) // about 10 keys live at any time
		}
	}
	st := s.Stats()
	t.Logf("%d keys inserted, %d stored, %d evicted", n, st.Keys, st.Evicted)
	if st.Keys > int64(n)/20 {
		t.Fatalf("%d of %d idle keys still stored: lazy eviction does not keep up", st.Keys, n)
	}
}

func TestSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memstore.New(memstore.WithSweep(time.Minute))
		defer s.Close()
		for i := range 1000 {
			take(t, s, 1, weir.Check{Key: fmt.Sprint(i), Limit: weir.PerSecond(10).WithName("x")})
			take(t, s, 1, weir.Check{Key: fmt.Sprint(i), Limit: weir.Per(10, time.Second).WithAlgorithm(weir.FixedWindow).WithName("y")})
			take(t, s, 1, weir.Check{Key: fmt.Sprint(i), Limit: weir.Per(10, time.Second).WithAlgorithm(weir.SlidingWindowLog).WithName("z")})
		}
		take(t, s, 1, weir.Check{Key: "long", Limit: weir.PerDay(10).WithName("day")})
		if got := s.Stats().Keys; got != 3001 {
			t.Fatalf("Keys = %d, want 3001", got)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if st := s.Stats(); st.Keys != 1 || st.Evicted != 3000 {
			t.Fatalf("after a sweep: %+v, want 1 key (the daily one), 3000 evicted", st)
		}
		if d := take(t, s, 0, weir.Check{Key: "long", Limit: weir.PerDay(10).WithName("day")}); d.Remaining != 9 {
			t.Fatalf("the sweep reset a live state: %+v", d)
		}
	})
}

func TestCloseStopsSweeper(t *testing.T) {
	s := memstore.New(memstore.WithSweep(time.Hour))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Still usable after Close.
	take(t, s, 1, weir.Check{Key: "k", Limit: weir.PerSecond(1)})
	// goleak (TestMain) checks that the goroutine is gone.
}

func TestDuplicateCheck(t *testing.T) {
	s := memstore.New()
	c := weir.Check{Key: "k", Limit: weir.PerSecond(1).WithName("same")}
	_, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c, c}, Cost: 1})
	var fe *weir.FieldError
	if !errors.As(err, &fe) || fe.Field != "checks[1]" {
		t.Fatalf("the same state twice in one request: %v, want a FieldError naming checks[1]", err)
	}
	if d := take(t, s, 0, c); d.Remaining != 1 {
		t.Fatalf("charged by an invalid request: %+v", d)
	}
}

// Multi-limit requests lock several shards; opposite orders must not
// deadlock, and counts stay exact.
func TestMultiShardNoDeadlock(t *testing.T) {
	clk := newFakeClock()
	s := memstore.New(memstore.WithClock(clk.now))
	a := weir.Per(1_000_000, time.Hour).WithName("a")
	var wg sync.WaitGroup
	var admitted atomic.Int64
	const workers, each = 8, 2000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k1, k2 := fmt.Sprint(i%37), fmt.Sprint(i%53)
				checks := []weir.Check{{Key: k1, Limit: a}, {Key: "x" + k2, Limit: a}, {Key: "tenant", Limit: weir.PerHour(10_000).WithName("t")}}
				if w%2 == 1 {
					checks[0], checks[2] = checks[2], checks[0]
				}
				if take(t, s, 1, checks...).Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != 10_000 {
		t.Fatalf("%d admitted under a tenant limit of 10000 (of %d requests)", got, workers*each)
	}
}

// TestBytesPerKey measures the heap that token-bucket states take: the
// target is at most 64 bytes per key at 1,000,000 keys. A slot is 32 bytes
// (the 128-bit identity and the state), and a table grown by half when it
// would pass 4/5 full holds 1.25 to 1.875 slots per key: 40 to 60 bytes
// (at 10⁶ keys, 64 shards of 24,276 slots: 1.55 slots, 50 bytes).
func TestBytesPerKey(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 50_000
	}
	perKey := bytesPerKey(t, n)
	t.Logf("%d token-bucket keys: %.1f bytes of heap per key", n, perKey)
	if perKey > 64 {
		t.Fatalf("%.1f bytes per key, want at most 64", perKey)
	}
}

func bytesPerKey(t testing.TB, n int) float64 {
	clk := newFakeClock()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := memstore.New(memstore.WithClock(clk.now))
	lim := weir.PerHour(100).WithName("per-key")
	ctx := context.Background()
	req := &weir.Request{Checks: []weir.Check{{Limit: lim}}, Cost: 1}
	buf := make([]byte, 0, 32)
	for i := range n {
		buf = strconv.AppendInt(append(buf[:0], "user:"...), int64(i), 10)
		req.Checks[0].Key = string(buf)
		if _, err := s.Take(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	req = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := s.Stats().Keys; got != int64(n) {
		t.Fatalf("Keys = %d, want %d", got, n)
	}
	runtime.KeepAlive(s)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}
