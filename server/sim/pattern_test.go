package sim

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func collect(p Pattern, d time.Duration) []Arrival {
	var out []Arrival
	for a := range p.Arrivals(d) {
		out = append(out, a)
	}
	return out
}

func TestConstant(t *testing.T) {
	got := collect(mustPattern(t, "constant:3/s,keys=2,cost=4"), 2*time.Second)
	want := []Arrival{
		{0, "k0", 4}, {333333333, "k1", 4}, {666666666, "k0", 4},
		{time.Second, "k1", 4}, {1333333333, "k0", 4}, {1666666666, "k1", 4},
	}
	if !slices.Equal(got, want) {
		t.Errorf("constant:3/s = %v, want %v", got, want)
	}
	// Every call yields the same arrivals; a bare number is per second.
	p := mustPattern(t, "constant:7")
	if a, b := collect(p, time.Second), collect(p, time.Second); len(a) != 7 || !slices.Equal(a, b) {
		t.Errorf("constant:7 over 1s: %d arrivals, repeatable %v", len(a), slices.Equal(a, b))
	}
}

func TestPoisson(t *testing.T) {
	p := mustPattern(t, "poisson:1000/s,seed=3")
	a := collect(p, 100*time.Second)
	// Deterministic for the seed; the count is within 5σ of 100,000.
	if n := float64(len(a)); math.Abs(n-1e5) > 5*math.Sqrt(1e5) {
		t.Errorf("%d arrivals in 100s at 1000/s", len(a))
	}
	if !slices.IsSortedFunc(a, func(x, y Arrival) int { return cmpInt(int64(x.At), int64(y.At)) }) {
		t.Error("arrivals out of order")
	}
	if b := collect(p, 100*time.Second); !slices.Equal(a, b) {
		t.Error("two calls differ")
	}
	if c := collect(mustPattern(t, "poisson:1000/s,seed=4"), 100*time.Second); slices.Equal(a, c) {
		t.Error("seeds 3 and 4 give the same arrivals")
	}
	// Gaps: exponential, so about 1/e of them exceed the mean (1ms).
	var over int
	for i := 1; i < len(a); i++ {
		if a[i].At-a[i-1].At > time.Millisecond {
			over++
		}
	}
	if f := float64(over) / float64(len(a)-1); math.Abs(f-1/math.E) > 0.01 {
		t.Errorf("%.4f of the gaps exceed the mean, want 1/e = %.4f", f, 1/math.E)
	}
}

func TestBursts(t *testing.T) {
	got := collect(mustPattern(t, "bursts:3/10s,width=3s,base=1/4s"), 20*time.Second)
	var at []time.Duration
	for _, a := range got {
		at = append(at, a.At)
	}
	s := time.Second
	want := []time.Duration{0, 0, s, 2 * s, 4 * s, 8 * s, 10 * s, 11 * s, 12 * s, 12 * s, 16 * s}
	if !slices.Equal(at, want) {
		t.Errorf("bursts = %v, want %v", at, want)
	}
	got = collect(mustPattern(t, "bursts:2/1m"), 3*time.Minute)
	if len(got) != 6 || got[1].At != 0 || got[2].At != time.Minute {
		t.Errorf("bursts:2/1m over 3m = %v", got)
	}
}

