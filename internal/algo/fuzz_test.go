package algo

import (
	"errors"
	"math"
	"testing"
)

// Fuzz targets: random Params and random operations must never panic, every
// Result stays in range (Remaining in [0, capacity], durations >= 0), and
// the admitted traffic satisfies the algorithm's bound (checkTrace, the
// same checker as the R01 property tests). Invalid Params must be rejected
// by Validate with a *ParamError instead.
//
// They run on their seed corpora (testdata/fuzz/Fuzz*) in every go test;
// to fuzz:
//
//	go test -run '^$' -fuzz '^FuzzGCRA$' -fuzztime 30s ./internal/algo

// byteSource feeds runTrace from fuzz bytes; once they run out it returns 0.
type byteSource struct{ b []byte }

func (s *byteSource) next() uint64 {
	var v uint64
	for range 4 {
		v <<= 8
		if len(s.b) > 0 {
			v |= uint64(s.b[0])
			s.b = s.b[1:]
		}
	}
	return v
}

func (s *byteSource) IntN(n int) int { return int(s.next() % uint64(n)) }

func (s *byteSource) Int64N(n int64) int64 {
	if n <= 1 {
		return 0
	}
	// Scale the 32-bit value to [0, n): small and large steps both occur.
	v := s.next()
	q, _, _ := mulDiv(int64(v), n, 1<<32)
	return q
}

// fuzzParams validates p; it reports false (after checking the error) when
// p is invalid.
func fuzzParams(t *testing.T, p Params) bool {
	err := p.Validate()
	if err == nil {
		return true
	}
	var pe *ParamError
	if !errors.As(err, &pe) || !errors.Is(err, ErrParams) || pe.Field == "" {
		t.Fatalf("Validate(%+v) = %v: not a *ParamError", p, err)
	}
	return false
}

// fuzzStart maps any int64 to a start instant at which every algorithm's
// arithmetic stays in range.
func fuzzStart(start int64) int64 {
	if start == math.MinInt64 {
		start = 0
	}
	if start < 0 {
		start = -(-start % (maxNow / 2))
	}
	return start % maxNow
}

func fuzzTrace(t *testing.T, p Params, start int64, ops []byte) {
	if len(ops) > 2000 {
		ops = ops[:2000]
	}
	tr := runTrace(t, 0, p, fuzzStart(start), len(ops)/8+1, &byteSource{ops})
	if err := checkTrace(tr); err != nil {
		t.Fatalf("%+v from %d: %v", p, start, err)
	}
}

