package dashboard

import (
	"math"
	"testing"

	"github.com/weir-go/weir/server/metrics"
)

func TestQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004} // seconds
	for _, tc := range []struct {
		name string
		cum  []uint64
		q    float64
		want float64 // ms
		ok   bool
	}{
		{"empty", []uint64{0, 0, 0, 0}, 0.5, 0, false},
		{"wrong length", []uint64{1, 1}, 0.5, 0, false},
		{"median in the first bucket, from 0", []uint64{10, 10, 10, 10}, 0.5, 0.5, true},
		{"median in the second bucket", []uint64{2, 6, 10, 10}, 0.5, 1.75, true},
		{"p99 in the third", []uint64{0, 0, 100, 100}, 0.99, 2 + 2*0.99, true},
		{"in +Inf: the largest bound", []uint64{0, 0, 0, 10}, 0.5, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quantile(bounds, tc.cum, tc.q)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("quantile(%v, %v) = %v, %v; want %v, %v", tc.cum, tc.q, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestHealthTracker feeds the tracker on fixed instants: quantiles over the
// window only (older latency falls out), failure totals, and the instant a
// failure path was last taken.
func TestHealthTracker(t *testing.T) {
	bounds := []float64{0.001, 0.01}
	h := newHealthTracker()
	open := Series{"fail", "api", "open"}
	// 100 slow decisions, then a minute and more of fast ones only.
	h.record(0, bounds, []uint64{0, 100, 100}, map[Series]float64{open: 3})
	for i := int64(1); i <= healthWindow; i++ {
		h.record(i*1000, bounds, []uint64{uint64(10 * i), 100 + uint64(10*i), 100 + uint64(10*i)}, map[Series]float64{open: 3})
	}
	got := h.health()
	if got.P50MS == nil || got.P99MS == nil || *got.P99MS > 1 || got.Count != 590 || got.WindowMS != 59_000 {
		t.Errorf("health %+v (p50 %v p99 %v): the slow decisions are out of the window", got, got.P50MS, got.P99MS)
	}
	if got.Failures["api"]["open"] != 3 || got.LastFailure["api"]["open"] != 0 {
		t.Errorf("failures %v, last %v", got.Failures, got.LastFailure)
	}
	h.record(70_000, bounds, []uint64{600, 700, 700}, map[Series]float64{open: 5})
	if got := h.health(); got.LastFailure["api"]["open"] != 70_000 || got.Failures["api"]["open"] != 5 {
		t.Errorf("after more fail-open: %v, last %v", got.Failures, got.LastFailure)
	}
	if got := newHealthTracker().health(); got.P50MS != nil || got.Count != 0 {
		t.Errorf("empty tracker: %+v", got)
	}
}

// TestStoreSample reads the server's own metrics after observations.
func TestStoreSample(t *testing.T) {
	m := metrics.New()
	m.StoreDuration.WithLabelValues("take", "ok").Observe(0.0002)
	m.StoreDuration.WithLabelValues("take", "error").Observe(0.5)
	m.StoreDuration.WithLabelValues("refund", "ok").Observe(0.9) // not a decision
	m.FailClosed.WithLabelValues("api").Add(2)
	m.Fallback.WithLabelValues("web").Inc()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	bounds, cum, fails := storeSample(mfs)
	if len(bounds) == 0 || len(cum) != len(bounds)+1 || cum[len(cum)-1] != 2 {
		t.Fatalf("bounds %v cum %v", bounds, cum)
	}
	if p, ok := quantile(bounds, cum, 0.5); !ok || p > 0.25 || p < 0.1 {
		t.Errorf("p50 %v ms, want within the 0.1–0.25 ms bucket", p)
	}
	if fails[Series{"fail", "api", "closed"}] != 2 || fails[Series{"fail", "web", "fallback"}] != 1 || len(fails) != 2 {
		t.Errorf("fails %v", fails)
	}
}
