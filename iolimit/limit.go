package iolimit

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-go/weir"
)

// Bounds of a [Limit].
const (
	// MaxRate is the largest rate a Limit accepts, in bytes per second
	// (1 EiB/s: in practice, no limit).
	MaxRate = 1 << 60
	// MaxBurst is the largest burst a Limit accepts, in bytes (8 GiB).
	MaxBurst = 1 << 33
)

// A Limit is an in-process byte budget: a token bucket that refills at a
// rate in bytes per second and holds at most burst bytes, implemented as a
// GCRA over integer nanoseconds with exact fractions, so that no rounding
// drifts over time. In any interval of length T, at most burst + rate·T
// bytes pass it.
//
// WaitN reserves its bytes at once and sleeps until their time: waiters
// are therefore served first come, first served, and one Limit shared by
// many streams is fair to all of them (each gets its turn in arrival
// order, so none starves). [Limit.SetRate] changes the rate and burst
// while streams run.
//
// Build one with [NewLimit]. The zero Limit is not usable. A Limit is safe
// for concurrent use and holds no goroutines.
type Limit struct {
	mu   sync.Mutex
	base time.Time // origin of the nanosecond clock (monotonic)
	rate int64     // bytes per second
	tau  int64     // the burst is tau + tauR/rate nanoseconds
	tauR int64
	tat  int64  // theoretical arrival time, ns since base ...
	rem  int64  // ... plus rem/rate ns, 0 <= rem < rate
	ep   *epoch // current rate epoch

	// The cost of the last n reserved: streams ask for the same size
	// again and again, and a 128-bit division is slow.
	lastN, lastQ, lastR int64

	// credit is bytes that may pass without reading the clock or taking
	// mu: the bucket's content at the last clock reading, handed out by
	// compare-and-swap. granted is what the last grant put in it. See
	// settle for why this keeps the bound.
	credit  atomic.Int64
	granted int64 // guarded by mu

	burstA atomic.Int64
	rateA  atomic.Int64
	timers sync.Pool // of *time.Timer
}

// An epoch lasts from one rate change to the next. When SetRate ends it,
// its fields say how to move a waiter's arrival time, and done is closed.
type epoch struct {
	done     chan struct{}
	at       int64 // when the change happened
	old, new int64 // rates before and after
	next     *epoch
}

// DefaultBurst is the burst [NewLimit] chooses when given 0: a twentieth
// of a second's worth of bytes (so a 10 s window is within 0.5% of the
// rate even when it starts with a full bucket), but at least 4 KiB or one
// second's worth, whichever is smaller.
func DefaultBurst(bytesPerSec int64) int64 {
	b := max(bytesPerSec/20, min(bytesPerSec, 4096))
	return min(b, MaxBurst)
}

// NewLimit returns a Limit of bytesPerSec bytes per second (1 to
// [MaxRate]) with the given burst in bytes (1 to [MaxBurst]; 0 means
// [DefaultBurst]). The bucket starts full. Bad values give a
// *weir.FieldError naming the argument.
func NewLimit(bytesPerSec, burst int64) (*Limit, error) {
	burst, err := checkRate(bytesPerSec, burst)
	if err != nil {
		return nil, err
	}
	l := &Limit{base: time.Now(), rate: bytesPerSec, ep: &epoch{done: make(chan struct{})}}
	l.tau, l.tauR = cost(burst, bytesPerSec)
	l.tat = math.MinInt64 / 4 // full bucket
	l.burstA.Store(burst)
	l.rateA.Store(bytesPerSec)
	return l, nil
}

func checkRate(rate, burst int64) (int64, error) {
	if rate < 1 || rate > MaxRate {
		return 0, &weir.FieldError{Field: "bytesPerSec", Reason: fmt.Sprintf("must be from 1 to %d (got %d)", int64(MaxRate), rate)}
	}
	if burst == 0 {
		burst = DefaultBurst(rate)
	}
	if burst < 1 || burst > MaxBurst {
		return 0, &weir.FieldError{Field: "burst", Reason: fmt.Sprintf("must be from 1 to %d bytes, or 0 for the default (got %d)", int64(MaxBurst), burst)}
	}
	if nanos(burst, rate) > 1<<60 {
		return 0, &weir.FieldError{Field: "burst", Reason: fmt.Sprintf("%d bytes take more than 36 years at %d bytes/s", burst, rate)}
	}
	return burst, nil
}

// nanos returns floor(n·1e9/rate), saturating at MaxInt64/4.
func nanos(n, rate int64) int64 {
	q, _ := cost(n, rate)
	return q
}

// cost returns n·1e9/rate as a quotient and remainder, the quotient
// saturating at MaxInt64/4.
func cost(n, rate int64) (q, r int64) {
	hi, lo := bits.Mul64(uint64(n), 1e9)
	if hi >= uint64(rate) {
		return math.MaxInt64 / 4, 0
	}
	uq, ur := bits.Div64(hi, lo, uint64(rate))
	if uq > math.MaxInt64/4 {
		return math.MaxInt64 / 4, 0
	}
	return int64(uq), int64(ur)
}

