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

// demand is the units a key is expected to spend in half a hold: spent
// units over elapsed local time (ns), scaled.
func demand(spent, elapsed int64, hold time.Duration) int64 {
	if elapsed <= 0 || spent <= 0 {
		return 0
	}
	d, ok := ceilMulDiv(spent, int64(hold)/2, elapsed)
	if !ok {
		return 1 << 62
	}
	return d
}

// nextSize is the size of the next block an entry asks for: the demand
// seen since the previous block, at least need and at most maxBlock (and
// never above the limit's capacity, which no single Take may exceed), so
// that a block is normally spent well before it lapses.
func nextSize(spent, elapsed int64, hold time.Duration, need, maxBlock, capacity int64) int64 {
	want := max(need, demand(spent, elapsed, hold))
	return max(min(want, maxBlock, capacity), min(need, capacity))
}
