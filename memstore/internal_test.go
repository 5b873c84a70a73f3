package memstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// count is the number of states actually stored.
func (s *Store) count() int64 {
	var n int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += int64(sh.tb.n + len(sh.win) + len(sh.ptr))
		sh.mu.Unlock()
	}
	return n
}

// TestKeyAccounting checks, after random takes, refunds, resets, sweeps
// and refusals, that the key counter equals the states stored and never
// exceeds the cap, and that every stored state is one that is not fresh
// or has not been looked at since it became fresh.
func TestKeyAccounting(t *testing.T) {
	ns := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	now := func() time.Time { return time.Unix(0, ns) }
	const capKeys = 50
	s := New(WithClock(now), WithMaxKeys(capKeys))
	limits := []weir.Limit{
		weir.PerSecond(3).WithName("tb"),
		weir.Per(3, time.Second).WithAlgorithm(weir.FixedWindow).WithName("fw"),
		weir.Per(3, time.Second).WithAlgorithm(weir.SlidingWindowCounter).WithName("swc"),
		weir.Per(3, time.Second).WithAlgorithm(weir.SlidingWindowLog).WithName("log"),
		weir.Concurrent(3, time.Second).WithName("cc"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for i := range 10_000 {
		ns += int64(rng.IntN(20_000_000))
		var checks []weir.Check
		for _, j := range rng.Perm(len(limits))[:1+rng.IntN(3)] {
			checks = append(checks, weir.Check{Key: fmt.Sprint(rng.IntN(40)), Limit: limits[j]})
		}
		req := &weir.Request{Checks: checks, Cost: rng.Int64N(3), Lease: fmt.Sprint("l", rng.IntN(3)), At: now()}
		switch rng.IntN(10) {
		case 0:
			if err := s.Refund(ctx, req); err != nil {
				t.Fatal(err)
			}
		case 1:
			_ = s.Reset(ctx, checks)
		case 2:
			for k := range s.shards {
				s.sweepShard(&s.shards[k], ns)
			}
		default:
			if _, err := s.Take(ctx, req); err != nil && err != ErrFull {
				t.Fatal(err)
			}
		}
		if got, want := s.keys.Load(), s.count(); got != want {
			t.Fatalf("op %d: key counter %d, %d states stored", i, got, want)
		}
		if n := s.keys.Load(); n > capKeys {
			t.Fatalf("op %d: %d keys above the cap", i, n)
		}
	}
	st := s.Stats()
	t.Logf("%+v", st)
	if st.Evicted == 0 || st.Refused == 0 {
		t.Fatalf("the trace never evicted or never refused: %+v", st)
	}
}

// TestHashPairs: the pair hash distinguishes pairs that concatenate alike.
func TestHashPairs(t *testing.T) {
	s := New()
	h := func(name, key string) id {
		return s.hash(&weir.Check{Key: key, Limit: weir.PerSecond(1).WithName(name)})
	}
	if h("a", "bc") == h("ab", "c") || h("a", "b") == h("b", "a") || h("", "x") == h("x", "") {
		t.Fatal("pair hash confuses pairs")
	}
	first := h("a", "b")
	if again := h("a", "b"); again != first {
		t.Fatal("pair hash is not deterministic")
	}
}

// get returns h's entry, if stored.
func (t *tbTable) get(h id) (tbEntry, bool) {
	i, ok := t.find(h)
	if !ok {
		return tbEntry{}, false
	}
	s := &t.slots[i]
	return tbEntry{s.a, s.b}, true
}

// TestTable drives tbTable and a Go map with the same random operations
// (sweeps shrink the table), with hashes chosen to share home slots (long
// probe runs that wrap around the end of the table), and compares them
// after every step.
func TestTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tb tbTable
	tb.init()
	ref := map[id]tbEntry{}
	check := func(step int) {
		t.Helper()
		if tb.n != len(ref) {
			t.Fatalf("step %d: n = %d, want %d", step, tb.n, len(ref))
		}
		for h, e := range ref {
			if got, ok := tb.get(h); !ok || got != e {
				t.Fatalf("step %d: get(%#x) = %v, %v; want %v", step, h, got, ok, e)
			}
		}
		used := 0
		for _, s := range tb.slots {
			if s.h.lo != 0 {
				used++
				if _, ok := ref[s.h]; !ok {
					t.Fatalf("step %d: stale slot %#x", step, s.h)
				}
			}
		}
		if used != len(ref) {
			t.Fatalf("step %d: %d slots used, want %d", step, used, len(ref))
		}
	}
	key := func() id {
		// Few distinct low bits, many high bits: clusters at the start
		// and at the end of the table, which wrap around. Identities that
		// differ only in hi share lo, hence a home slot: the table must
		// keep them apart.
		// The home slot comes from lo's low 32 bits: near 0 is the first
		// slot, near 1<<32 the last, at any table size.
		low := uint64(rng.IntN(4))
		if rng.IntN(2) == 0 {
			low = 1<<32 - 1 - low
		}
		return id{lo: uint64(rng.IntN(200))<<40 | low | uint64(rng.IntN(2))<<62 | 1<<33, hi: uint64(rng.IntN(3))}
	}
	for step := range 20_000 {
		h := key()
		switch rng.IntN(10) {
		case 0, 1, 2:
			tb.del(h)
			delete(ref, h)
		case 3:
			now := int64(rng.IntN(100))
			gone, next := tb.sweep(now)
			tb.shrink()
			for k, e := range ref {
				if e.expires() <= now {
					delete(ref, k)
					gone--
				} else if e.expires() < next {
					t.Fatalf("step %d: sweep next %d after a live entry expiring at %d", step, next, e.expires())
				}
			}
			if gone != 0 {
				t.Fatalf("step %d: sweep count off by %d", step, gone)
			}
		case 4:
			now := int64(rng.IntN(100))
			before := tb.n
			gone := tb.lazySweep(now)
			if before-tb.n != gone {
				t.Fatalf("step %d: lazySweep reported %d, removed %d", step, gone, before-tb.n)
			}
			for k, e := range ref {
				if _, ok := tb.get(k); !ok {
					if e.expires() > now {
						t.Fatalf("step %d: lazySweep removed a live entry", step)
					}
					delete(ref, k)
				}
			}
		default:
			e := tbEntry{int64(rng.IntN(100)), int64(rng.IntN(2))}
			tb.put(h, e)
			ref[h] = e
		}
		check(step)
	}
}

// TestMemoryFollowsKeysDown: after a sweep removes most states, the tables
// give their memory back.
func TestMemoryFollowsKeysDown(t *testing.T) {
	ns := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	s := New(WithClock(func() time.Time { return time.Unix(0, ns) }))
	ctx := context.Background()
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	short := weir.PerSecond(10).WithName("short")
	fixed := weir.Per(10, time.Second).WithAlgorithm(weir.FixedWindow).WithName("fixed")
	long := weir.PerDay(10).WithName("long")
	const n = 100_000
	for i := range n {
		k := strconv.Itoa(i)
		for _, l := range []weir.Limit{short, fixed} {
			if _, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: k, Limit: l}}, Cost: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if i%100 == 0 {
			_, _ = s.Take(ctx, &weir.Request{Checks: []weir.Check{{Key: k, Limit: long}}, Cost: 1})
		}
	}
	full := heap() - base
	ns += int64(2 * time.Second)
	for i := range s.shards {
		s.sweepShard(&s.shards[i], ns)
	}
	if got := s.keys.Load(); got != n/100 {
		t.Fatalf("%d keys after the sweep, want %d (the long-lived ones)", got, n/100)
	}
	after := heap() - base
	t.Logf("heap: %d KiB with %d keys, %d KiB after the sweep", full>>10, 2*n+n/100, after>>10)
	if after > full/10 {
		t.Fatalf("the sweep gave back too little memory: %d of %d bytes kept", after, full)
	}
	runtime.KeepAlive(s)
}

