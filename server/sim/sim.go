package sim

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// A Scenario is one candidate policy: limits applied together to every
// request, as a [weir.Limiter] applies them (a request is admitted only if
// every limit admits, and then charged to all of them).
type Scenario struct {
	// Name labels the scenario in the summary and the picture.
	Name string
	// Limits are the limits; a Concurrency limit cannot be simulated (it
	// holds leases for as long as requests run, which a traffic pattern
	// does not say).
	Limits []weir.Limit
	// Shadow marks a shadow policy: the server would admit every request
	// and only count what it would have denied. The simulation reports
	// those would-be denials as denied.
	Shadow bool
}

// DefaultStart is where a run of a generated pattern starts in virtual
// time: a midnight UTC, so a daily curve starts at 00:00 and fixed windows
// align as they would on a real day.
var DefaultStart = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Options say what traffic to run the scenarios against.
type Options struct {
	// Pattern is the traffic. Required.
	Pattern Pattern
	// For is the length of the run in virtual time. 0 means the span of a
	// [Replay]; it is required for the other patterns.
	For time.Duration
	// Start is the virtual instant the run starts at. The zero Time means
	// the first timestamp of a Replay, else DefaultStart.
	Start time.Time
	// MaxBins is the most bins the time series of a Result has; the bin
	// width is the shortest of 1, 2 or 5 times a power of ten (or a round
	// number of minutes, hours or days) that fits. 0 means 600.
	MaxBins int
	// MaxWindowEvents caps the memory used to find each limit's most units
	// in a window: the distinct admission instants of the last Period,
	// over all keys, 16 bytes each. A limit that needs more stops being
	// tracked (its MaxInWindow is -1). 0 means 1<<22 (64 MiB per limit).
	MaxWindowEvents int

	everyDecision bool // tests: ask the store about every request (see runner.take)
}

// A Result is what one scenario did with the traffic.
type Result struct {
	// Scenario is the scenario's Name.
	Scenario string `json:"scenario"`
	// Shadow is the scenario's Shadow.
	Shadow bool `json:"shadow,omitempty"`
	// Pattern describes the traffic.
	Pattern string `json:"pattern"`
	// Start is the virtual instant the run started; Duration its length.
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	// Offered, Admitted and Denied count requests; Rejected counts those
	// whose cost is above a limit's capacity, which a limiter refuses
	// with an error (ErrExceedsCapacity) and never admits. Offered =
	// Admitted + Denied + Rejected.
	Offered  int64 `json:"offered"`
	Admitted int64 `json:"admitted"`
	Denied   int64 `json:"denied"`
	Rejected int64 `json:"rejected,omitempty"`
	// OfferedUnits and AdmittedUnits count units (the requests' costs).
	OfferedUnits  int64 `json:"offered_units"`
	AdmittedUnits int64 `json:"admitted_units"`
	// Keys is the number of distinct keys in the traffic.
	Keys int `json:"keys"`
	// Limits has one entry per limit of the scenario, in order.
	Limits []LimitResult `json:"limits"`
	// RetryAfter is the distribution of the denials' RetryAfter.
	RetryAfter Dist `json:"retry_after"`
	// BinWidth is the width of the bins of OfferedSeries and
	// AdmittedSeries, which hold the units offered and admitted in each.
	BinWidth       time.Duration `json:"bin_ns"`
	OfferedSeries  []int64       `json:"offered_series"`
	AdmittedSeries []int64       `json:"admitted_series"`
	// Wall is how long the simulation took in real time.
	Wall time.Duration `json:"wall_ns"`
}

// A LimitResult is what one limit of a scenario did.
type LimitResult struct {
	// Limit is the limit's text form; Name its name in decisions.
	Limit string `json:"limit"`
	Name  string `json:"name"`
	// DeniedBy counts the denials this limit decided (the denying limit
	// with the longest RetryAfter, as in weir.Decision.Limit).
	DeniedBy int64 `json:"denied_by"`
	// MaxInWindow is the most units admitted for one key in any window
	// (t−Period, t] of this limit's Period, or -1 when it was not tracked
	// to the end because the admissions of the last Period, over all keys,
	// came to more than Options.MaxWindowEvents distinct instants.
	MaxInWindow int64 `json:"max_in_window"`
	// WindowBound is the algorithm's exact bound on MaxInWindow
	// (docs/algorithms.md): Burst+Quota−1 for the token bucket, Quota for
	// the sliding log, 2·Quota−1 for the sliding counter, 2·Quota for the
	// fixed window.
	WindowBound int64 `json:"window_bound"`
	// Utilisation is AdmittedUnits ÷ (Keys × Quota × Duration/Period): the
	// share of the limit's sustained rate the admitted traffic used,
	// averaged over keys. It exceeds 1 when a burst or the first window
	// lets more in than the rate, e.g. in a run shorter than the Period.
	Utilisation float64 `json:"utilisation"`
}

