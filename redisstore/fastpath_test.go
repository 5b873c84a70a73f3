package redisstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
	"github.com/weir-go/weir/redisstore/redistest"
)

// TestFastPathMatchesGeneral runs the same random traces of single
// token-bucket takes through the script's fast path (entry.lua, a
// straight-line copy of kind0_gcra.lua) and through its general path
// (main.lua with kind0_gcra.lua), on two stores that share one Redis and
// one fake clock, and requires every reply word and every stored state to
// be equal, including on a key that holds data of another type. Batches
// are sent in a fixed order, some with distinct keys
// (pathFastDistinct) and some with repeated keys (pathFastRepeated).
func TestFastPathMatchesGeneral(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	var clock atomic.Int64
	clock.Store(1_800_000_000_000_000)
	now := func() time.Time { return time.UnixMicro(clock.Load()) }
	fast, err := New(client, WithClock(now), WithPrefix("f:"), WithDeadline(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	general, err := New(client, WithClock(now), WithPrefix("g:"), WithDeadline(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer general.Close()
	general.noFast = true

	limits := []weir.Limit{
		weir.PerSecond(10).WithBurst(5),         // I = 100 ms
		weir.Per(7, 3*time.Second).WithBurst(4), // I = 3/7 s: TATs with a fraction
		weir.PerMinute(1).WithBurst(3),
		weir.Per(1_000_003, 24*time.Hour),             // tau·q beyond 2^53: muldiv's long multiplication
		weir.Per(3_000_007, time.Second).WithBurst(7), // I below 1 µs: fractions of a µs count
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "wrong"}
	ctx := context.Background()
	// Under "wrong", every limit's key holds a hash: both paths must fail
	// those decisions alike, and leave the key alone.
	for _, s := range []*Store{fast, general} {
		for _, l := range limits {
			if err := client.HSet(ctx, s.redisKey(engine.Name(l), "wrong", weir.TokenBucket), "x", "1").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	paths, outcomes := map[string]int{}, map[string]int{}
	costOnly := 0 // takes sent as their cost alone
	for round := range 400 {
		n := 1 + rng.IntN(8)
		reqs := make([]weir.Request, n)
		for i := range reqs {
			l := limits[rng.IntN(len(limits))]
			r := weir.Request{
				Checks: []weir.Check{{Key: keys[rng.IntN(len(keys))], Limit: l}},
				Cost:   rng.Int64N(min(l.Capacity(), 5) + 1),
			}
			if rng.IntN(4) == 0 {
				r.Cost = l.Capacity() // conforms only to a full bucket
			}
			if rng.IntN(3) == 0 {
				r.MaxWait = time.Duration(rng.Int64N(int64(3 * time.Second)))
			}
			if rng.IntN(2) == 0 {
				r.Statuses = make([]weir.Status, 1)
			}
			reqs[i] = r
		}
		outF, pathF, argsF := runBatch(t, fast, reqs)
		outG, pathG, _ := runBatch(t, general, reqs)
		if pathG != pathGeneral || pathF == pathGeneral {
			t.Fatalf("round %d: paths %q and %q", round, pathF, pathG)
		}
		paths[pathF]++
		for _, a := range argsF {
			if b, ok := a.([]byte); ok && len(b) == 8 {
				costOnly++
			}
		}
		for i := range reqs {
			switch r := takeReply(outG[i]); {
			case r.wrongType():
				outcomes["wrong type"]++
			case !r.allowed():
				outcomes["denied"]++
			case r.status().Delay > 0:
				outcomes["reserved"]++
			default:
				outcomes["admitted"]++
			}
			if reqs[i].Checks[0].Key == "wrong" && reqs[i].Cost == 0 {
				// A peek on a key of another type: the fast path, which
				// learns a key's type only when it writes it, answers as
				// for an empty key (unless a take in the batch failed on
				// it), the general path fails (docs/redis.md, Fast path).
				f, g := takeReply(outF[i]), takeReply(outG[i])
				empty := weir.Status{Allowed: true, Remaining: reqs[i].Checks[0].Limit.Capacity()}
				if !g.wrongType() || !(f.wrongType() || f.status() == empty) {
					t.Fatalf("round %d, decision %d: a peek on a key of another type: fast path %v, general path %v", round, i, outF[i], outG[i])
				}
				continue
			}
			if !slices.Equal(outF[i], outG[i]) {
				t.Fatalf("round %d, decision %d (%+v, key %s, limit %v): fast path %v, general path %v",
					round, i, reqs[i], reqs[i].Checks[0].Key, reqs[i].Checks[0].Limit, outF[i], outG[i])
			}
		}
		for _, k := range keys {
			for _, l := range limits {
				name := engine.Name(l)
				vf, errF := client.Dump(ctx, fast.redisKey(name, k, weir.TokenBucket)).Result()
				vg, errG := client.Dump(ctx, general.redisKey(name, k, weir.TokenBucket)).Result()
				if vf != vg || (errF == nil) != (errG == nil) {
					t.Fatalf("round %d: key %s, limit %v: fast path stored %q (%v), general path %q (%v)", round, k, l, vf, errF, vg, errG)
				}
			}
		}
		clock.Add(rng.Int64N(400_000))
	}
	if paths[pathFastDistinct] == 0 || paths[pathFastRepeated] == 0 || len(outcomes) != 4 || costOnly == 0 {
		t.Fatalf("batches by path %v, decisions %v, %d sent as their cost: the trace misses a case", paths, outcomes, costOnly)
	}
	t.Logf("batches by path %v, decisions %v, %d sent as their cost", paths, outcomes, costOnly)
}

// runBatch sends reqs as one batch, in order, and returns each decision's
// reply words (in the general path's form), the path the call took and its
// arguments.
func runBatch(t *testing.T, s *Store, reqs []weir.Request) ([][]int64, string, []any) {
	t.Helper()
	batch := make([]*call, len(reqs))
	for i := range reqs {
		c, err := s.prepare(opTake, &reqs[i])
		if err != nil {
			t.Fatal(err)
		}
		c.deadline = s.mono() + int64(time.Minute) // do sets it
		batch[i] = c
	}
	groups := s.group(batch)
	if len(groups) != 1 {
		t.Fatalf("%d groups", len(groups))
	}
	path, args := fmt.Sprint(groups[0].args[3]), groups[0].args
	s.run(batch)
	out := make([][]int64, len(batch))
	for i, c := range batch {
		<-c.done
		if c.err != nil {
			t.Fatal(c.err)
		}
		out[i] = slices.Clone(c.out)
	}
	return out, path, args
}

// TestForcedOpsTakeGeneralPath: the fast path handles plain takes only;
// a charge (a forced take) and a settlement (a forced refund) go to the
// general path with their own op, and carry each check's debt cap.
func TestForcedOpsTakeGeneralPath(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lim := weir.PerSecond(10).WithMaxDebt(7)
	cases := []struct {
		op     int
		force  bool
		wantOp int64
		fast   bool
	}{
		{opTake, false, opTake, true},
		{opTake, true, opCharge, false},
		{opRefund, false, opRefund, false},
		{opRefund, true, opSettle, false},
	}
	for _, c := range cases {
		call, err := s.prepare(c.op, &weir.Request{Checks: []weir.Check{{Key: "k", Limit: lim}}, Cost: 3, Force: c.force})
		if err != nil {
			t.Fatal(err)
		}
		b := call.args[0].([]byte)
		op := int64(binary.LittleEndian.Uint64(b))
		debt := int64(binary.LittleEndian.Uint64(b[8*(headerWords+checkWords-1):]))
		if call.fast != c.fast || op != c.wantOp || debt != 7 || len(b) != 8*(headerWords+checkWords) {
			t.Errorf("prepare(%d, force %v): fast %v op %d debt cap %d len %d", c.op, c.force, call.fast, op, debt, len(b))
		}
	}
}