func FuzzGCRA(f *testing.F) {
	f.Add(int64(10), int64(sec), int64(0), int64(base), []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add(int64(3), int64(sec), int64(1), int64(0), []byte("reservation refund peek take take take refund"))
	f.Add(int64(90), int64(1), int64(150), int64(base), []byte("\xff\x00\xff\x00\x80\x80\x80\x80\x01\x02\x03\x04\xff\xff\xff\xff"))
	f.Add(int64(math.MaxInt64), int64(MaxPeriod), int64(0), int64(-1), []byte("\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0"))
	f.Add(int64(1), int64(MaxPeriod), int64(0), int64(math.MaxInt64), []byte("\x01\x01\x01\x01"))
	f.Add(int64(0), int64(-1), int64(-1), int64(0), []byte{})
	f.Fuzz(func(t *testing.T, quota, period, burst, start int64, ops []byte) {
		p := Params{Kind: TokenBucket, Quota: quota, Period: period, Burst: burst}
		if !fuzzParams(t, p) {
			return
		}
		fuzzTrace(t, p, start, ops)
	})
}

func FuzzWindows(f *testing.F) {
	for k := range byte(3) {
		f.Add(k, int64(3), int64(sec), int64(base), []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"))
		f.Add(k, int64(100), int64(7), int64(-5), []byte("take take take peek refund take take take take refund"))
		f.Add(k, int64(math.MaxInt64), int64(MaxPeriod), int64(1), []byte("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6"))
	}
	f.Add(byte(200), int64(0), int64(0), int64(0), []byte{})
	f.Fuzz(func(t *testing.T, kind byte, quota, period, start int64, ops []byte) {
		kinds := []Kind{FixedWindow, SlidingWindowCounter, SlidingWindowLog}
		k := Kind(kind)
		if int(kind) < 3*len(kinds) {
			k = kinds[int(kind)%len(kinds)]
		}
		p := Params{Kind: k, Quota: quota, Period: period}
		if !fuzzParams(t, p) {
			return
		}
		if k == SlidingWindowLog && p.Quota > 1<<20 {
			p.Quota = 1 << 20 // the log holds up to Quota events
		}
		fuzzTrace(t, p, start, ops)
	})
}

func FuzzConcurrency(f *testing.F) {
	f.Add(int64(2), int64(10*sec), int64(base), []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add(int64(1), int64(1), int64(0), []byte("acquire release acquire expire"))
	f.Add(int64(math.MaxInt64), int64(MaxPeriod), int64(-7), []byte("\xff\x00\xff\x00\xff\x00"))
	f.Fuzz(func(t *testing.T, quota, ttl, start int64, ops []byte) {
		p := Params{Kind: Concurrency, Quota: quota, Period: ttl}
		if !fuzzParams(t, p) {
			return
		}
		fuzzTrace(t, p, start, ops)
	})
}

// FuzzDecide: two limits of random kinds; a denied request changes neither
// state, an admitted one charges both exactly as Commit would.
func FuzzDecide(f *testing.F) {
	f.Add(byte(0), byte(1), int64(10), int64(1), int64(sec), []byte("\x00\x10\x20\x30\x40\x50\x60\x70"))
	f.Add(byte(3), byte(2), int64(5), int64(3), int64(7), []byte("decide decide decide"))
	f.Fuzz(func(t *testing.T, k1, k2 byte, q1, q2, period int64, ops []byte) {
		ps := []Params{
			{Kind: Kind(k1 % byte(numKinds)), Quota: q1, Period: period},
			{Kind: Kind(k2 % byte(numKinds)), Quota: q2, Period: period},
		}
		for i := range ps {
			if !fuzzParams(t, ps[i]) {
				return
			}
			if ps[i].Kind == SlidingWindowLog {
				ps[i].Quota = min(ps[i].Quota, 1<<20)
			}
		}
		src := &byteSource{ops}
		ss := []*State{{}, {}}
		now := int64(base)
		capacity := min(ps[0].Capacity(), ps[1].Capacity())
		for i := range min(len(ops)/4, 200) {
			dt := src.Int64N(min(period, MaxPeriod/4) + 1)
			if dt > maxNow-now {
				break // stay in the algorithms' domain: never wrap now
			}
			now += dt
			cost := src.Int64N(min(capacity, 5) + 1)
			before := []*State{cloneState(ss[0]), cloneState(ss[1])}
			ok, k, agg := Decide(ps, ss, now, cost, 0, leaseName(i), nil)
			if k < 0 || k > 1 || agg.Remaining < 0 || agg.RetryAfter < 0 || agg.ResetAfter < 0 {
				t.Fatalf("step %d: %v %d %+v", i, ok, k, agg)
			}
			for j := range ss {
				want := before[j]
				if ok && cost > 0 {
					want = cloneState(before[j])
					Commit(&ps[j], want, now, cost, leaseName(i))
				}
				if !statesEqual(want, ss[j]) {
					t.Fatalf("step %d (allowed %v): limit %d state %+v, want %+v", i, ok, j, *ss[j], *want)
				}
			}
		}
	})
}

// FuzzForce: random limits (any kind but concurrency, any debt cap) and
// random takes, charges (up to MaxDebtUnits) and settlements never panic;
// every Result stays in range (Remaining in [0, capacity], durations ≥ 0,
// 0 ≤ Debt ≤ the debt cap) and a charge is always Allowed.
//
//	go test -run '^$' -fuzz '^FuzzForce$' -fuzztime 30s ./internal/algo
func FuzzForce(f *testing.F) {
	f.Add(byte(0), int64(10), int64(sec), int64(0), int64(5), int64(base), []byte("charge take settle charge charge"))
	f.Add(byte(1), int64(4), int64(sec), int64(0), int64(0), int64(base), []byte("\xff\xff\xff\xff\x00\x00\x00\x01\x02\x03"))
	f.Add(byte(2), int64(6), int64(7), int64(0), int64(1), int64(0), []byte("\x80\x80\x80\x80\x80\x80\x80\x80"))
	f.Add(byte(3), int64(math.MaxInt64), int64(MaxPeriod), int64(0), int64(MaxDebtUnits), int64(-1), []byte("\x01\xff\x02\xfe"))
	f.Add(byte(0), int64(1), int64(MaxPeriod), int64(1), int64(0), int64(math.MaxInt64), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, kind byte, quota, period, burst, maxDebt, start int64, ops []byte) {
		p := Params{Kind: Kind(kind % 4), Quota: quota, Period: period, Burst: burst, MaxDebt: maxDebt}
		if !fuzzParams(t, p) {
			return
		}
		if len(ops) > 2000 {
			ops = ops[:2000]
		}
		src := &byteSource{ops}
		s := &State{}
		// Instants from the epoch on: the zero State is a TAT of 0, which
		// an instant before 1970 sees in the future (as in debt).
		now := fuzzStart(start)
		if now < 0 {
			now = -now
		}
		var last int64 = -1
		for range len(ops)/8 + 1 {
			now = min(maxNow, satAdd(now, src.Int64N(satMul(3, p.Period)+1)))
			var r Result
			switch src.IntN(3) {
			case 0:
				_, _, r = Decide([]Params{p}, []*State{s}, now, src.Int64N(p.Capacity()+1), 0, "", nil)
			case 1:
				cost := src.Int64N(MaxDebtUnits + 1)
				if src.IntN(2) == 0 {
					cost = src.Int64N(3*min(p.Quota, 1<<40) + 1)
				}
				_, r = Force([]Params{p}, []*State{s}, now, cost, nil)
				if !r.Allowed {
					t.Fatalf("%+v: charge of %d denied: %+v", p, cost, r)
				}
				last = now
			default:
				at := now
				if last >= 0 {
					at = last
				}
				Settle(&p, s, now, at, src.Int64N(p.Capacity()+1), "")
				continue
			}
			if r.Remaining < 0 || r.Remaining > p.Capacity() || r.RetryAfter < 0 || r.ResetAfter < 0 || r.Delay < 0 || r.Debt < 0 || r.Debt > p.DebtCap() {
				t.Fatalf("%+v at %d: result out of range: %+v (debt cap %d)", p, now, r, p.DebtCap())
			}
		}
	})
}
