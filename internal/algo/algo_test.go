package algo

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Durations in nanoseconds.
const (
	ms     = int64(1e6)
	sec    = int64(1e9)
	minute = 60 * sec
	hour   = 60 * minute
	day    = 24 * hour
	year   = 365 * day
)

// base is a present-day instant aligned to a UTC day (2023-11-14 00:00 UTC),
// so that windows of a second, minute, hour or day start there.
const base = 19675 * day

// envInt reads an integer from the environment, or returns def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// op kinds of a table step.
const (
	opTake   = iota // Check, then Commit if allowed
	opRefund        // Refund, then want is a peek
	opPeek          // Check with cost 0, nothing committed
)

// step is one line of a table test: an operation at base+at.
type step struct {
	at      int64 // offset from base
	op      int
	cost    int64
	maxWait int64
	refAt   int64  // opRefund: offset of the instant the units were charged for
	lease   string // Concurrency holder
	want    Result
}

// runSteps replays steps against a fresh state and compares every Result.
func runSteps(t *testing.T, p Params, steps []step) *State {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("params %+v: %v", p, err)
	}
	s := &State{}
	for i, st := range steps {
		now := base + st.at
		var got Result
		switch st.op {
		case opTake:
			got = Check(&p, s, now, st.cost, st.maxWait)
			if got.Allowed {
				Commit(&p, s, now, st.cost, st.lease)
			}
		case opPeek:
			got = Check(&p, s, now, 0, 0)
		case opRefund:
			Refund(&p, s, now, base+st.refAt, st.cost, st.lease)
			got = Check(&p, s, now, 0, 0)
		}
		if got != st.want {
			t.Fatalf("step %d (op %d at %+dns cost %d maxWait %d):\n got %+v\nwant %+v", i, st.op, st.at, st.cost, st.maxWait, got, st.want)
		}
	}
	return s
}

func allow(remaining, reset int64) Result {
	return Result{Allowed: true, Remaining: remaining, ResetAfter: reset}
}

func deny(remaining, retry, reset int64) Result {
	return Result{Remaining: remaining, RetryAfter: retry, ResetAfter: reset}
}

func reserve(remaining, reset, delay int64) Result {
	return Result{Allowed: true, Remaining: remaining, ResetAfter: reset, Delay: delay}
}

