package localquota

import (
	"math/bits"
	"time"

	"github.com/weir-go/weir"
)

// block is a run of units taken from the shared store in one Take. Every
// unit of it was charged to the shared state at charged (the store's clock)
// before any of them is spent here.
type block struct {
	units    int64         // not yet spent or returned
	key      string        // the key they were charged to
	limit    weir.Limit    // the limit the units were charged to
	charged  time.Time     // the store's Decision.Time of the charge
	sent     int64         // local clock (ns) just before the Take was sent
	received int64         // local clock (ns) when its answer came back
	expires  int64         // local clock (ns): no unit is spent at or after it
	reset    time.Duration // the store's ResetAfter for the charge
}

// expiry is the local instant at which a block charged at the store
// instant charged, by a request sent at the local instant sent, stops being
// spendable: sent+hold, and for the fixed window and the sliding counter no
// later than the end of the epoch-aligned window it was charged in (counted
// from sent, which came before the charge, so never later than the real
// end). So a unit is spent at most hold after it was charged, and a window
// unit in the window that paid for it.
func expiry(l weir.Limit, charged time.Time, sent int64, hold time.Duration) int64 {
	end := sent + int64(hold)
	if l.Algorithm == weir.FixedWindow || l.Algorithm == weir.SlidingWindowCounter {
		p := int64(l.Period)
		c := charged.UnixNano()
		left := p - ((c%p)+p)%p // until the window of c ends
		end = min(end, sent+left)
	}
	return end
}

// giveBack says how to return units unspent units of b at local instant
// now so that the shared state is never left more permissive than if they
// had never been charged. It returns the Refund's cost and At; cost 0
// means nothing can be returned (the units are wasted).
//
// The windows and the log refund by the instant of the charge, which
// removes exactly those units (or nothing once their window is gone). The
// token bucket refunds nothing for an instant in the past (see
// algo.gcraRefund), and units taken from it refill anyway: taken n units at
// c, at store instant t at most n - (t-c)·rate of them are still missing
// from the bucket. So the refund is dated at the latest instant F at which
// the store may apply it, F = c + (now - sent) + slack, and carries
// n - ceil((F-c)·rate) units: applied by F it is safe, and applied after F
// (a stalled store) it gives nothing back.
func giveBack(b *block, units, now int64, slack time.Duration) (cost int64, at time.Time) {
	if units <= 0 {
		return 0, time.Time{}
	}
	l := b.limit
	switch l.Algorithm {
	case weir.FixedWindow, weir.SlidingWindowCounter, weir.SlidingWindowLog:
		return units, b.charged
	case weir.TokenBucket:
		d := max(now-b.sent, 0) + int64(slack)
		refilled, ok := ceilMulDiv(d, l.Quota, int64(l.Period))
		if !ok || refilled >= units {
			return 0, time.Time{}
		}
		return units - refilled, b.charged.Add(time.Duration(d))
	}
	return 0, time.Time{}
}

// ceilMulDiv returns ceil(a*b/c) for a, b >= 0 and c > 0, and false when
// the result does not fit in an int64.
func ceilMulDiv(a, b, c int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, uint64(c))
	if r > 0 {
		q++
	}
	if q > 1<<62 {
		return 0, false
	}
	return int64(q), true
}

// meter counts the units an entry spends per half hold: in the current
// half-hold window (from start) and in the one before it. Windows are the
// entry's own, so a count never reaches back further than a hold.
type meter struct {
	start     int64 // local ns the current window began
	cur, prev int64 // units spent in the current and the previous window
}

// roll moves m to the window of now.
func (m *meter) roll(now, half int64) {
	d := now - m.start
	if d < half {
		return
	}
	if d < 2*half {
		m.prev = m.cur
	} else {
		m.prev = 0 // a whole window without a unit spent
	}
	m.cur = 0
	m.start = now - d%half
}

// demand is the units the entry is expected to spend in the next half
// hold: the larger of the last complete window and the current one.
func (m *meter) demand(now, half int64) int64 {
	m.roll(now, half)
	return max(m.cur, m.prev)
}

// add counts n units spent at now.
func (m *meter) add(n, now, half int64) {
	m.roll(now, half)
	m.cur += n
}

// syncSize is the size of a block that a caller waits for: the entry's
// last size doubled when the blocks before were spent before they lapsed
// (slow start: the demand outgrew them), and ahead(demand) once units went
// back unspent; always at least ahead(demand) and what the request misses,
// at most maxBlock (unless the request needs more) and never above the
// capacity, which no single Take may exceed. A key's first block (last 0)
// is first (see firstBlock).
func syncSize(last int64, unspent bool, first, demand, missing, maxBlock, capacity int64) int64 {
	var want int64
	switch {
	case last == 0:
		want = first
	case unspent:
		want = ahead(demand)
	default:
		want = 2 * last
	}
	return clampSize(max(want, ahead(demand)), missing, maxBlock, capacity)
}

// firstBlock is the size of a key's first block under limit l with hold
// L: ⌈rate·L/64⌉ and at most a sixteenth of the capacity. A fast limit
// (whose units refill within the hold anyway) starts with a block that
// spares its first callers the round trips of slow start; a slow one
// starts with what the request needs, so that a key seen once costs one
// Take, not a Take and a return.
func firstBlock(l weir.Limit, hold time.Duration) int64 {
	n, ok := ceilMulDiv(int64(hold), l.Quota, 64*int64(l.Period))
	if !ok {
		n = 1 << 62
	}
	return min(n, (l.Capacity()+15)/16)
}

// clampSize bounds a wanted block size by maxBlock and capacity, keeping
// it at least need (itself at most the capacity).
func clampSize(want, need, maxBlock, capacity int64) int64 {
	return max(min(want, maxBlock, capacity), min(need, capacity))
}

// ahead scales a demand per half hold to the units a block is expected to
// be spent in: a block is spendable for a hold, and the janitor gives it
// back when it has less than a quarter hold left, so three quarters of a
// hold, rounded up.
func ahead(demand int64) int64 { return demand + (demand+1)/2 }
