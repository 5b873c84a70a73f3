package localquota_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// event is one admission: when (since the start) and how many units.
type event struct {
	at   time.Duration
	cost int64
}

const hold = 100 * time.Millisecond

// runFleet runs procs local stores over one shared memstore, each with g
// goroutines taking cost 1-3 units of c with bursty pauses for dur, all
// inside the caller's synctest bubble, and returns the admissions sorted
// by time (the one clock of the bubble, which is also the shared store's).
func runFleet(t *testing.T, c weir.Check, procs, g int, dur time.Duration, demand float64, skew bool, opts ...localquota.Option) ([]event, []localquota.Stats) {
	t.Helper()
	shared := memstore.New()
	defer shared.Close()
	start := time.Now()
	// The mean pause that makes the fleet ask for demand times the
	// limit's rate (2 units a request on average).
	rate := float64(c.Limit.Quota) / c.Limit.Period.Seconds()
	base := time.Duration(float64(procs*g) * 2 / (rate * demand) * float64(time.Second))
	var mu sync.Mutex
	var ev []event
	stats := make([]localquota.Stats, procs)
	var wg sync.WaitGroup
	for p := range procs {
		s, err := localquota.New(shared, append([]localquota.Option{localquota.WithHold(hold)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), uint64(i)))
				for time.Since(start) < dur {
					cost := 1 + rng.Int64N(min(3, c.Limit.Capacity()))
					d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: cost})
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						mu.Lock()
						ev = append(ev, event{time.Since(start), cost})
						mu.Unlock()
					}
					// Bursts and pauses: a process that took a block and
					// then paused spends it later, which is what L bounds.
					// With skew, process 0 sends most of the demand.
					pause := time.Duration(rng.Int64N(2 * int64(base)))
					if skew {
						// 90% of the demand from process 0.
						if p == 0 {
							pause = pause * time.Duration(procs) / 9 / 2
						} else {
							pause = pause * time.Duration(procs) * 9 / 10 / 2
						}
					}
					if rng.IntN(50) == 0 {
						pause = time.Duration(rng.IntN(int(3 * hold)))
					}
					time.Sleep(pause)
				}
			}()
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			stats[p] = s.Stats()
		}()
	}
	wg.Wait()
	slices.SortStableFunc(ev, func(a, b event) int { return int(a.at - b.at) })
	return ev, stats
}

// sumBound checks, for every pair of admissions i <= j, that the units
// admitted in [ev[i].at, ev[j].at] are at most maxIn(ev[i].at, ev[j].at).
func sumBound(ev []event, maxIn func(a, b time.Duration) int64) string {
	for i := range ev {
		var sum int64
		for j := i; j < len(ev); j++ {
			sum += ev[j].cost
			if j+1 < len(ev) && ev[j+1].at == ev[j].at {
				continue
			}
			if m := maxIn(ev[i].at, ev[j].at); sum > m {
				return fmt.Sprintf("%d units in [%v, %v], bound %d", sum, ev[i].at, ev[j].at, m)
			}
		}
	}
	return ""
}

// windowBound checks that every epoch-aligned window of period holds at
// most quota units (the bubble starts on a whole second).
func windowBound(ev []event, period time.Duration, quota int64) string {
	per := map[time.Duration]int64{}
	for _, e := range ev {
		w := e.at / period
		per[w] += e.cost
		if per[w] > quota {
			return fmt.Sprintf("%d units in window %d of %v, bound %d", per[w], w, period, quota)
		}
	}
	return ""
}

func total(ev []event) (n int64) {
	for _, e := range ev {
		n += e.cost
	}
	return n
}