func TestDaily(t *testing.T) {
	p := mustPattern(t, "daily:20/s,low=2/s,peak=14:00")
	perHour := make([]int, 24)
	for a := range p.Arrivals(24 * time.Hour) {
		perHour[a.At/time.Hour]++
	}
	// The mean rate over an hour around a time of day, from the curve.
	rate := func(h int) float64 {
		var sum float64
		for m := range 60 {
			ph := 2 * math.Pi * (float64(h) + (float64(m)+0.5)/60 - 14) / 24
			sum += 2 + 18*(1+math.Cos(ph))/2
		}
		return sum / 60 * 3600
	}
	for _, h := range []int{2, 8, 13, 20} {
		if want := rate(h); math.Abs(float64(perHour[h])-want) > 5*math.Sqrt(want) {
			t.Errorf("hour %d: %d arrivals, want %.0f ± 5σ", h, perHour[h], want)
		}
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"constant", "KIND:ARGS"},
		{"wave:10/s", `unknown kind "wave"`},
		{"constant:abc", "rate"},
		{"constant:0/s", "rate"},
		{"constant:10/s burst=3", "rate"},
		{"constant:10/s,keys=0", "keys"},
		{"constant:10/s,keys=x", "keys"},
		{"constant:10/s,cost=-1", "cost"},
		{"constant:10/s,seed=1", `unknown option "seed"`},
		{"constant:10/s,keys", "not NAME=VALUE"},
		{"constant:10/s,keys=1,keys=2", "given twice"},
		{"poisson:10/s,seed=x", "seed"},
		{"bursts:10", "size"},
		{"bursts:0/1s", "size"},
		{"bursts:10/xyz", "every"},
		{"bursts:10/1s,width=2s", "width"},
		{"bursts:10/1s,base=x", "base"},
		{"daily:10/s,low=20/s", "low"},
		{"daily:10/s,peak=25:00", "peak"},
		{"file:/nonexistent/weir-sim", "no such file"},
	}
	for _, tt := range tests {
		_, err := ParsePattern(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePattern(%q) = %v, want an error naming %q", tt.in, err, tt.want)
		}
	}
}

func TestPatternString(t *testing.T) {
	for _, s := range []string{"constant:1000/s", "poisson:50/m,seed=2", "bursts:200/10s,width=1s", "daily:1000/s,low=50/s,keys=10"} {
		p := mustPattern(t, s)
		if p.String() != s {
			t.Errorf("ParsePattern(%q).String() = %q", s, p.String())
		}
	}
}

func TestParseReplay(t *testing.T) {
	// 1796551200 is 2026-12-06T10:00:00Z.
	in := `# time key cost
1796551200.5 alice 2
1796551200.25,bob
2026-12-06T10:00:01.25Z

1796551200.25 - 3
`
	p, err := ParseReplay("in", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Arrival{{0, "bob", 1}, {0, "sim", 3}, {250 * time.Millisecond, "alice", 2}, {time.Second, "sim", 1}}
	if got := collect(p, time.Hour); !slices.Equal(got, want) {
		t.Errorf("arrivals = %v, want %v", got, want)
	}
	if p.Start() != time.Date(2026, 12, 6, 10, 0, 0, 250e6, time.UTC) || p.Span() != time.Second+1 || p.Len() != 4 {
		t.Errorf("Start %v, Span %v, Len %d", p.Start(), p.Span(), p.Len())
	}
	if got := collect(p, time.Second); len(got) != 3 {
		t.Errorf("the first second: %d arrivals, want 3", len(got))
	}
}

func TestParseReplayErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no requests"},
		{"# only a comment\n", "no requests"},
		{"yesterday\n", "in:1: time"},
		{"1.5 k 1\n1.6 k 0\n", "in:2: cost"},
		{"1.5 k x\n", "in:1: cost"},
		{"1.5 k 1 extra\n", "in:1: 4 fields"},
		{"1.1234567891\n", "in:1: time"},
		{"2026-13-01T00:00:00Z\n", "in:1: time"},
		{"99999999999999999999\n", "in:1: time"},
	}
	for _, tt := range tests {
		_, err := ParseReplay("in", strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseReplay(%q) = %v, want an error naming %q", tt.in, err, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1", 1e9}, {"1.5", 1.5e9}, {"0.000000001", 1}, {"-1.5", -1.5e9}, {"1796551200.123456789", 1796551200123456789},
	}
	for _, tt := range tests {
		if got, err := parseTime(tt.in); err != nil || got != tt.want {
			t.Errorf("parseTime(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