// cloneState deep-copies s.
func cloneState(s *State) *State {
	c := *s
	c.Log = append([]Event(nil), s.Log...)
	c.Leases = append([]Lease(nil), s.Leases...)
	c.Waiters = append([]Waiter(nil), s.Waiters...)
	return &c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		p     Params
		field string // "" = valid
	}{
		{"token bucket", Params{Kind: TokenBucket, Quota: 10, Period: sec}, ""},
		{"token bucket burst", Params{Kind: TokenBucket, Quota: 10, Period: sec, Burst: 100}, ""},
		{"1ns period", Params{Kind: FixedWindow, Quota: 1, Period: 1}, ""},
		{"100 years period", Params{Kind: SlidingWindowLog, Quota: 1, Period: MaxPeriod}, ""},
		{"max quota", Params{Kind: SlidingWindowCounter, Quota: math.MaxInt64, Period: sec}, ""},
		{"max quota bucket", Params{Kind: TokenBucket, Quota: math.MaxInt64, Period: MaxPeriod}, ""},
		{"burst 2^31", Params{Kind: TokenBucket, Quota: 1e9, Period: sec, Burst: 1 << 31}, ""},
		{"concurrency", Params{Kind: Concurrency, Quota: 5, Period: minute}, ""},
		{"unknown kind", Params{Kind: numKinds, Quota: 1, Period: 1}, "Kind"},
		{"kind 255", Params{Kind: 255, Quota: 1, Period: 1}, "Kind"},
		{"zero quota", Params{Kind: TokenBucket, Period: sec}, "Quota"},
		{"negative quota", Params{Kind: FixedWindow, Quota: -1, Period: sec}, "Quota"},
		{"min quota", Params{Kind: FixedWindow, Quota: math.MinInt64, Period: sec}, "Quota"},
		{"zero period", Params{Kind: TokenBucket, Quota: 1}, "Period"},
		{"negative period", Params{Kind: SlidingWindowCounter, Quota: 1, Period: -sec}, "Period"},
		{"period above 100y", Params{Kind: FixedWindow, Quota: 1, Period: MaxPeriod + 1}, "Period"},
		{"max period", Params{Kind: Concurrency, Quota: 1, Period: math.MaxInt64}, "Period"},
		{"negative burst", Params{Kind: TokenBucket, Quota: 1, Period: sec, Burst: -1}, "Burst"},
		{"burst on window", Params{Kind: FixedWindow, Quota: 1, Period: sec, Burst: 2}, "Burst"},
		{"burst on lease", Params{Kind: Concurrency, Quota: 1, Period: sec, Burst: 1}, "Burst"},
		// tiny rate: 1 per 100 years with a burst of 2 spans 200 years
		{"burst span 200y", Params{Kind: TokenBucket, Quota: 1, Period: MaxPeriod, Burst: 2}, "Burst"},
		{"burst MaxInt64", Params{Kind: TokenBucket, Quota: 1, Period: sec, Burst: math.MaxInt64}, "Burst"},
		{"burst MaxInt64 fast", Params{Kind: TokenBucket, Quota: math.MaxInt64, Period: 1, Burst: math.MaxInt64}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tt.p, err)
				}
				return
			}
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Fatalf("Validate(%+v) = %v, want a *ParamError on %s", tt.p, err, tt.field)
			}
			if !errors.Is(err, ErrParams) {
				t.Fatalf("%v does not match ErrParams", err)
			}
			if pe.Reason == "" || pe.Error() == "" {
				t.Fatalf("empty reason in %#v", pe)
			}
		})
	}
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		p    Params
		want int64
	}{
		{Params{Kind: TokenBucket, Quota: 10, Period: sec}, 10},
		{Params{Kind: TokenBucket, Quota: 10, Period: sec, Burst: 3}, 3},
		{Params{Kind: FixedWindow, Quota: 7, Period: sec}, 7},
		{Params{Kind: Concurrency, Quota: 2, Period: sec}, 2},
	}
	for _, tt := range tests {
		if got := tt.p.Capacity(); got != tt.want {
			t.Errorf("%+v.Capacity() = %d, want %d", tt.p, got, tt.want)
		}
	}
}

func TestArith(t *testing.T) {
	t.Run("mulDiv", func(t *testing.T) {
		tests := []struct{ a, b, c, q, r int64 }{
			{7, 3, 2, 10, 1},
			{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, 0},
			{math.MaxInt64, 2, 4, math.MaxInt64 / 2, 2},
			{0, 5, 3, 0, 0},
		}
		for _, tt := range tests {
			q, r, ok := mulDiv(tt.a, tt.b, tt.c)
			if !ok || q != tt.q || r != tt.r {
				t.Errorf("mulDiv(%d,%d,%d) = %d,%d,%v want %d,%d", tt.a, tt.b, tt.c, q, r, ok, tt.q, tt.r)
			}
		}
		if _, _, ok := mulDiv(math.MaxInt64, 4, 2); ok {
			t.Error("mulDiv overflow not reported")
		}
	})
	t.Run("satAdd", func(t *testing.T) {
		tests := []struct{ a, b, want int64 }{
			{1, 2, 3},
			{math.MaxInt64, 1, math.MaxInt64},
			{math.MinInt64, -1, math.MinInt64},
			{math.MaxInt64, math.MinInt64, -1},
			{-5, 3, -2},
		}
		for _, tt := range tests {
			if got := satAdd(tt.a, tt.b); got != tt.want {
				t.Errorf("satAdd(%d,%d) = %d want %d", tt.a, tt.b, got, tt.want)
			}
		}
	})
	t.Run("windowStart", func(t *testing.T) {
		tests := []struct{ now, p, want int64 }{
			{10, 3, 9}, {9, 3, 9}, {-1, 3, -3}, {-3, 3, -3}, {0, 5, 0},
		}
		for _, tt := range tests {
			if got := windowStart(tt.now, tt.p); got != tt.want {
				t.Errorf("windowStart(%d,%d) = %d want %d", tt.now, tt.p, got, tt.want)
			}
		}
		if ceilDiv(7, 2) != 4 || ceilDiv(6, 2) != 3 || ceilDiv(0, 2) != 0 {
			t.Error("ceilDiv")
		}
	})
}

// newRand returns a deterministic generator for a seed and a stream.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// leaseName is a distinct lease id per i.
func leaseName(i int) string { return "lease-" + strconv.Itoa(i) }