// TestBound: 4 processes × 8 goroutines over one shared store, each
// algorithm, equal and skewed demand: the whole run within the shared
// limit's own bound (0 over) and every interval between admissions within
// the bound with L (docs/algorithms.md, Local quota).
func TestBound(t *testing.T) {
	const L = int64(hold)
	sec := int64(time.Second)
	cases := []struct {
		limit    weir.Limit
		whole    func(T time.Duration) int64 // the shared limit's bound over [0, T]
		interval func(ev []event) string
	}{
		{weir.PerSecond(200).WithBurst(20), func(T time.Duration) int64 { return 20 + int64(T)*200/sec },
			func(ev []event) string {
				return sumBound(ev, func(a, b time.Duration) int64 { return 20 + (int64(b-a)+L)*200/sec })
			}},
		{weir.PerSecond(300).WithAlgorithm(weir.FixedWindow), func(T time.Duration) int64 { return 300 * (int64(T)/sec + 1) },
			func(ev []event) string { return windowBound(ev, time.Second, 300) }},
		{weir.PerSecond(300).WithAlgorithm(weir.SlidingWindowCounter), func(T time.Duration) int64 { return 300 * (int64(T)/sec + 1) },
			func(ev []event) string { return windowBound(ev, time.Second, 300) }},
		{weir.Per(100, 500*time.Millisecond).WithAlgorithm(weir.SlidingWindowLog), func(T time.Duration) int64 { return 100 * (2*int64(T)/sec + 1) },
			func(ev []event) string {
				p := int64(500 * time.Millisecond)
				return sumBound(ev, func(a, b time.Duration) int64 { return 100 * ((int64(b-a)+L)/p + 1) })
			}},
	}
	for _, tc := range cases {
		for _, run := range []struct {
			demand float64
			skew   bool
		}{{0.7, false}, {1.5, false}, {1.5, true}, {20, false}} {
			demand, skew := run.demand, run.skew
			t.Run(fmt.Sprintf("%s/demand=%v/skew=%v", tc.limit, demand, skew), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					c := weir.Check{Key: "k", Limit: tc.limit}
					dur := 3 * time.Second
					ev, stats := runFleet(t, c, 4, 8, dur, demand, skew)
					if len(ev) == 0 {
						t.Fatal("nothing admitted")
					}
					n, w := total(ev), tc.whole(ev[len(ev)-1].at)
					var taken, returned, wasted int64
					for _, s := range stats {
						taken, returned, wasted = taken+s.Taken, returned+s.Returned, wasted+s.Wasted
					}
					t.Logf("admitted %d, whole-run bound %d (%.1f%%); taken %d, returned %d, wasted %d",
						n, w, 100*float64(n)/float64(w), taken, returned, wasted)
					if n > w {
						t.Errorf("admitted %d > whole-run bound %d", n, w)
					}
					if n != taken-returned-wasted {
						t.Errorf("admitted %d != taken %d - returned %d - wasted %d", n, taken, returned, wasted)
					}
					if msg := tc.interval(ev); msg != "" {
						t.Errorf("interval bound violated: %s", msg)
					}
				})
			})
		}
	}
}

// TestHoldBound: a process takes a block, goes quiet while the bucket
// refills, and comes back after another process has spent the whole burst:
// its old units lapsed (they were charged more than L ago), so the instant
// sees at most Burst + rate·L units, not Burst plus the old block.
func TestHoldBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memstore.New()
		defer shared.Close()
		c := weir.Check{Key: "k", Limit: weir.PerSecond(10)} // burst 10, one unit per 100 ms
		take := func(s *localquota.Store, cost int64) bool {
			t.Helper()
			d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: cost})
			if err != nil {
				t.Fatal(err)
			}
			return d.Allowed
		}
		a, _ := localquota.New(shared, localquota.WithHold(hold))
		b, _ := localquota.New(shared, localquota.WithHold(hold))
		defer a.Close()
		defer b.Close()
		for i := 0; a.Stats().Taken < 8 && i < 20; i++ { // blocks grow (slow start) to the rest of the burst
			take(a, 1)
			time.Sleep(time.Millisecond)
		}
		if st := a.Stats(); st.Taken < 8 {
			t.Fatalf("a took %d units; the test needs a block held", st.Taken)
		}
		time.Sleep(5 * time.Second) // the bucket refills; a's block is older than L
		if !take(b, 10) {
			t.Fatal("b: the full burst was not admitted after 5 s")
		}
		var n int64
		for take(a, 1) {
			n++
		}
		// Burst + ⌊L·rate⌋ = 10 + 1 at one instant.
		if 10+n > 11 {
			t.Errorf("%d units admitted at one instant, bound 11", 10+n)
		}
	})
}