// WindowBound returns the most units l can admit for one key in any
// half-open window of length l.Period, from the bounds in
// docs/algorithms.md. It is 0 for a Concurrency limit, which bounds units
// held at once instead.
func WindowBound(l weir.Limit) int64 {
	switch l.Algorithm {
	case weir.TokenBucket:
		// Burst + ⌊T·Quota/Period⌋ over a closed interval of length T; the
		// instants of a half-open window of length Period are less than
		// Period apart, so ⌊T·Quota/Period⌋ ≤ Quota−1.
		return l.Capacity() + l.Quota - 1
	case weir.SlidingWindowLog:
		return l.Quota
	case weir.SlidingWindowCounter:
		return 2*l.Quota - 1
	case weir.FixedWindow:
		return 2 * l.Quota // the window meets at most two aligned windows
	}
	return 0
}

// Run runs every scenario against the same traffic, each on its own memory
// store whose clock is the virtual time of the run, and returns their
// results in order. The scenarios run in parallel, up to GOMAXPROCS at a
// time. An error names the scenario and the field.
func Run(ctx context.Context, scenarios []Scenario, opt Options) ([]Result, error) {
	if opt.Pattern == nil {
		return nil, errors.New("sim: Options.Pattern is nil")
	}
	if len(scenarios) == 0 {
		return nil, errors.New("sim: no scenario to run")
	}
	rp, isReplay := opt.Pattern.(*Replay)
	if opt.For == 0 && isReplay {
		opt.For = rp.Span()
	}
	if opt.For <= 0 {
		return nil, fmt.Errorf("sim: Options.For: must be positive (got %v)", opt.For)
	}
	if opt.Start.IsZero() {
		opt.Start = DefaultStart
		if isReplay {
			opt.Start = rp.Start()
		}
	}
	if opt.MaxBins <= 0 {
		opt.MaxBins = 600
	}
	if opt.MaxWindowEvents <= 0 {
		opt.MaxWindowEvents = 1 << 22
	}
	runners := make([]*runner, len(scenarios))
	for i, sc := range scenarios {
		r, err := newRunner(sc, opt)
		if err != nil {
			return nil, fmt.Errorf("sim: scenario %q: %w", sc.Name, err)
		}
		runners[i] = r
	}
	results := make([]Result, len(runners))
	errs := make([]error, len(runners))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, r := range runners {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = r.run(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results, nil
}

// binWidth returns the bin width for a run of length d.
func binWidth(d time.Duration, maxBins int) time.Duration {
	fits := func(w time.Duration) bool { return (d+w-1)/w <= time.Duration(maxBins) }
	for w := time.Duration(1); w < 10*time.Second; w *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if fits(m * w) {
				return m * w
			}
		}
	}
	for _, w := range []time.Duration{
		10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
		5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
		2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	} {
		if fits(w) {
			return w
		}
	}
	w := 24 * time.Hour
	for !fits(w) {
		w *= 2
	}
	return w
}

// runner simulates one scenario.
type runner struct {
	opt    Options
	lim    *weir.Limiter
	limits []weir.Limit // named as the limiter names them
	index  map[string]int
	now    time.Time // the store's clock
	keys   map[string]*keyState
	res    Result
	hist   *hist
	live   []int // per limit: events held in the windows of every key
}

// keyState is what the runner keeps per key.
type keyState struct {
	// A denial of cost blockedCost leaves the key's state unchanged, and
	// RetryAfter is exact: the same request is denied at every instant
	// before blockedUntil by the same limit (docs/algorithms.md).
	blockedUntil time.Duration
	blockedCost  int64
	blockedBy    int
	windows      []window // per limit
}

func newRunner(sc Scenario, opt Options) (*runner, error) {
	if len(sc.Limits) == 0 {
		return nil, errors.New("no limits (Limits is empty)")
	}
	var opts []weir.Option
	for i, l := range sc.Limits {
		if l.Algorithm == weir.Concurrency {
			return nil, fmt.Errorf("Limits[%d].Algorithm: %s limits hold leases for as long as requests run; sim simulates rates only", i, l.Algorithm)
		}
		opts = append(opts, l)
	}
	r := &runner{opt: opt, keys: map[string]*keyState{}, index: map[string]int{}, hist: new(hist)}
	lim, err := weir.NewLimiter(memstore.New(memstore.WithClock(func() time.Time { return r.now })), opts...)
	if err != nil {
		return nil, err
	}
	r.lim = lim
	r.limits = lim.Limits()
	bw := binWidth(opt.For, opt.MaxBins)
	nbins := int((opt.For + bw - 1) / bw)
	r.live = make([]int, len(r.limits))
	r.res = Result{
		Scenario: sc.Name, Shadow: sc.Shadow, Pattern: opt.Pattern.String(),
		Start: opt.Start, Duration: opt.For, BinWidth: bw,
		OfferedSeries: make([]int64, nbins), AdmittedSeries: make([]int64, nbins),
		Limits: make([]LimitResult, len(r.limits)),
	}
	for i, l := range r.limits {
		r.index[l.Name] = i
		r.res.Limits[i] = LimitResult{Limit: l.String(), Name: l.Name, WindowBound: WindowBound(l)}
	}
	return r, nil
}

