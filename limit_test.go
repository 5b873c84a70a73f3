package weir_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want weir.Limit
	}{
		{"100/s", weir.PerSecond(100)},
		{"5/2s", weir.Per(5, 2*time.Second)},
		{"500/h", weir.PerHour(500)},
		{"1000/day", weir.PerDay(1000)},
		{"10/15m", weir.Per(10, 15*time.Minute)},
		{"10/15min", weir.Per(10, 15*time.Minute)},
		{"1/1h30m", weir.Per(1, 90*time.Minute)},
		{"7/w", weir.Per(7, 7*24*time.Hour)},
		{"100/s burst=200", weir.PerSecond(100).WithBurst(200)},
		{"100/s, burst=200, name=api", weir.PerSecond(100).WithBurst(200).WithName("api")},
		{"60/m algo=sliding-log", weir.PerMinute(60).WithAlgorithm(weir.SlidingWindowLog)},
		{"60/m algo=swc", weir.PerMinute(60).WithAlgorithm(weir.SlidingWindowCounter)},
		{"60/m algo=fixed", weir.PerMinute(60).WithAlgorithm(weir.FixedWindow)},
		{"5/30s algo=concurrency", weir.Concurrent(5, 30*time.Second)},
		{"3/250ms", weir.Per(3, 250*time.Millisecond)},
		{"10000/m debt=50000", weir.PerMinute(10000).WithMaxDebt(50000)},
		{"10/s algo=fixed max-debt=5", weir.PerSecond(10).WithAlgorithm(weir.FixedWindow).WithMaxDebt(5)},
	}
	for _, tt := range tests {
		got, err := weir.ParseLimit(tt.in)
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		// The text form round-trips (the name is not part of it).
		back, err := weir.ParseLimit(got.String())
		if err != nil || back != got.WithName("") {
			t.Errorf("ParseLimit(%q.String()=%q) = %+v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestParseLimitErrors(t *testing.T) {
	tests := []struct{ in, field string }{
		{"", "limit"},
		{"100", "limit"},
		{"x/s", "Limit.Quota"},
		{"0/s", "Limit.Quota"},
		{"-1/s", "Limit.Quota"},
		{"10/fortnight", "Limit.Period"},
		{"10/0s", "Limit.Period"},
		{"10/-5s", "Limit.Period"},
		{"10/1ns", "Limit.Period"}, // not a whole number of microseconds
		{"10/101000d", "Limit.Period"},
		{"10/s burst=x", "Limit.Burst"},
		{"10/s burst=-1", "Limit.Burst"},
		{"10/s algo=magic", "algorithm"},
		{"10/s algo=fixed burst=5", "Limit.Burst"},
		{"10/s colour=red", "limit"},
		{"10/s burst", "limit"},
		{"10/s debt=x", "Limit.MaxDebt"},
		{"10/s debt=-1", "Limit.MaxDebt"},
		{"5/30s algo=concurrency debt=3", "Limit.MaxDebt"},
	}
	for _, tt := range tests {
		_, err := weir.ParseLimit(tt.in)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, weir.ErrInvalid) {
			t.Errorf("ParseLimit(%q) error = %v, want a FieldError", tt.in, err)
			continue
		}
		if fe.Field != tt.field {
			t.Errorf("ParseLimit(%q) names field %q, want %q (%v)", tt.in, fe.Field, tt.field, err)
		}
	}
}

// R06: invalid limits are typed errors at construction, never panics.
func TestLimitValidateNumericEdges(t *testing.T) {
	const year = 365 * 24 * time.Hour
	tests := []struct {
		l     weir.Limit
		field string // "" = valid
	}{
		{weir.Limit{}, "Limit.Quota"},
		{weir.Per(0, time.Second), "Limit.Quota"},
		{weir.Per(-1, time.Second), "Limit.Quota"},
		{weir.Per(1, 0), "Limit.Period"},
		{weir.Per(1, -time.Second), "Limit.Period"},
		{weir.Per(1, time.Nanosecond), "Limit.Period"},
		{weir.Per(1, time.Microsecond), ""},
		{weir.Per(1, 100*year), ""},
		{weir.Per(1, 101*year), "Limit.Period"},
		{weir.Per(1<<62, time.Second), ""},
		{weir.Per(1, time.Second).WithBurst(1 << 31), ""},            // 68 years of burst
		{weir.Per(1, time.Second).WithBurst(1 << 32), "Limit.Burst"}, // 136 years > 100
		{weir.Per(1000, time.Second).WithBurst(1 << 31), ""},
		{weir.Per(1, time.Second).WithBurst(-1), "Limit.Burst"},
		{weir.Per(1, time.Second).WithAlgorithm(weir.FixedWindow).WithBurst(2), "Limit.Burst"},
		{weir.Per(1, time.Second).WithAlgorithm(99), "Limit.Algorithm"},
		{weir.Per(1, time.Second).WithMaxDebt(-1), "Limit.MaxDebt"},
		{weir.Per(1e6, time.Second).WithMaxDebt(weir.MaxDebtUnits), ""},
		{weir.Per(1e6, time.Second).WithMaxDebt(weir.MaxDebtUnits + 1), "Limit.MaxDebt"},
		{weir.Per(1, time.Second).WithMaxDebt(1 << 31), ""},              // 68 years of debt
		{weir.Per(1, time.Second).WithMaxDebt(1 << 32), "Limit.MaxDebt"}, // 136 years > 100
		{weir.Per(1, time.Second).WithAlgorithm(weir.SlidingWindowLog).WithMaxDebt(1 << 40), ""},
		{weir.Concurrent(1, time.Second).WithMaxDebt(1), "Limit.MaxDebt"},
	}
	for _, tt := range tests {
		err := tt.l.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", tt.l, err)
			}
			continue
		}
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%+v: error %v, want field %s", tt.l, err, tt.field)
		}
	}
}

func TestAlgorithmText(t *testing.T) {
	for a := weir.TokenBucket; a <= weir.Concurrency; a++ {
		b, _ := a.MarshalText()
		var back weir.Algorithm
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Errorf("%v: round trip gave %v, %v", a, back, err)
		}
	}
	if s := weir.Algorithm(42).String(); !strings.Contains(s, "42") {
		t.Errorf("unknown algorithm prints %q", s)
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"100/s", "5/2s burst=10", "10/15m algo=fixed-window", "1/1h30m", "9/w name=x", "1/-1s", "1/us", "100/m debt=500"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := weir.ParseLimit(s)
		if err != nil {
			if !errors.Is(err, weir.ErrInvalid) {
				t.Fatalf("ParseLimit(%q): error %v does not match ErrInvalid", s, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimit(%q) returned an invalid limit: %v", s, err)
		}
		back, err := weir.ParseLimit(l.String())
		if err != nil || back != l.WithName("") {
			t.Fatalf("round trip of %q via %q: %+v, %v", s, l.String(), back, err)
		}
	})
}