// flaky is a shared store that fails while down is set.
type flaky struct {
	weir.Store
	down atomic.Bool
}

func (f *flaky) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if f.down.Load() {
		return weir.Decision{}, fmt.Errorf("flaky: %w", weir.ErrUnavailable)
	}
	return f.Store.Take(ctx, req)
}

func (f *flaky) Refund(ctx context.Context, req *weir.Request) error {
	if f.down.Load() {
		return fmt.Errorf("flaky: %w", weir.ErrUnavailable)
	}
	return f.Store.Refund(ctx, req)
}

// TestStoreDown: while the shared store fails, a process admits from the
// units it holds until they lapse (at most L), then returns the store's
// error; when the store is back, decisions resume and the run stays within
// the bound (nothing counted twice, nothing minted).
func TestStoreDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memstore.New()
		defer mem.Close()
		shared := &flaky{Store: mem}
		s, err := localquota.New(shared, localquota.WithHold(hold))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := weir.Check{Key: "k", Limit: weir.PerSecond(1000)}
		req := &weir.Request{Checks: []weir.Check{c}, Cost: 1}
		var admitted int64
		pause := time.Millisecond
		step := func() error {
			d, err := s.Take(context.Background(), req)
			if d.Allowed {
				admitted++
			}
			time.Sleep(pause)
			return err
		}
		for range 100 { // demand of 1000/s: blocks of about 50
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		shared.down.Store(true)
		down := time.Now()
		pause = 5 * time.Millisecond // slower than the blocks were sized for: they lapse before they are spent
		var served int64
		for {
			before := admitted
			err := step()
			if err != nil {
				if !errors.Is(err, weir.ErrUnavailable) {
					t.Fatalf("error %v does not match ErrUnavailable", err)
				}
				break
			}
			served += admitted - before
			if time.Since(down) > hold {
				t.Fatalf("admitted from held units %v after the store went down (L = %v)", time.Since(down), hold)
			}
		}
		if served == 0 {
			t.Fatal("nothing served from held units while the store was down")
		}
		time.Sleep(time.Second)
		shared.down.Store(false)
		pause = time.Millisecond
		start := time.Now()
		for range 100 {
			if err := step(); err != nil {
				t.Fatalf("after the store came back: %v", err)
			}
		}
		t.Logf("served %d from held units; admitted %d in all", served, admitted)
		// Within the shared bucket's own bound over the whole run.
		if bound := 1000 + int64(time.Since(start)+time.Since(down))*1000/int64(time.Second); admitted > bound {
			t.Errorf("admitted %d > %d", admitted, bound)
		}
	})
}