// TestTableFill: filled one key at a time, the token-bucket table stays
// between 8/15 (just grown by half) and 4/5 full, so its slots cost 40 to
// 60 bytes per key (32-byte slots) at every count past the smallest size;
// and a sweep that empties most of it shrinks it.
func TestTableFill(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tb tbTable
	tb.init()
	for n := 1; n <= 200_000; n++ {
		tb.put(id{lo: rng.Uint64() | 1, hi: rng.Uint64()}, tbEntry{a: int64(n)})
		size := len(tb.slots)
		if size%2 != 0 || n*5 > size*4 {
			t.Fatalf("%d keys in %d slots: more than 4/5 full, or an odd size", n, size)
		}
		if size > tbMinSize && n*15 < size*8-15 { // 8/15 full, give or take a pair's rounding
			t.Fatalf("%d keys in %d slots: less than 8/15 full", n, size)
		}
	}
	full := len(tb.slots)
	tb.sweep(100_000) // entry n expires at n
	tb.shrink()
	if tb.n != 100_000 || len(tb.slots) != full {
		t.Fatalf("after sweeping half: %d keys in %d slots, want 100000 in %d (no shrink above 1/8 full)", tb.n, len(tb.slots), full)
	}
	tb.sweep(190_000)
	tb.shrink()
	if tb.n != 10_000 || tb.n*5 > len(tb.slots)*2 || tb.n*15 < len(tb.slots)*4-30 {
		t.Fatalf("after sweeping 95%%: %d keys in %d slots, want 2/5 full or just under", tb.n, len(tb.slots))
	}
}
