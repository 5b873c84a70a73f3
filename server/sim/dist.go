package sim

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's resolution: 2^subBits buckets per power of
// two, so two values in one bucket differ by less than 1/2^subBits of the
// larger (1/64, about 1.6%).
const subBits = 6

const nBuckets = (64 - subBits + 1) << subBits

// hist is a log-linear histogram of durations (in the manner of HDR
// histograms) that also keeps the largest value seen in each bucket, so a
// percentile it reports is a value that was observed.
type hist struct {
	count  [nBuckets]int64
	top    [nBuckets]int64              // largest value seen in each bucket
	decade [len(BucketBounds) + 1]int64 // counts per range of BucketBounds
	n      int64
	sumHi  uint64 // the sum of the values, in 128 bits
	sumLo  uint64
	min    int64
	max    int64
}

func bucket(v int64) int {
	u := uint64(v)
	e := bits.Len64(u)
	if e <= subBits {
		return int(u)
	}
	shift := e - subBits - 1
	return (shift+1)<<subBits + int(u>>shift) - 1<<subBits
}

func (h *hist) add(v int64) {
	if v < 0 {
		v = 0
	}
	b := bucket(v)
	h.count[b]++
	h.top[b] = max(h.top[b], v)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	i := 0
	for i < len(BucketBounds) && time.Duration(v) >= BucketBounds[i] {
		i++
	}
	h.decade[i]++
	h.n++
	var carry uint64
	h.sumLo, carry = bits.Add64(h.sumLo, uint64(v), 0)
	h.sumHi += carry
}

// quantile returns the largest value seen in the bucket that holds the
// q-quantile (the smallest value with at least q·n values at or below it):
// never below the exact quantile, and less than 1/64 above it.
func (h *hist) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.999999999)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for b, c := range h.count {
		seen += c
		if seen >= rank {
			return h.top[b]
		}
	}
	return h.max
}

// Dist summarises a distribution of durations.
type Dist struct {
	Count int64         `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	// Buckets counts the values per range: Buckets[i] counts those in
	// [BucketBounds[i-1], BucketBounds[i]) (the first from 0, the last
	// without an upper end).
	Buckets []int64 `json:"buckets"`
}

// BucketBounds are the upper ends of Dist.Buckets but the last.
var BucketBounds = [...]time.Duration{
	time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond,
	time.Second, 10 * time.Second, time.Minute, 10 * time.Minute, time.Hour,
}

func (h *hist) dist() Dist {
	d := Dist{Count: h.n, Buckets: make([]int64, len(BucketBounds)+1)}
	if h.n == 0 {
		return d
	}
	copy(d.Buckets, h.decade[:])
	d.Min, d.Max = time.Duration(h.min), time.Duration(h.max)
	mean, _ := bits.Div64(h.sumHi, h.sumLo, uint64(h.n)) // the mean is at most max: no overflow
	d.Mean = time.Duration(mean)
	d.P50 = time.Duration(h.quantile(0.50))
	d.P90 = time.Duration(h.quantile(0.90))
	d.P99 = time.Duration(h.quantile(0.99))
	return d
}