// TestReturns: unspent units go back to the shared store when the key is
// idle and on Close (a fixed window refunds exactly), and a closed store
// refuses Takes.
func TestReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memstore.New()
		defer shared.Close()
		c := weir.Check{Key: "k", Limit: weir.Per(1000, time.Hour).WithAlgorithm(weir.FixedWindow)}
		peek := func() int64 {
			d, err := shared.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}})
			if err != nil {
				t.Fatal(err)
			}
			return d.Remaining
		}
		for _, viaClose := range []bool{false, true} {
			if err := shared.Reset(context.Background(), []weir.Check{c}); err != nil {
				t.Fatal(err)
			}
			s, _ := localquota.New(shared, localquota.WithHold(hold))
			var spent int64
			// At least 50, until a block is held beyond what was spent.
			for spent < 50 || 1000-spent-peek() <= 0 && spent < 200 {
				d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1})
				if err != nil || !d.Allowed {
					t.Fatal(d, err)
				}
				spent++
				time.Sleep(100 * time.Microsecond)
			}
			if held := 1000 - spent - peek(); held <= 0 {
				t.Fatalf("no units held after %d spent: the test needs a block (close=%v, %+v)", spent, viaClose, s.Stats())
			}
			if viaClose {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				time.Sleep(hold)
			}
			if got := peek(); got != 1000-spent {
				t.Errorf("close=%v: shared store has %d available, want %d (1000 - %d spent)", viaClose, got, 1000-spent, spent)
			}
			_ = s.Close()
			if _, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1}); !errors.Is(err, localquota.ErrClosed) || !errors.Is(err, weir.ErrUnavailable) {
				t.Errorf("Take after Close: %v, want ErrClosed", err)
			}
		}
	})
}

func TestInvalid(t *testing.T) {
	shared := memstore.New()
	defer shared.Close()
	if _, err := localquota.New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
	for _, o := range []localquota.Option{localquota.WithHold(0), localquota.WithMaxBlock(0)} {
		if s, err := localquota.New(shared, o); err == nil {
			s.Close()
			t.Error("a bad option was accepted")
		}
	}
	s, _ := localquota.New(shared)
	defer s.Close()
	ok := weir.Check{Key: "k", Limit: weir.PerSecond(10)}
	for _, tc := range []struct {
		field string
		req   *weir.Request
	}{
		{"checks", &weir.Request{}},
		{"cost", &weir.Request{Checks: []weir.Check{ok}, Cost: -1}},
		{"cost", &weir.Request{Checks: []weir.Check{ok}, Cost: 11}},
		{"checks[0].limit.quota", &weir.Request{Checks: []weir.Check{{Key: "k", Limit: weir.Limit{Period: time.Second}}}, Cost: 1}},
	} {
		_, err := s.Take(context.Background(), tc.req)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, weir.ErrInvalid) || !strings.Contains(strings.ToLower(fe.Field), tc.field) {
			t.Errorf("%+v: error %v, want a FieldError naming %q", tc.req, err, tc.field)
		}
	}
}

// TestOptimisticBound: in the optimistic mode, 4 processes × 8 goroutines
// at 1.5× and 20× the rate: at every admission, the units admitted since
// the start are within the shared limit's bound plus N·⌈rate·S⌉.
func TestOptimisticBound(t *testing.T) {
	const procs = 4
	const S = 50 * time.Millisecond
	sec := int64(time.Second)
	for _, tc := range []struct {
		limit weir.Limit
		bound func(T time.Duration) int64 // the shared limit's own bound over [0, T]
	}{
		{weir.PerSecond(200).WithBurst(20), func(T time.Duration) int64 { return 20 + int64(T)*200/sec }},
		{weir.PerSecond(300).WithAlgorithm(weir.FixedWindow), func(T time.Duration) int64 { return 300 * (int64(T)/sec + 1) }},
	} {
		for _, demand := range []float64{1.5, 20} {
			t.Run(fmt.Sprintf("%s/demand=%v", tc.limit, demand), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					c := weir.Check{Key: "k", Limit: tc.limit}
					ev, _ := runFleet(t, c, procs, 8, 3*time.Second, demand, false, localquota.WithOptimistic(S))
					rate := tc.limit.Quota * int64(S) / int64(tc.limit.Period) // ⌈rate·S⌉, exact here
					over := procs * rate
					var n, worst int64
					for i, e := range ev {
						n += e.cost
						if i+1 < len(ev) && ev[i+1].at == e.at {
							continue
						}
						b := tc.bound(e.at)
						worst = max(worst, n-b)
						if n > b+over {
							t.Fatalf("%d admitted by %v, bound %d + N·⌈rate·S⌉ %d", n, e.at, b, over)
						}
					}
					t.Logf("admitted %d; worst overshoot %d, formula N·⌈rate·S⌉ = %d", n, worst, over)
					if n == 0 {
						t.Fatal("nothing admitted")
					}
				})
			})
		}
	}
}