// scale returns ceil(d·old/new) for d >= 0, saturating at MaxInt64/4.
func scale(d, old, new int64) int64 {
	hi, lo := bits.Mul64(uint64(d), uint64(old))
	if hi >= uint64(new) {
		return math.MaxInt64 / 4
	}
	q, r := bits.Div64(hi, lo, uint64(new))
	if r > 0 {
		q++
	}
	return int64(min(q, math.MaxInt64/4))
}

func (l *Limit) now() int64 { return int64(time.Since(l.base)) }

// Burst returns the most bytes one WaitN should ask for.
func (l *Limit) Burst() int64 { return l.burstA.Load() }

// Rate returns the rate in bytes per second.
func (l *Limit) Rate() int64 { return l.rateA.Load() }

// reserve charges n bytes at now and returns the waiter's arrival time
// and the time it may go, both rounded up to the nanosecond. l.mu is held.
func (l *Limit) reserve(now, n int64) (tat, wake int64) {
	if l.tat < now {
		l.tat, l.rem = now, 0
	}
	if n != l.lastN {
		l.lastN = n
		l.lastQ, l.lastR = cost(n, l.rate)
	}
	q, r := l.lastQ, l.lastR
	l.tat += q
	l.rem += r
	if l.rem >= l.rate {
		l.rem -= l.rate
		l.tat++
	}
	tat, wake = l.tat, l.tat-l.tau
	if l.rem > 0 {
		tat++
	}
	if l.rem > l.tauR {
		wake++
	}
	return tat, wake
}

// settle charges the credit used since the last grant, as if all of it
// had passed now, and empties the credit. l.mu is held.
//
// Why credit keeps the bound burst + rate·T. Credit handed out at a clock
// reading N1 is at most the bucket's content at N1, after everything
// charged at N1. Until the next slow path at N2 only credit moves, so
// the bucket (which only fills with time) still holds at least that much
// at N2, and charging the used credit at N2 is an admissible GCRA step.
// The limiter's real history is therefore a GCRA history in which each
// credit byte is moved later, to the next settle. A window [a, b] of the
// real history holds what the GCRA history holds in it, except credit
// used before b but settled after b: at most the grant G made at the last
// reading Nm before b. GCRA guarantees that what passed in [a, Nm] plus
// the content at Nm (at least G) is at most burst + rate·(Nm-a). Charging
// the credit at N1 instead would be wrong: after an idle second the next
// reading would find a full bucket and forget the credit just used.
func (l *Limit) settle(now int64) {
	if l.granted == 0 {
		return
	}
	used := l.granted - l.credit.Swap(0)
	l.granted = 0
	if used <= 0 {
		return
	}
	if l.tat < now {
		l.tat, l.rem = now, 0
	}
	q, r := cost(used, l.rate)
	l.tat += q
	l.rem += r
	if l.rem >= l.rate {
		l.rem -= l.rate
		l.tat++
	}
}

// grant puts the bucket's whole content at now, rounded down to the byte,
// into the credit. The credit is empty (settle ran). l.mu is held.
func (l *Limit) grant(now int64) {
	d := now + l.tau - l.tat // content = (d·rate + tauR - rem) / 1e9 bytes
	if d < 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(d), uint64(l.rate))
	var c uint64
	lo, c = bits.Add64(lo, uint64(l.tauR), 0)
	hi += c
	lo, c = bits.Sub64(lo, uint64(l.rem), 0)
	hi, c = bits.Sub64(hi, 0, c)
	if c != 0 || hi >= 1e9 {
		return // negative, or absurdly large (never: d·rate <= burst·1e9)
	}
	q, _ := bits.Div64(hi, lo, 1e9)
	g := min(int64(q), l.burstA.Load())
	if g <= 0 {
		return
	}
	l.granted = g
	l.credit.Store(g)
}

// refund gives back n bytes reserved earlier. l.mu is held.
func (l *Limit) refund(n int64) {
	q, r := cost(n, l.rate)
	l.tat -= q
	l.rem -= r
	if l.rem < 0 {
		l.rem += l.rate
		l.tat--
	}
}