func (r *runner) key(k string) *keyState {
	ks, ok := r.keys[k]
	if !ok {
		ks = &keyState{windows: make([]window, len(r.limits))}
		r.keys[k] = ks
	}
	return ks
}

func (r *runner) run(ctx context.Context) (Result, error) {
	began := time.Now()
	res := &r.res
	var last string
	var ks *keyState
	var n int64
	for a := range r.opt.Pattern.Arrivals(r.opt.For) {
		if n++; n&(1<<20-1) == 0 && ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		if ks == nil || a.Key != last {
			ks, last = r.key(a.Key), a.Key
		}
		bin := a.At / res.BinWidth
		res.Offered++
		res.OfferedUnits += a.Cost
		res.OfferedSeries[bin] += a.Cost
		if !r.opt.everyDecision && a.At < ks.blockedUntil && a.Cost == ks.blockedCost {
			r.deny(ks.blockedUntil-a.At, ks.blockedBy)
			continue
		}
		r.now = r.opt.Start.Add(a.At)
		d, err := r.lim.AllowN(ctx, a.Key, a.Cost)
		switch {
		case errors.Is(err, weir.ErrExceedsCapacity):
			res.Rejected++
			continue
		case err != nil:
			return Result{}, fmt.Errorf("sim: scenario %q: at %v, key %q, cost %d: %w", res.Scenario, a.At, a.Key, a.Cost, err)
		}
		if !d.Allowed {
			by := r.index[d.Limit.Name]
			ks.blockedUntil, ks.blockedCost, ks.blockedBy = a.At+d.RetryAfter, a.Cost, by
			r.deny(d.RetryAfter, by)
			continue
		}
		ks.blockedUntil = 0
		res.Admitted++
		res.AdmittedUnits += a.Cost
		res.AdmittedSeries[bin] += a.Cost
		for i := range ks.windows {
			if lr := &res.Limits[i]; lr.MaxInWindow >= 0 {
				sum, delta := ks.windows[i].add(int64(a.At), a.Cost, int64(r.limits[i].Period))
				lr.MaxInWindow = max(lr.MaxInWindow, sum)
				if r.live[i] += delta; r.live[i] > r.opt.MaxWindowEvents {
					r.untrack(i)
				}
			}
		}
	}
	res.Keys = len(r.keys)
	res.RetryAfter = r.hist.dist()
	for i, l := range r.limits {
		if res.Keys > 0 {
			capacity := float64(res.Keys) * float64(l.Quota) * float64(res.Duration) / float64(l.Period)
			res.Limits[i].Utilisation = float64(res.AdmittedUnits) / capacity
		}
	}
	res.Wall = time.Since(began)
	return *res, nil
}

// untrack stops tracking the windows of limit i and frees them.
func (r *runner) untrack(i int) {
	r.res.Limits[i].MaxInWindow = -1
	r.live[i] = 0
	for _, ks := range r.keys {
		ks.windows[i] = window{}
	}
}

func (r *runner) deny(retry time.Duration, by int) {
	r.res.Denied++
	r.res.Limits[by].DeniedBy++
	r.hist.add(int64(retry))
}

// window holds the admissions of one key in the last Period of one limit,
// as a ring of (instant, units) whose length is a power of two, to find
// the most units in any window.
type window struct {
	ev      []event
	head, n int
	sum     int64
}

type event struct{ at, units int64 }

// add records units admitted at instant at (never before the previous
// one) and returns the units admitted in (at−period, at] and the change in
// the number of events held.
func (w *window) add(at, units, period int64) (sum int64, delta int) {
	n := w.n
	for w.n > 0 && w.ev[w.head].at <= at-period {
		w.sum -= w.ev[w.head].units
		w.head = (w.head + 1) & (len(w.ev) - 1)
		w.n--
	}
	w.sum += units
	if w.n > 0 {
		if tail := &w.ev[(w.head+w.n-1)&(len(w.ev)-1)]; tail.at == at {
			tail.units += units
			return w.sum, w.n - n
		}
	}
	if w.n == len(w.ev) {
		grown := make([]event, max(8, 2*len(w.ev)))
		for i := range w.n {
			grown[i] = w.ev[(w.head+i)&(len(w.ev)-1)]
		}
		w.ev, w.head = grown, 0
	}
	w.ev[(w.head+w.n)&(len(w.ev)-1)] = event{at, units}
	w.n++
	return w.sum, w.n - n
}
