package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

const ms = time.Millisecond

func mustLimit(t *testing.T, s string) weir.Limit {
	t.Helper()
	l, err := weir.ParseLimit(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustPattern(t *testing.T, s string) Pattern {
	t.Helper()
	p, err := ParsePattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run1(t *testing.T, limits []weir.Limit, opt Options) Result {
	t.Helper()
	res, err := Run(context.Background(), []Scenario{{Name: "s", Limits: limits}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	r := res[0]
	if r.Offered != r.Admitted+r.Denied+r.Rejected {
		t.Errorf("offered %d != admitted %d + denied %d + rejected %d", r.Offered, r.Admitted, r.Denied, r.Rejected)
	}
	if r.RetryAfter.Count != r.Denied {
		t.Errorf("RetryAfter.Count = %d, want Denied = %d", r.RetryAfter.Count, r.Denied)
	}
	var denied, offered, admitted int64
	for _, l := range r.Limits {
		denied += l.DeniedBy
	}
	for i := range r.OfferedSeries {
		offered += r.OfferedSeries[i]
		admitted += r.AdmittedSeries[i]
	}
	if denied != r.Denied || offered != r.OfferedUnits || admitted != r.AdmittedUnits {
		t.Errorf("sums: denied by limits %d (want %d), series offered %d (want %d), admitted %d (want %d)",
			denied, r.Denied, offered, r.OfferedUnits, admitted, r.AdmittedUnits)
	}
	return r
}

// replay builds a Replay from lines "OFFSET_MS [KEY [COST]]" after the
// conformance suite's base instant (a whole day since the epoch).
func replay(t *testing.T, lines ...string) *Replay {
	t.Helper()
	const base = 1_700_006_400 // storetest's base: windows align as there
	var b strings.Builder
	for _, l := range lines {
		f := strings.Fields(l)
		var off int64
		fmt.Sscan(f[0], &off)
		f[0] = fmt.Sprintf("%d.%09d", base+off/1000, (off%1000)*1e6)
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	p, err := ParseReplay("test", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConformanceVectors replays the requests of storetest's vectors (its
// takes with a cost; peeks are not traffic) and checks what the
// simulation counted against the vectors' expected decisions.
func TestConformanceVectors(t *testing.T) {
	tests := []struct {
		name                    string
		limit                   weir.Limit
		lines                   []string // "offset_ms key cost", in the vector's order
		admitted, units, denied int64
		minRetry, maxRetry      time.Duration
		maxInWindow             int64
	}{
		{"token-bucket 10/s burst 5", weir.PerSecond(10).WithBurst(5),
			[]string{"0 k 1", "0 k 4", "0 k 1", "250 k 1", "250 k 2", "1000 k 5"},
			4, 11, 2, 50 * ms, 100 * ms, 6},
		{"token-bucket 3/s", weir.PerSecond(3),
			[]string{"0 k 1", "0 k 2", "0 k 1", "1000 k 3"},
			3, 6, 1, 333333334, 333333334, 3},
		{"fixed-window 3/s", weir.Per(3, time.Second).WithAlgorithm(weir.FixedWindow),
			[]string{"200 k 2", "500 k 2", "500 k 1", "1000 k 3", "1999 k 1"},
			3, 6, 2, 1 * ms, 500 * ms, 6},
		{"sliding-window 10/s", weir.Per(10, time.Second).WithAlgorithm(weir.SlidingWindowCounter),
			[]string{"500 k 6", "900 k 5", "1500 k 7", "1750 k 1", "1750 k 1"},
			3, 14, 2, 83333334, 266666667, 8},
		{"sliding-log 3/s", weir.Per(3, time.Second).WithAlgorithm(weir.SlidingWindowLog),
			[]string{"0 k 1", "300 k 1", "600 k 2", "600 k 1", "1000 k 1"},
			4, 4, 1, 400 * ms, 400 * ms, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, every := range []bool{false, true} {
				r := run1(t, []weir.Limit{tt.limit}, Options{Pattern: replay(t, tt.lines...), everyDecision: every})
				d := r.RetryAfter
				got := []any{r.Admitted, r.AdmittedUnits, r.Denied, d.Min, d.Max, r.Limits[0].MaxInWindow}
				want := []any{tt.admitted, tt.units, tt.denied, tt.minRetry, tt.maxRetry, tt.maxInWindow}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("everyDecision=%v: admitted, units, denied, min and max retry, max in window = %v, want %v", every, got, want)
				}
				if r.Limits[0].MaxInWindow > r.Limits[0].WindowBound {
					t.Errorf("MaxInWindow %d > bound %d", r.Limits[0].MaxInWindow, r.Limits[0].WindowBound)
				}
			}
		})
	}
}

// TestBoundsUnderOverload runs each algorithm at five times its rate and
// checks the counts against the exact figures of docs/algorithms.md.
func TestBoundsUnderOverload(t *testing.T) {
	const T = 60 * time.Second
	tests := []struct {
		limit       string
		admitted    int64 // the exact count over the run
		maxInWindow int64 // -1: only check the bound
	}{
		// GCRA, arrivals every I/5: admitted by t is Burst + ⌊t/I⌋ at the
		// arrival instants; the last is 59.998s: 100 + 5999.
		{"100/s", 100 + 5999, 100 + 100 - 1},
		{"100/s burst=250", 250 + 5999, 250 + 100 - 1},
		// Quota in each of the 60 aligned windows.
		{"100/s algo=fixed-window", 60 * 100, -1},
		// Exact: never more than Quota in a window, and Quota is reached.
		{"100/s algo=sliding-log", 60 * 100, 100},
		{"100/s algo=sliding-window", -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			l := mustLimit(t, tt.limit)
			r := run1(t, []weir.Limit{l}, Options{Pattern: mustPattern(t, "constant:500/s"), For: T})
			if r.Offered != 30000 {
				t.Errorf("offered %d, want 30000", r.Offered)
			}
			lr := r.Limits[0]
			if lr.WindowBound != WindowBound(l) || lr.MaxInWindow > lr.WindowBound {
				t.Errorf("MaxInWindow %d above the bound %d", lr.MaxInWindow, lr.WindowBound)
			}
			if tt.admitted >= 0 && r.Admitted != tt.admitted {
				t.Errorf("admitted %d, want %d", r.Admitted, tt.admitted)
			}
			if tt.maxInWindow >= 0 && lr.MaxInWindow != tt.maxInWindow {
				t.Errorf("MaxInWindow %d, want %d", lr.MaxInWindow, tt.maxInWindow)
			}
			// Every limit here sustains 100/s: the admitted rate over the
			// run is 100/s give or take the first burst and window.
			if r.Admitted < 5900 || r.Admitted > 6000+l.Capacity() {
				t.Errorf("admitted %d, want about 6000", r.Admitted)
			}
		})
	}
}

// TestFixedWindowBoundary: Quota just before a window boundary and Quota
// at it reach the fixed window's bound of 2·Quota in one Period.
func TestFixedWindowBoundary(t *testing.T) {
	var lines []string
	for range 3 {
		lines = append(lines, "999 k 1")
	}
	for range 4 {
		lines = append(lines, "1000 k 1")
	}
	r := run1(t, []weir.Limit{mustLimit(t, "3/s algo=fixed-window")}, Options{Pattern: replay(t, lines...)})
	if r.Admitted != 6 || r.Limits[0].MaxInWindow != 6 || r.Limits[0].WindowBound != 6 {
		t.Errorf("admitted %d, MaxInWindow %d, bound %d; want 6, 6, 6", r.Admitted, r.Limits[0].MaxInWindow, r.Limits[0].WindowBound)
	}
}

// TestShortcutExact checks that counting repeats of a denied request as
// denied without asking the store gives exactly the results of asking the
// store every time, on random traffic for every algorithm and a mix.
func TestShortcutExact(t *testing.T) {
	scenarios := []Scenario{
		{Name: "tb", Limits: []weir.Limit{mustLimit(t, "20/s burst=5")}},
		{Name: "log", Limits: []weir.Limit{mustLimit(t, "20/s algo=sliding-log")}},
		{Name: "swc", Limits: []weir.Limit{mustLimit(t, "20/s algo=sliding-window")}},
		{Name: "fixed", Limits: []weir.Limit{mustLimit(t, "20/s algo=fixed-window")}},
		{Name: "mix", Limits: []weir.Limit{mustLimit(t, "10/s burst=6"), mustLimit(t, "300/m algo=sliding-window"), mustLimit(t, "50/10s algo=fixed-window")}},
	}
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var lines []string
		at := int64(0)
		for range 2000 {
			at += int64(rng.ExpFloat64() * 15) // ms; ~67/s, over every limit
			lines = append(lines, fmt.Sprintf("%d k%d %d", at, rng.IntN(3), 1+rng.IntN(3)))
		}
		p := replay(t, lines...)
		fast, err := Run(context.Background(), scenarios, Options{Pattern: p})
		if err != nil {
			t.Fatal(err)
		}
		slow, err := Run(context.Background(), scenarios, Options{Pattern: p, everyDecision: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range fast {
			fast[i].Wall, slow[i].Wall = 0, 0
			if !reflect.DeepEqual(fast[i], slow[i]) {
				t.Errorf("seed %d, %s: with the shortcut\n%+v\nasking the store every time\n%+v", seed, scenarios[i].Name, fast[i], slow[i])
			}
			if fast[i].Denied == 0 || fast[i].Admitted == 0 {
				t.Errorf("seed %d, %s: admitted %d, denied %d: the traffic does not exercise both", seed, scenarios[i].Name, fast[i].Admitted, fast[i].Denied)
			}
		}
	}
}

// TestMultiLimit: a request is charged to every limit or none, and the
// denials are attributed to the limit that decided.
func TestMultiLimit(t *testing.T) {
	// 10/s with no burst beyond 10, and 100 per minute: at 20/s for a
	// minute the second-long limit denies until the per-minute one is used
	// up; from then on the minute limit decides.
	r := run1(t, []weir.Limit{mustLimit(t, "10/s"), mustLimit(t, "100/m algo=sliding-log")},
		Options{Pattern: mustPattern(t, "constant:20/s"), For: time.Minute})
	if r.Admitted != 100 || r.AdmittedUnits != 100 {
		t.Errorf("admitted %d (%d units), want 100", r.Admitted, r.AdmittedUnits)
	}
	if r.Limits[0].DeniedBy == 0 || r.Limits[1].DeniedBy == 0 {
		t.Errorf("denied by %d and %d: want both limits to decide some", r.Limits[0].DeniedBy, r.Limits[1].DeniedBy)
	}
	if r.Limits[1].MaxInWindow != 100 || r.Limits[0].MaxInWindow > r.Limits[0].WindowBound {
		t.Errorf("max in window %d (bound %d) and %d, want 100 for the log", r.Limits[0].MaxInWindow, r.Limits[0].WindowBound, r.Limits[1].MaxInWindow)
	}
}

// TestKeysApart: keys never share a bucket; utilisation is per key.
func TestKeysApart(t *testing.T) {
	r := run1(t, []weir.Limit{mustLimit(t, "10/s")}, Options{Pattern: mustPattern(t, "constant:40/s,keys=4"), For: 10 * time.Second})
	if r.Keys != 4 || r.Admitted != 400 || r.Denied != 0 {
		t.Errorf("keys %d, admitted %d, denied %d; want 4 keys, all 400 admitted", r.Keys, r.Admitted, r.Denied)
	}
	if u := r.Limits[0].Utilisation; u != 1 {
		t.Errorf("utilisation %v, want 1", u)
	}
}

func TestRejected(t *testing.T) {
	r := run1(t, []weir.Limit{mustLimit(t, "10/s")}, Options{Pattern: replay(t, "0 k 11", "1 k 10", "2 k 1"), For: time.Second})
	if r.Rejected != 1 || r.Admitted != 1 || r.Denied != 1 {
		t.Errorf("rejected %d, admitted %d, denied %d; want 1 each", r.Rejected, r.Admitted, r.Denied)
	}
}

func TestRunErrors(t *testing.T) {
	p := mustPattern(t, "constant:1/s")
	tests := []struct {
		scenarios []Scenario
		opt       Options
		want      string
	}{
		{[]Scenario{{Name: "a", Limits: []weir.Limit{weir.PerSecond(1)}}}, Options{}, "Options.Pattern"},
		{[]Scenario{{Name: "a", Limits: []weir.Limit{weir.PerSecond(1)}}}, Options{Pattern: p}, "Options.For"},
		{nil, Options{Pattern: p, For: time.Second}, "no scenario"},
		{[]Scenario{{Name: "a"}}, Options{Pattern: p, For: time.Second}, `scenario "a": no limits (Limits is empty)`},
		{[]Scenario{{Name: "c", Limits: []weir.Limit{weir.Concurrent(2, time.Second)}}}, Options{Pattern: p, For: time.Second}, "Limits[0].Algorithm"},
		{[]Scenario{{Name: "q", Limits: []weir.Limit{{Quota: 0, Period: time.Second}}}}, Options{Pattern: p, For: time.Second}, "Quota"},
	}
	for _, tt := range tests {
		_, err := Run(context.Background(), tt.scenarios, tt.opt)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%+v) = %v, want an error naming %q", tt.scenarios, err, tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, []Scenario{{Name: "a", Limits: []weir.Limit{weir.PerSecond(1)}}}, Options{Pattern: mustPattern(t, "constant:1000000/s"), For: 10 * time.Second}); err == nil {
		t.Error("Run with a cancelled context: no error")
	}
}

func TestBinWidth(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want time.Duration
	}{
		{time.Minute, 100 * ms},
		{time.Hour, 10 * time.Second},
		{24 * time.Hour, 5 * time.Minute},
		{7 * 24 * time.Hour, 30 * time.Minute},
		{600, 1},
		{601, 2},
		{1000 * 24 * time.Hour, 48 * time.Hour},
	}
	for _, tt := range tests {
		if got := binWidth(tt.d, 600); got != tt.want {
			t.Errorf("binWidth(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}

// TestMaxWindowEvents: a limit whose windows would hold more admission
// instants than the cap stops being tracked (-1) and frees them; the
// others go on.
func TestMaxWindowEvents(t *testing.T) {
	limits := []weir.Limit{mustLimit(t, "1000/s"), mustLimit(t, "100000/m")}
	opt := Options{Pattern: mustPattern(t, "constant:100/s,keys=3"), For: 2 * time.Minute, MaxWindowEvents: 1000}
	r := run1(t, limits, opt)
	// 100/s over 3 keys: each key holds about 34 instants in a second
	// (102 in all) and 2000 in a minute (6000 in all).
	if r.Limits[0].MaxInWindow != 34 || r.Limits[1].MaxInWindow != -1 {
		t.Errorf("MaxInWindow %d and %d, want 34 and -1", r.Limits[0].MaxInWindow, r.Limits[1].MaxInWindow)
	}
	if !strings.Contains(r.String(), "most in 1m not tracked (bound 199999)") {
		t.Errorf("summary %q", r.String())
	}
	opt.MaxWindowEvents = 0
	if r := run1(t, limits, opt); r.Limits[1].MaxInWindow != 2000 {
		t.Errorf("with the default cap: MaxInWindow %d, want 2000", r.Limits[1].MaxInWindow)
	}
}