// WaitN blocks until n bytes may pass, and charges them. It returns
// ctx's error, charging nothing, as soon as ctx is done. n should not
// exceed Burst; a larger n waits until a bucket of n bytes would have
// been full (it is not an error, because a concurrent SetRate may lower
// the burst under a running reader).
func (l *Limit) WaitN(ctx context.Context, n int64) error {
	if n < 0 {
		return &weir.FieldError{Field: "n", Reason: fmt.Sprintf("must not be negative (got %d)", n)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if l.take(n) {
		return nil
	}
	now, tat, wake, ep := l.charge(n)
	if wake <= now {
		return nil
	}
	t := l.getTimer(time.Duration(wake - now))
	defer l.putTimer(t)
	for {
		select {
		case <-t.C:
			select {
			case <-ep.done:
			default:
				return nil
			}
		case <-ep.done:
		case <-ctx.Done():
			l.mu.Lock()
			l.refund(n)
			l.mu.Unlock()
			return ctx.Err()
		}
		// The rate changed: move the arrival time as SetRate moved the
		// bucket, and sleep until the new wake-up time.
		l.mu.Lock()
		for ; ep.next != nil; ep = ep.next {
			if tat > ep.at {
				tat = ep.at + scale(tat-ep.at, ep.old, ep.new)
			}
		}
		now, wake = l.now(), tat-l.tau
		l.mu.Unlock()
		if wake <= now {
			return nil
		}
		t.Reset(time.Duration(wake - now))
	}
}

// Reserve charges n bytes now, without waiting, and returns how long the
// caller must wait before they pass (0: at once). It is for callers that
// sleep on their own (an event loop, a timer of their own): WaitN is
// Reserve followed by a sleep that ends early when the context is done
// and moves when SetRate changes the rate. A reservation cannot be
// cancelled, and a later SetRate does not move it. n may exceed Burst:
// the wait is then as long as a bucket of n bytes would take to fill. A
// negative n is an error naming it.
func (l *Limit) Reserve(n int64) (time.Duration, error) {
	if n < 0 {
		return 0, &weir.FieldError{Field: "n", Reason: fmt.Sprintf("must not be negative (got %d)", n)}
	}
	if n == 0 || l.take(n) {
		return 0, nil
	}
	now, _, wake, _ := l.charge(n)
	return time.Duration(max(wake-now, 0)), nil
}

// charge is the slow path of WaitN and Reserve: under the lock, it reads
// the clock, settles the credit used, reserves n bytes, and hands out the
// bucket's content as new credit when they may pass at once. It returns
// the clock reading, the waiter's arrival and wake-up times, and the
// current rate epoch.
func (l *Limit) charge(n int64) (now, tat, wake int64, ep *epoch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now = l.now()
	l.settle(now)
	tat, wake = l.reserve(now, n)
	if wake <= now {
		l.grant(now)
	}
	return now, tat, wake, l.ep
}

// take takes n bytes from the credit, if it holds that many.
func (l *Limit) take(n int64) bool {
	for c := l.credit.Load(); c >= n; c = l.credit.Load() {
		if l.credit.CompareAndSwap(c, c-n) {
			return true
		}
	}
	return false
}

// waitN is lim.WaitN(ctx, n) for 1 <= n, with a *Limit's credit taken
// without the two calls through the interface: the readers and writers
// call it once per operation.
func waitN(ctx context.Context, lim Budget, n int64) error {
	if l, ok := lim.(*Limit); ok && ctx.Err() == nil && l.take(n) {
		return nil
	}
	return lim.WaitN(ctx, n)
}

// getTimer returns a timer firing after d, recycled when possible: a
// stream that waits thousands of times a second would otherwise allocate
// one timer each time. The pool belongs to the Limit (not the package) so
// that timers never cross testing/synctest bubbles.
func (l *Limit) getTimer(d time.Duration) *time.Timer {
	if t, ok := l.timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

// putTimer stops t and keeps it for reuse. Since Go 1.23 a stopped timer's
// channel holds no stale value, so the next Reset starts clean.
func (l *Limit) putTimer(t *time.Timer) {
	t.Stop()
	l.timers.Put(t)
}

// SetRate changes the rate to bytesPerSec and the burst to burst (0 means
// [DefaultBurst]) while streams run. The bytes already in the bucket, and
// the debt of waiters already queued, are kept and converted to the new
// rate: a waiter due in 1 s at 1 MiB/s is due in 0.5 s at 2 MiB/s. Bad
// values give a *weir.FieldError and change nothing.
func (l *Limit) SetRate(bytesPerSec, burst int64) error {
	burst, err := checkRate(bytesPerSec, burst)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.settle(now)
	// Keep the bucket's content: tat-now (which may be negative, down to
	// -tau for a full bucket) scales by old/new.
	if l.tat < now-l.tau {
		l.tat, l.rem = now-l.tau, 0
	}
	x := big.NewInt(l.tat - now)
	x.Mul(x, big.NewInt(l.rate))
	x.Add(x, big.NewInt(l.rem))
	q, r := new(big.Int).DivMod(x, big.NewInt(bytesPerSec), new(big.Int))
	if q.IsInt64() && q.Int64() < math.MaxInt64/4 {
		l.tat, l.rem = now+q.Int64(), r.Int64()
	} else {
		l.tat, l.rem = math.MaxInt64/4, 0
	}
	old := l.ep
	old.at, old.old, old.new = now, l.rate, bytesPerSec
	l.ep = &epoch{done: make(chan struct{})}
	old.next = l.ep
	l.rate = bytesPerSec
	l.tau, l.tauR = cost(burst, bytesPerSec)
	l.lastN = 0 // forget the cached cost
	l.burstA.Store(burst)
	l.rateA.Store(bytesPerSec)
	close(old.done)
	return nil
}
