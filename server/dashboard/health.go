package dashboard

import (
	"maps"

	dto "github.com/prometheus/client_model/go"
)

// healthWindow is the number of samples (one a Step) over which the store
// latency quantiles are computed: the last minute.
const healthWindow = 60

// Health is the store's health as the page shows it: the latency of store
// decisions (op "take", any result) over the last minute, and the
// failure-policy paths taken by policy, with when each was last taken.
type Health struct {
	// P50MS and P99MS are the median and 99th percentile of store decision
	// latency over WindowMS, in milliseconds, interpolated inside the
	// histogram's buckets the way Prometheus's histogram_quantile does;
	// nil when no decision reached the store in the window.
	P50MS    *float64 `json:"p50_ms"`
	P99MS    *float64 `json:"p99_ms"`
	WindowMS int64    `json:"window_ms"`
	Count    uint64   `json:"count"`
	// Failures are the totals since start of decisions made by a failure
	// policy, by policy and path ("open": admitted, "closed": denied,
	// "fallback": decided by the local fallback limiter).
	Failures map[string]map[string]float64 `json:"failures"`
	// LastFailure is, by policy and path, the Unix millisecond of the last
	// sample in which that count grew.
	LastFailure map[string]map[string]int64 `json:"last_failure_ms"`
}

// latencySample is the cumulative store-latency histogram at one instant.
type latencySample struct {
	t   int64
	cum []uint64 // cumulative counts for bounds, then the total (+Inf)
}

// healthTracker keeps the samples Health is computed from, in bounded
// memory: healthWindow histograms and one entry per policy and path. It
// reads no clock; it is not safe for concurrent use.
type healthTracker struct {
	bounds   []float64 // bucket upper bounds, seconds
	lat      []latencySample
	next, n  int
	fails    map[Series]float64
	lastFail map[Series]int64
}

func newHealthTracker() *healthTracker {
	return &healthTracker{lat: make([]latencySample, healthWindow), fails: map[Series]float64{}, lastFail: map[Series]int64{}}
}

// record adds the histogram (bounds and cumulative counts, the last one
// the total) and the failure totals read at now.
func (h *healthTracker) record(now int64, bounds []float64, cum []uint64, fails map[Series]float64) {
	if len(bounds) > 0 {
		if !slicesEqual(h.bounds, bounds) { // new buckets: the old samples do not compare
			h.bounds, h.n, h.next = bounds, 0, 0
		}
		h.lat[h.next] = latencySample{now, cum}
		h.next = (h.next + 1) % len(h.lat)
		h.n = min(h.n+1, len(h.lat))
	}
	for s, v := range fails {
		if v > h.fails[s] {
			h.lastFail[s] = now
		}
	}
	h.fails = maps.Clone(fails)
}

// health returns the latency quantiles between the oldest and newest
// samples held, and the failure paths.
func (h *healthTracker) health() Health {
	out := Health{Failures: map[string]map[string]float64{}, LastFailure: map[string]map[string]int64{}}
	for s, v := range h.fails {
		if out.Failures[s.Name] == nil {
			out.Failures[s.Name] = map[string]float64{}
		}
		out.Failures[s.Name][s.Outcome] = v
	}
	for s, t := range h.lastFail {
		if out.LastFailure[s.Name] == nil {
			out.LastFailure[s.Name] = map[string]int64{}
		}
		out.LastFailure[s.Name][s.Outcome] = t
	}
	if h.n == 0 {
		return out
	}
	newest := h.lat[(h.next-1+len(h.lat))%len(h.lat)]
	delta := newest.cum
	if h.n > 1 {
		oldest := h.lat[(h.next-h.n+len(h.lat))%len(h.lat)]
		out.WindowMS = newest.t - oldest.t
		delta = make([]uint64, len(newest.cum))
		for i := range delta {
			delta[i] = newest.cum[i] - min(oldest.cum[i], newest.cum[i])
		}
	}
	out.Count = delta[len(delta)-1]
	if p, ok := quantile(h.bounds, delta, 0.5); ok {
		out.P50MS = &p
	}
	if p, ok := quantile(h.bounds, delta, 0.99); ok {
		out.P99MS = &p
	}
	return out
}

// quantile returns the q-quantile, in milliseconds, of a histogram with
// upper bounds (seconds) and cumulative counts (one per bound, then the
// total): linear inside the bucket the rank falls in, starting from 0 for
// the first; the largest bound when it falls in the +Inf bucket. It
// reports false for an empty histogram.
func quantile(bounds []float64, cum []uint64, q float64) (float64, bool) {
	if len(cum) != len(bounds)+1 || cum[len(cum)-1] == 0 {
		return 0, false
	}
	rank := q * float64(cum[len(cum)-1])
	var lower float64
	var below uint64
	for i, ub := range bounds {
		if float64(cum[i]) >= rank {
			in := cum[i] - below
			if in == 0 {
				return ub * 1000, true
			}
			return (lower + (ub-lower)*(rank-float64(below))/float64(in)) * 1000, true
		}
		lower, below = ub, cum[i]
	}
	return bounds[len(bounds)-1] * 1000, true
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// storeSample reads, from gathered metrics, the store-latency histogram of
// decisions (op "take", results summed) and the failure-policy totals.
func storeSample(mfs []*dto.MetricFamily) (bounds []float64, cum []uint64, fails map[Series]float64) {
	fails = map[Series]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "weir_store_duration_seconds":
			for _, m := range mf.GetMetric() {
				if label(m, "op") != "take" {
					continue
				}
				hist := m.GetHistogram()
				if bounds == nil {
					for _, b := range hist.GetBucket() {
						bounds = append(bounds, b.GetUpperBound())
					}
					cum = make([]uint64, len(bounds)+1)
				}
				for i, b := range hist.GetBucket() {
					if i < len(bounds) {
						cum[i] += b.GetCumulativeCount()
					}
				}
				cum[len(bounds)] += hist.GetSampleCount()
			}
		case "weir_fail_open_total", "weir_fail_closed_total", "weir_fallback_decisions_total":
			path := map[string]string{"weir_fail_open_total": "open", "weir_fail_closed_total": "closed", "weir_fallback_decisions_total": "fallback"}[mf.GetName()]
			for _, m := range mf.GetMetric() {
				fails[Series{"fail", label(m, "policy"), path}] = m.GetCounter().GetValue()
			}
		}
	}
	return bounds, cum, fails
}
