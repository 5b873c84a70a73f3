package dashboard

import "maps"

// Series names one counter the history follows: the kind of counter
// ("decisions" by policy, "envoy" by domain), the policy or domain, and
// the outcome. Every part comes from configuration or a fixed list, never
// from a caller's key, so the number of series is bounded by the config.
type Series struct {
	Kind, Name, Outcome string
}

// History is a fixed ring of counter samples, at most one per step, from
// which it derives rates per second over the last len(ring)*step. Its
// memory is bounded by the number of slots times the number of series.
// It reads no clock: callers pass now (Unix milliseconds) to Record, so
// tests run it on fixed instants. It is not safe for concurrent use.
type History struct {
	step  int64 // milliseconds per slot
	slots []historySample
	last  int // index of the newest sample, -1 when empty
	n     int // samples held
}

type historySample struct {
	t      int64 // Unix milliseconds of the sample
	totals map[Series]float64
}

// NewHistory returns a history of span milliseconds in slots of step
// milliseconds (span/step slots, at least 2). It panics if step or span
// is not positive: both are constants of the program, not input.
func NewHistory(step, span int64) *History {
	if step <= 0 || span <= 0 {
		panic("dashboard: NewHistory needs a positive step and span")
	}
	n := max(int(span/step), 2)
	return &History{step: step, slots: make([]historySample, n), last: -1}
}

// Record stores the counter totals read at now. A sample in the same step
// as the newest one replaces it (so a slot holds the latest totals of its
// step); a sample older than the newest one is ignored (the clock went
// back). Record copies totals.
func (h *History) Record(now int64, totals map[Series]float64) {
	if h.n > 0 {
		cur := h.slots[h.last]
		switch {
		case now < cur.t:
			return
		case now/h.step == cur.t/h.step:
			h.slots[h.last] = historySample{now, maps.Clone(totals)}
			return
		}
	}
	h.last = (h.last + 1) % len(h.slots)
	h.slots[h.last] = historySample{now, maps.Clone(totals)}
	h.n = min(h.n+1, len(h.slots))
}

// Rates is the history as rates per second: Times[i] is the end of the
// i-th interval (Unix milliseconds), oldest first, and Values[s][i] the
// rate of series s over it.
type Rates struct {
	Times  []int64
	Values map[Series][]float64
}

// Rates returns the rate per second of every series between consecutive
// samples. A series missing from a sample counts as 0 there (a counter is
// created at its first increment); a counter that went down (the server
// restarted it) gives 0, never a negative rate.
func (h *History) Rates() Rates {
	r := Rates{Values: map[Series][]float64{}}
	if h.n < 2 {
		return r
	}
	first := (h.last - h.n + 1 + len(h.slots)) % len(h.slots)
	seen := map[Series]bool{}
	for i := range h.n {
		for s := range h.slots[(first+i)%len(h.slots)].totals {
			seen[s] = true
		}
	}
	for s := range seen {
		r.Values[s] = make([]float64, 0, h.n-1)
	}
	for i := 1; i < h.n; i++ {
		a, b := h.slots[(first+i-1)%len(h.slots)], h.slots[(first+i)%len(h.slots)]
		dt := float64(b.t-a.t) / 1000
		r.Times = append(r.Times, b.t)
		for s := range seen {
			v := (b.totals[s] - a.totals[s]) / dt
			if v < 0 {
				v = 0
			}
			r.Values[s] = append(r.Values[s], v)
		}
	}
	return r
}
