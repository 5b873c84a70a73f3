package localquota

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// TestGiveBackSafe: returning the unspent units of a block never leaves
// the shared state more permissive than if they had never been taken.
// Two stores see the same trace on one fake clock: x charges a whole block
// and later gets giveBack's refund (applied up to 1.5× the slack after it
// was computed, so sometimes too late), y charges only the spent part.
// Other holders' charges admitted by x are charged to y too; afterwards x
// never has more units available than y.
func TestGiveBackSafe(t *testing.T) {
	limits := []weir.Limit{
		weir.PerSecond(200).WithBurst(10),
		weir.Per(7, time.Second).WithBurst(5),
		weir.PerSecond(50).WithAlgorithm(weir.FixedWindow),
		weir.PerSecond(50).WithAlgorithm(weir.SlidingWindowCounter),
		weir.PerSecond(50).WithAlgorithm(weir.SlidingWindowLog),
	}
	const slack = 25 * time.Millisecond
	ctx := context.Background()
	returned := 0
	for _, l := range limits {
		for seed := range uint64(300) {
			rng := rand.New(rand.NewPCG(seed, uint64(l.Algorithm)))
			now := time.Unix(1_700_000_000, 0).Add(time.Duration(rng.IntN(1e9)))
			clock := func() time.Time { return now }
			x, y := memstore.New(memstore.WithClock(clock)), memstore.New(memstore.WithClock(clock))
			c := weir.Check{Key: "k", Limit: l}
			take := func(s weir.Store, n int64) weir.Decision {
				d, err := s.Take(ctx, &weir.Request{Checks: []weir.Check{c}, Cost: n})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			other := func() {
				n := 1 + rng.Int64N(3)
				if take(x, n).Allowed && !take(y, n).Allowed {
					t.Fatalf("%v seed %d: y denied what x admitted", l, seed)
				}
			}
			// Some traffic first, then the block.
			for range rng.IntN(4) {
				now = now.Add(time.Duration(rng.IntN(int(l.Period / 4))))
				other()
			}
			size := 1 + rng.Int64N(l.Capacity())
			sent := now.UnixNano() - rng.Int64N(int64(time.Millisecond))
			d := take(x, size)
			if !d.Allowed {
				continue
			}
			spent := rng.Int64N(size)
			if spent > 0 && !take(y, spent).Allowed {
				t.Fatalf("%v seed %d: y denied the spent part", l, seed)
			}
			b := &block{units: size - spent, key: c.Key, limit: l, charged: d.Time, sent: sent}
			for range rng.IntN(5) {
				now = now.Add(time.Duration(rng.IntN(int(20 * time.Millisecond))))
				other()
			}
			now = now.Add(time.Duration(rng.IntN(int(100 * time.Millisecond))))
			cost, at := giveBack(b, b.units, now.UnixNano(), slack)
			now = now.Add(time.Duration(rng.Int64N(int64(slack) * 3 / 2)))
			if cost > 0 {
				returned++
				if err := x.Refund(ctx, &weir.Request{Checks: []weir.Check{c}, Cost: cost, At: at}); err != nil {
					t.Fatal(err)
				}
			}
			for range 6 {
				px, py := take(x, 0), take(y, 0)
				if px.Remaining > py.Remaining {
					t.Fatalf("%v seed %d: after returning %d of %d (spent %d) x has %d available, never taken %d",
						l, seed, cost, size, spent, px.Remaining, py.Remaining)
				}
				now = now.Add(time.Duration(rng.IntN(int(l.Period / 8))))
			}
			x.Close()
			y.Close()
		}
	}
	if returned < 100 {
		t.Fatalf("only %d refunds: the trace does not exercise giveBack", returned)
	}
}

func TestSyncSize(t *testing.T) {
	tests := []struct {
		name                                               string
		last                                               int64
		unspent                                            bool
		first, demand, missing, maxBlock, capacity, expect int64
	}{
		{"first block: first", 0, false, 20, 0, 3, 1000, 320, 20},
		{"first block of a slow limit: what is missing", 0, false, 1, 0, 3, 1000, 320, 3},
		{"first block after demand seen: 3/2 of it", 0, false, 1, 4, 1, 1000, 320, 6},
		{"first block capped by max block", 0, false, 1 << 40, 0, 1, 1000, 1_000_000, 1000},
		{"slow start: doubles", 40, false, 1, 10, 1, 1000, 100000, 80},
		{"slow start: at least 3/2 of the demand", 40, false, 1, 500, 1, 1000, 100000, 750},
		{"went back unspent: 3/2 of the demand", 40, true, 1, 10, 1, 1000, 100000, 15},
		{"went back unspent, no demand: what is missing", 40, true, 1, 0, 2, 1000, 100000, 2},
		{"capped by max block", 800, false, 1, 0, 1, 1000, 100000, 1000},
		{"capped by capacity", 800, false, 1, 0, 1, 1000, 20, 20},
		{"need beyond max block", 4, true, 1, 0, 50, 10, 100, 50},
		{"need beyond capacity is capacity", 4, true, 1, 0, 500, 1000, 100, 100},
	}
	for _, tt := range tests {
		if got := syncSize(tt.last, tt.unspent, tt.first, tt.demand, tt.missing, tt.maxBlock, tt.capacity); got != tt.expect {
			t.Errorf("%s: syncSize = %d, want %d", tt.name, got, tt.expect)
		}
	}
}

func TestFirstBlock(t *testing.T) {
	for _, tt := range []struct {
		limit  weir.Limit
		hold   time.Duration
		expect int64
	}{
		{weir.PerSecond(1_000_000), 100 * time.Millisecond, 1563},   // ⌈100000/64⌉
		{weir.PerSecond(1_000_000).WithBurst(320), time.Second, 20}, // a sixteenth of the burst
		{weir.PerSecond(20), 100 * time.Millisecond, 1},             // ⌈2/64⌉
		{weir.Per(1000, time.Hour), time.Second, 1},                 // slow: what is needed
		{weir.Per(1<<62, time.Nanosecond), time.Hour, 1 << 58},      // rate·L overflows: the capacity's share
	} {
		if got := firstBlock(tt.limit, tt.hold); got != tt.expect {
			t.Errorf("firstBlock(%v, %v) = %d, want %d", tt.limit, tt.hold, got, tt.expect)
		}
	}
}

func TestMeter(t *testing.T) {
	const half = 50
	var m meter
	steps := []struct {
		add, at, demand int64
	}{
		{1, 0, 1},    // first window
		{1, 10, 2},   // same window
		{3, 60, 3},   // next window: max(prev 2, cur 3)
		{0, 100, 3},  // cur 0, prev 3
		{0, 150, 0},  // the window after: nothing spent in [100, 150)
		{5, 1000, 5}, // long idle: prev forgotten
		{0, 1049, 5}, // same window
		{0, 1050, 5}, // prev
		{0, 1100, 0}, // gone
	}
	for _, st := range steps {
		if st.add > 0 {
			m.add(st.add, st.at, half)
		}
		if got := m.demand(st.at, half); got != st.demand {
			t.Errorf("at %d: demand %d, want %d", st.at, got, st.demand)
		}
	}
}
