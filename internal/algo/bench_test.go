package algo

import (
	"testing"
)

// benchParams are the limits the benchmarks use: 1000 per second, so that
// a request every microsecond is mostly denied and one every millisecond
// always admitted.
var benchParams = []Params{
	{Kind: TokenBucket, Quota: 1000, Period: sec},
	{Kind: FixedWindow, Quota: 1000, Period: sec},
	{Kind: SlidingWindowCounter, Quota: 1000, Period: sec},
	{Kind: SlidingWindowLog, Quota: 1000, Period: sec},
	{Kind: Concurrency, Quota: 1000, Period: sec},
}

// benchSteps: "allow" advances 1ms per call (every call admitted), "deny"
// 1µs (after the first 1000, nearly every call denied).
var benchSteps = []struct {
	name string
	step int64
}{{"allow", ms}, {"deny", 1000}}

// BenchmarkDecide is one single-limit decision (Check, then Commit when
// admitted), per algorithm.
//
//	go test -run '^$' -bench 'BenchmarkDecide|BenchmarkCheck' -benchmem ./internal/algo
func BenchmarkDecide(b *testing.B) {
	for _, p := range benchParams {
		for _, st := range benchSteps {
			b.Run("kind="+kindNames[p.Kind]+"/"+st.name, func(b *testing.B) {
				ps := []Params{p}
				ss := []*State{{}}
				now := int64(base)
				b.ReportAllocs()
				for b.Loop() {
					now += st.step
					Decide(ps, ss, now, 1, 0, "lease", nil)
					if p.Kind == Concurrency && st.step == ms {
						Refund(&ps[0], ss[0], now, now, 1, "lease")
					}
				}
			})
		}
	}
}

// BenchmarkDecideParallel: the same decision on every P, each goroutine
// with its own state (the algorithms share nothing).
func BenchmarkDecideParallel(b *testing.B) {
	for _, p := range benchParams {
		b.Run("kind="+kindNames[p.Kind], func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ps := []Params{p}
				ss := []*State{{}}
				now := int64(base)
				for pb.Next() {
					now += ms
					Decide(ps, ss, now, 1, 0, "lease", nil)
					if p.Kind == Concurrency {
						Refund(&ps[0], ss[0], now, now, 1, "lease")
					}
				}
			})
		})
	}
}

// BenchmarkCheck is a peek (cost 0): the read-only path.
func BenchmarkCheck(b *testing.B) {
	for _, p := range benchParams {
		b.Run("kind="+kindNames[p.Kind], func(b *testing.B) {
			s := &State{}
			now := int64(base)
			for i := range 500 { // half full
				Commit(&p, s, now+int64(i)*ms, 1, leaseName(i))
			}
			now += 500 * ms
			b.ReportAllocs()
			for b.Loop() {
				Check(&p, s, now, 0, 0)
			}
		})
	}
}

// BenchmarkDecideMulti is the all-or-nothing protocol over three limits
// (a 10/s token bucket, a 500/h fixed window, a 1000/day counter).
func BenchmarkDecideMulti(b *testing.B) {
	ps := []Params{
		{Kind: TokenBucket, Quota: 10, Period: sec},
		{Kind: FixedWindow, Quota: 500, Period: hour},
		{Kind: SlidingWindowCounter, Quota: 1000, Period: day},
	}
	ss := []*State{{}, {}, {}}
	out := make([]Result, len(ps))
	now := int64(base)
	b.ReportAllocs()
	for b.Loop() {
		now += 10 * ms
		Decide(ps, ss, now, 1, 0, "", out)
	}
}

// TestZeroAllocs: the token bucket, fixed window and counter decide
// without allocating, admitted or denied.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, p := range benchParams[:3] {
		for _, st := range benchSteps {
			ps := []Params{p}
			ss := []*State{{}}
			out := make([]Result, 1)
			now := int64(base)
			allocs := testing.AllocsPerRun(10000, func() {
				now += st.step
				Decide(ps, ss, now, 1, 0, "", out)
				Check(&ps[0], ss[0], now, 0, 0)
			})
			if allocs != 0 {
				t.Errorf("%s/%s: %.1f allocs per decision", kindNames[p.Kind], st.name, allocs)
			}
		}
	}
}

// BenchmarkForce is one forced charge of 1 and one settlement of 1 per
// call, per algorithm but concurrency: the core of Limiter.Charge and of
// Reservation.Settle. "debt" steps 1µs per call, so the limit runs deep
// into debt (to its cap); "allow" 1ms, so it never does.
//
//	go test -run '^$' -bench BenchmarkForce -benchmem ./internal/algo
func BenchmarkForce(b *testing.B) {
	for _, p := range benchParams[:4] {
		for _, st := range []struct {
			name string
			step int64
		}{{"allow", ms}, {"debt", 1000}} {
			b.Run("kind="+kindNames[p.Kind]+"/"+st.name, func(b *testing.B) {
				p := p
				p.MaxDebt = 10_000
				ps := []Params{p}
				ss := []*State{{}}
				now := int64(base)
				b.ReportAllocs()
				for b.Loop() {
					now += st.step
					Force(ps, ss, now, 2, nil)
					Settle(&ps[0], ss[0], now, now, 1, "")
				}
			})
		}
	}
}

// TestForceZeroAllocs: charges and settlements on the token bucket, fixed
// window and counter do not allocate.
func TestForceZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, p := range benchParams[:3] {
		ps := []Params{p}
		ss := []*State{{}}
		out := make([]Result, 1)
		now := int64(base)
		allocs := testing.AllocsPerRun(10000, func() {
			now += 1000
			Force(ps, ss, now, 3, out)
			Settle(&ps[0], ss[0], now, now, 1, "")
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocs per charge and settlement", kindNames[p.Kind], allocs)
		}
	}
}