// gated is a shared store whose first Take with a deadline (a background
// refill's: callers here pass none) after arm is charged and then held
// back until release is closed: a refill that holds units but has not
// landed yet.
type gated struct {
	weir.Store
	armed   atomic.Bool
	charged chan struct{} // closed once the gated Take was charged
	release chan struct{}
}

func (g *gated) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	d, err := g.Store.Take(ctx, req)
	if _, bg := ctx.Deadline(); bg && err == nil && d.Allowed && req.Cost > 0 && g.armed.CompareAndSwap(true, false) {
		close(g.charged)
		<-g.release
	}
	return d, err
}

// TestRefillInFlight: a request that finds no units held while this
// process's refill holds the store's last units (another process took the
// rest) waits for that refill instead of asking the store, which would
// deny it (and the denial would be remembered): the quota covers it, so it
// is admitted once the refill lands. A request whose context ends while it
// waits returns the context's error.
func TestRefillInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memstore.New()
		defer mem.Close()
		g := &gated{Store: mem, charged: make(chan struct{}), release: make(chan struct{})}
		var once sync.Once
		release := func() { once.Do(func() { close(g.release) }) }
		s, err := localquota.New(g, localquota.WithHold(hold))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		defer release() // before Close, which waits for the refill
		c := weir.Check{Key: "k", Limit: weir.Per(1000, time.Hour).WithAlgorithm(weir.FixedWindow)}
		req := &weir.Request{Checks: []weir.Check{c}, Cost: 1}
		take := func() weir.Decision {
			t.Helper()
			d, err := s.Take(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		g.armed.Store(true)
		// Spend one unit a millisecond until a background refill is
		// charged and held back.
		var admitted int64
		for refilling := false; !refilling; {
			if d := take(); !d.Allowed {
				t.Fatalf("denied after %d admitted of 1000 before any refill was held back", admitted)
			}
			admitted++
			time.Sleep(time.Millisecond)
			synctest.Wait()
			select {
			case <-g.charged:
				refilling = true
			default:
			}
		}
		// Another process takes the rest of the quota.
		peek := func() int64 {
			d, err := mem.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}})
			if err != nil {
				t.Fatal(err)
			}
			return d.Remaining
		}
		if r := peek(); r > 0 {
			if d, err := mem.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: r}); err != nil || !d.Allowed {
				t.Fatalf("the other process could not take the last %d units: %+v, %v", r, d, err)
			}
		}
		// Spend what is held locally.
		for d := take(); ; d = take() {
			if !d.Allowed {
				t.Fatalf("denied after %d admitted while units were held", admitted)
			}
			admitted++
			if d.Remaining == 0 {
				break
			}
		}
		if r := peek(); r != 0 {
			t.Fatalf("%d units left in the store: the test sets up nothing", r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if _, err := s.Take(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a request whose context ended while it waited for the refill: %v, want %v", err, context.DeadlineExceeded)
		}
		cancel()
		slow := make(chan struct{})
		go func() {
			defer close(slow)
			time.Sleep(10 * time.Millisecond) // the refill's goroutine is slow
			release()
		}()
		if d := take(); !d.Allowed {
			t.Errorf("denied after %d admitted while this process's refill held its units: %+v", admitted, d)
		}
		<-slow
	})
}

