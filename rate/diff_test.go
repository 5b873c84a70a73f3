package rate_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weir-go/weir/rate"
)

// limitPool mixes "round" limits (whole-nanosecond intervals, exact in weir),
// awkward fractions, the special values, and extremes.
var limitPool = []rate.Limit{
	0, -1, rate.Inf, 1, 2, 10, 100, 1000, 1e6, 5e6, 1e9,
	0.7692307692307693, 1.0 / 3, 7.0 / 60, 0.1, 0.01, 1e-3, 3.7, 123.456, 9999.5, 1e-10,
}

func pickLimit(rng *rand.Rand) rate.Limit {
	if rng.IntN(3) == 0 {
		return rate.Limit(math.Pow(10, -3+7*rng.Float64())) // log-uniform in [1e-3, 1e4]
	}
	return limitPool[rng.IntN(len(limitPool))]
}

func pickDuration(rng *rand.Rand) time.Duration {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return time.Duration(rng.IntN(1000)) // nanoseconds
	case 2:
		return time.Duration(rng.IntN(20)) * d / 4
	case 3:
		return time.Duration(rng.Int64N(int64(2 * time.Second)))
	case 4:
		return time.Duration(rng.Int64N(int64(time.Minute)))
	default:
		return time.Duration(rng.Int64N(int64(time.Millisecond)))
	}
}

// randomScript returns a random scenario. With back set, time sometimes jumps
// backwards.
func randomScript(rng *rand.Rand, nops int, back bool) (rate.Limit, int, []op) {
	r := pickLimit(rng)
	b := rng.IntN(12)
	if rng.IntN(8) == 0 {
		b = rng.IntN(2000)
	}
	var ops []op
	var now time.Duration
	reservations := 0
	for range nops {
		if back && rng.IntN(5) == 0 {
			now -= pickDuration(rng)
		} else {
			now += pickDuration(rng)
		}
		o := op{dt: now}
		n := rng.IntN(b+2) - rng.IntN(2)*rng.IntN(3)
		switch p := rng.IntN(100); {
		case p < 35:
			o.kind, o.n = "allow", n
		case p < 58:
			o.kind, o.n = "reserve", n
			reservations++
		case p < 68:
			o.kind = "tokens"
		case p < 85:
			if reservations == 0 {
				continue
			}
			o.kind, o.n = "cancel", rng.IntN(reservations)
		case p < 92:
			o.kind, o.l = "limit", pickLimit(rng)
		default:
			o.kind, o.n = "burst", rng.IntN(12)
		}
		ops = append(ops, o)
	}
	return r, b, ops
}

// TestDifferentialRandom compares weir and x/time over many seeded random
// scenarios: forward-only scripts (all methods including CancelAt) and
// scripts that go back in time (compared with x/time at max(t, last)).
func TestDifferentialRandom(t *testing.T) {
	scenarios, opsPer := 400, 60
	if testing.Short() || raceEnabled {
		scenarios = 150
	}
	marginal, total := 0, 0
	for _, back := range []bool{false, true} {
		for seed := range uint64(scenarios) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			r, b, ops := randomScript(rng, opsPer, back)
			t0 := time.Now()
			if seed%2 == 1 {
				t0 = t0.Round(0)
			}
			h := newHarness(t, t0, r, b, back)
			if h.runUntilMarginal(ops) {
				marginal++
			}
			total += len(ops)
			if t.Failed() {
				t.Fatalf("seed %d back=%v limit=%v burst=%d", seed, back, r, b)
			}
		}
	}
	t.Logf("%d operations compared; %d scenarios ended early at a marginal decision", total, marginal)
	if marginal > scenarios/50 {
		t.Errorf("too many marginal decisions: %d", marginal)
	}
}

// FuzzCompat is the fuzzing entry point for the same differential check.
// The input bytes are decoded into a script: a header picks the limit, burst
// and direction; then each 6-byte record is one operation.
func FuzzCompat(f *testing.F) {
	f.Add([]byte{3, 2, 0, 0, 1, 0, 0, 0, 100, 1, 1, 0, 0, 0, 0, 2})
	f.Add([]byte{7, 9, 1, 1, 2, 5, 0, 0, 10, 4, 1, 1, 0, 0, 0, 3, 3, 1, 200, 0, 1, 1})
	f.Add([]byte{2, 1, 0, 0, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		r := limitPool[int(data[0])%len(limitPool)]
		b := int(data[1]) % 20
		back := data[2]&1 == 1
		var ops []op
		var now time.Duration
		reservations := 0
		for rec := data[3:]; len(rec) >= 6; rec = rec[6:] {
			step := time.Duration(binary.LittleEndian.Uint32(rec[2:6])) % (10 * time.Second)
			if back && rec[0]&0x80 != 0 {
				now -= step
			} else {
				now += step
			}
			o := op{dt: now, n: int(rec[1]%24) - 2}
			switch rec[0] % 7 {
			case 0, 1:
				o.kind = "allow"
			case 2:
				o.kind = "reserve"
				reservations++
			case 3:
				o.kind = "tokens"
			case 4:
				if reservations == 0 {
					continue
				}
				o.kind, o.n = "cancel", int(rec[1])%reservations
			case 5:
				o.kind, o.l = "limit", limitPool[int(rec[1])%len(limitPool)]
			case 6:
				o.kind, o.n = "burst", int(rec[1]%20)
			}
			ops = append(ops, o)
		}
		h := newHarness(t, time.Now(), r, b, back)
		h.runUntilMarginal(ops)
	})
}
