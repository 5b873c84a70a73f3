package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistQuantiles: a reported percentile is an observed value, never
// below the exact percentile and less than 1/64 above it.
func TestHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 20 {
		var h hist
		n := 1 + rng.IntN(5000)
		vals := make([]int64, n)
		for i := range vals {
			switch trial % 3 {
			case 0:
				vals[i] = rng.Int64N(100) // small: exact buckets
			case 1:
				vals[i] = int64(rng.ExpFloat64() * 1e8)
			default:
				vals[i] = rng.Int64N(math.MaxInt64)
			}
			h.add(vals[i])
		}
		slices.Sort(vals)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 1} {
			exact := vals[int(math.Ceil(q*float64(n)))-1]
			got := h.quantile(q)
			if got < exact || float64(got-exact) > float64(exact)/64 {
				t.Errorf("trial %d: q%v = %d, exact %d", trial, q, got, exact)
			}
			if _, ok := slices.BinarySearch(vals, got); !ok {
				t.Errorf("trial %d: q%v = %d was never observed", trial, q, got)
			}
		}
		d := h.dist()
		var sum float64
		for _, v := range vals {
			sum += float64(v)
		}
		if d.Count != int64(n) || d.Min != time.Duration(vals[0]) || d.Max != time.Duration(vals[n-1]) ||
			math.Abs(float64(d.Mean)-sum/float64(n)) > 1+sum/float64(n)*1e-9 {
			t.Errorf("trial %d: count %d min %d max %d mean %d; want %d %d %d %.0f", trial, d.Count, d.Min, d.Max, d.Mean, n, vals[0], vals[n-1], sum/float64(n))
		}
	}
}

func TestHistBuckets(t *testing.T) {
	var h hist
	for _, v := range []time.Duration{0, time.Millisecond - 1, time.Millisecond, 50 * time.Millisecond, 2 * time.Hour} {
		h.add(int64(v))
	}
	want := []int64{2, 1, 1, 0, 0, 0, 0, 0, 1}
	if got := h.dist().Buckets; !slices.Equal(got, want) {
		t.Errorf("Buckets = %v, want %v", got, want)
	}
	if new(hist).dist().Count != 0 {
		t.Error("empty")
	}
}

func TestBucketMonotone(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<20 + 1, 1 << 40, math.MaxInt64} {
		b := bucket(v)
		if b < prev || b >= nBuckets {
			t.Errorf("bucket(%d) = %d after %d", v, b, prev)
		}
		prev = b
	}
}