// TestFastBucketBlocks: under steady demand on a fast token bucket (whose
// units refill within the hold, so giving them back early returns
// nothing), a key's blocks are spent until they expire and refilled in
// the background before they run out: no request but each key's first
// waits on the shared store, and a key takes at most one block per 7/8
// hold (its first aside): the lead is hold/8 when the store answers at
// once. The earlier policy, which gave blocks back a quarter hold before
// they expired and refilled at half a hold, took one per half hold.
func TestFastBucketBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memstore.New()
		defer shared.Close()
		s, err := localquota.New(shared, localquota.WithHold(hold))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const keys, n = 10, 5000 // one request per 200 µs: 1 s
		lim := weir.PerSecond(1_000_000)
		for i := range n {
			c := weir.Check{Key: fmt.Sprint("k", i%keys), Limit: lim}
			if d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1}); err != nil || !d.Allowed {
				t.Fatalf("request %d: %+v, %v", i, d, err)
			}
			time.Sleep(200 * time.Microsecond)
		}
		st := s.Stats()
		if st.Waits > keys {
			t.Errorf("%d requests waited on the shared store, want at most %d (each key's first): %+v", st.Waits, keys, st)
		}
		if st.Created != keys || st.Fetches != st.Waits || st.Fetches < keys {
			t.Errorf("created %d entries and fetched %d blocks while waiting, of %d waits: want %d entries and each first request fetching its own block: %+v", st.Created, st.Fetches, st.Waits, keys, st)
		}
		if most := keys * (1 + int64((8*time.Second+7*hold-1)/(7*hold))); st.Blocks > most {
			t.Errorf("%d blocks for %d keys in 1 s, want at most one per key and 7/8 hold after the first (%d): %+v", st.Blocks, keys, most, st)
		}
		t.Logf("%+v", st)
	})
}

// TestLeadFollowsRoundTrip: the refill lead is three times the smoothed
// round trip of background Takes, within [hold/8, hold/2], and Stats
// reports it with the round trips themselves. A block is spendable for a
// hold less the lead, so a store that answers slowly costs more Takes for
// the same demand: steady demand on 10 keys of a fast limit for 1 s (and
// the first waits), over a store 1 ms and 20 ms away.
func TestLeadFollowsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		rtt, lead time.Duration
	}{
		{time.Millisecond, hold / 8},      // 3 ms is below the least lead
		{20 * time.Millisecond, hold / 2}, // 60 ms is above the most
	} {
		t.Run(tc.rtt.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := distantStore(t, tc.rtt)
				// A caller per key, one request per 2 ms: a caller that waits
				// on the store does not hold back the other keys.
				const keys, n = 10, 500
				lim := weir.PerSecond(1_000_000)
				var wg sync.WaitGroup
				for k := range keys {
					wg.Go(func() {
						c := weir.Check{Key: fmt.Sprint("k", k), Limit: lim}
						for i := range n {
							if d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1}); err != nil || !d.Allowed {
								t.Errorf("key %d, request %d: %+v, %v", k, i, d, err)
								return
							}
							time.Sleep(2 * time.Millisecond)
						}
					})
				}
				wg.Wait()
				synctest.Wait() // every background Take has landed
				st := s.Stats()
				if st.Landed != st.Refills+st.Refreshes || st.Landed == 0 {
					t.Errorf("%d background Takes landed, want the %d refills and %d refreshes: %+v", st.Landed, st.Refills, st.Refreshes, st)
				}
				if want := time.Duration(st.Landed) * tc.rtt; st.LandedTime != want {
					t.Errorf("background Takes took %v in all, want %d × %v = %v", st.LandedTime, st.Landed, tc.rtt, want)
				}
				if st.Lead != tc.lead {
					t.Errorf("lead %v, want %v", st.Lead, tc.lead)
				}
				// One block per key per hold less the lead, after each
				// key's first: at most.
				if most := keys * (1 + int64(time.Second/(hold-tc.lead))); st.Blocks > most {
					t.Errorf("%d blocks, want at most %d: %+v", st.Blocks, most, st)
				}
				t.Logf("%+v", st)
			})
		})
	}
}
