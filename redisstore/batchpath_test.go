package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore/redistest"
)

// correctnessDeadline is the store deadline of tests that check what the
// store decides or writes, not how fast: a busy machine can stall a round
// trip well past the default 50 ms.
const correctnessDeadline = 30 * time.Second

// TestBatchPaths checks every field of decisions made in concurrent
// batches of single token-bucket takes, on both of the script's fast
// paths: batches whose keys are distinct (each state is saved as it is
// decided) and batches where keys repeat (states are kept by key and saved
// at the end). The clock stands still, so each key's decisions are exact
// whatever the batching.
func TestBatchPaths(t *testing.T) {
	s := frozenStore(t, "bp:")
	lim := weir.PerSecond(10).WithBurst(5).WithName("tb") // I = 100 ms, tau = 500 ms
	const ms = time.Millisecond

	// round makes n takes on each of 64 keys at once and checks each
	// key's decisions (in any order) against want; each decision's status
	// must repeat it.
	round := func(name string, n int, maxWait time.Duration, want []weir.Status) {
		t.Helper()
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got = map[string][]weir.Status{}
		)
		errs := make(chan error, 64*n)
		for i := range 64 * n {
			key := fmt.Sprintf("k%d", i%64)
			wg.Go(func() {
				st := make([]weir.Status, 1)
				d, err := s.Take(context.Background(), &weir.Request{
					Checks: []weir.Check{{Key: key, Limit: lim}}, Cost: 1, MaxWait: maxWait, Statuses: st,
				})
				ds := weir.Status{Allowed: d.Allowed, Remaining: d.Remaining, RetryAfter: d.RetryAfter, ResetAfter: d.ResetAfter, Delay: d.Delay}
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", key, err)
				case ds != st[0]:
					errs <- fmt.Errorf("%s: decision %+v, status %+v", key, ds, st[0])
				}
				mu.Lock()
				got[key] = append(got[key], ds)
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", name, err)
		}
		order := func(a, b weir.Status) int {
			return cmp.Or(cmp.Compare(b.Remaining, a.Remaining), cmp.Compare(a.ResetAfter, b.ResetAfter),
				cmp.Compare(a.RetryAfter, b.RetryAfter), cmp.Compare(a.Delay, b.Delay))
		}
		slices.SortFunc(want, order)
		for key, ds := range got {
			slices.SortFunc(ds, order)
			if !slices.Equal(ds, want) {
				t.Fatalf("%s: %s decided\n%+v\nwant\n%+v", name, key, ds, want)
			}
		}
	}
	ok := func(rem int64, reset time.Duration) weir.Status {
		return weir.Status{Allowed: true, Remaining: rem, ResetAfter: reset}
	}
	// One take per key: every batch has distinct keys.
	round("distinct", 1, 0, []weir.Status{ok(4, 100*ms)})
	// Six per key: keys repeat within batches. The bucket holds 4.
	denied := weir.Status{RetryAfter: 100 * ms, ResetAfter: 500 * ms}
	round("repeated", 6, 0, []weir.Status{ok(3, 200*ms), ok(2, 300*ms), ok(1, 400*ms), ok(0, 500*ms), denied, denied})
	// Takes that may wait: each is admitted with the delay of its place.
	delayed := func(d time.Duration) weir.Status {
		return weir.Status{Allowed: true, ResetAfter: 500*ms + d, Delay: d}
	}
	round("delayed", 2, time.Second, []weir.Status{delayed(100 * ms), delayed(200 * ms)})
	round("delayed, distinct", 1, time.Second, []weir.Status{delayed(300 * ms)})
}

// TestDistinct checks the test that chooses the script's path for a batch.
func TestDistinct(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	for _, tc := range []struct {
		keys []string
		want bool
	}{
		{nil, true},
		{[]string{"a"}, true},
		{[]string{"a", "b", "c"}, true},
		{[]string{"a", "b", "a"}, false},
		{many, true},
		{append(slices.Clone(many), "42"), false},
		{append(slices.Clone(many[:32]), "0"), false},
	} {
		if got := distinct(tc.keys); got != tc.want {
			t.Errorf("distinct(%d keys ending %q) = %v, want %v", len(tc.keys), tc.keys[max(0, len(tc.keys)-1):], got, tc.want)
		}
	}
}

// TestBatchMixedLimits runs concurrent takes on distinct keys whose limits
// and costs alternate, so that a batch's packed numbers change from one
// decision to the next and back (the store sends "" for a repeat, and the
// script keeps the last numbers it parsed).
func TestBatchMixedLimits(t *testing.T) {
	s := frozenStore(t, "ml:")
	const ms = time.Millisecond
	kinds := []struct {
		lim   weir.Limit
		cost  int64
		rem   int64
		reset time.Duration
	}{
		{weir.PerSecond(10).WithBurst(5).WithName("a"), 1, 4, 100 * ms}, // I = 100 ms
		{weir.PerSecond(20).WithBurst(3).WithName("b"), 2, 1, 100 * ms}, // I = 50 ms
		{weir.PerSecond(10).WithBurst(5).WithName("a"), 3, 2, 300 * ms},
		{weir.PerSecond(3).WithBurst(2).WithName("c"), 1, 1, 333334 * time.Microsecond}, // I = 1/3 s, rounded up
	}
	for rep := range 4 {
		var wg sync.WaitGroup
		errs := make(chan error, 256)
		for i := range 256 {
			k := kinds[i%len(kinds)]
			key := fmt.Sprintf("r%d-k%d", rep, i)
			wg.Go(func() {
				d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{{Key: key, Limit: k.lim}}, Cost: k.cost})
				if err != nil || !d.Allowed || d.Remaining != k.rem || d.ResetAfter != k.reset || d.Limit.Name != k.lim.Name {
					errs <- fmt.Errorf("%s (%s, cost %d): %+v, %v; want remaining %d, reset %v", key, k.lim.Name, k.cost, d, err, k.rem, k.reset)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}

// TestMalformedBatchWritesNothing sends the script fast-path calls whose
// second decision is malformed: the reply is the malformed-call marker and
// the first decision's key is not written, although on the distinct-keys
// path decisions are saved as they are made.
func TestMalformedBatchWritesNothing(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	s, err := New(client, WithPrefix("mf:"), WithDeadline(correctnessDeadline))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	lim := weir.PerHour(100).WithName("m")
	prep := func(key string) (string, []byte) {
		c, err := s.prepare(opTake, &weir.Request{Checks: []weir.Check{{Key: key, Limit: lim}}, Cost: 1})
		if err != nil {
			t.Fatal(err)
		}
		return c.keys[0], slices.Clone(c.args[0].([]byte))
	}
	ka, a := prep("a")
	kb, b := prep("b")
	otherOp := slices.Clone(b)
	otherOp[0] = 2 // a refund's op
	for _, tc := range []struct {
		name  string
		first any
		next  any
		ok    bool
	}{
		{"both well formed", a, b, true},
		{"second too short", a, b[:87], false},
		{"second of another op", a, otherOp, false},
		{"first repeats nothing", "", b, false},
		{"second is a cost", a, b[16:24], true},
		{"first is a cost", b[16:24], b, false},
		{"second is a short cost", a, b[16:23], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client.Del(ctx, ka, kb)
			for _, path := range []string{pathFastDistinct, pathFastRepeated} {
				r := s.eval(ctx, []string{ka, kb}, append(callHeader(nil, -1, false, 2, path), tc.first, tc.next))
				if err := r.Err(); err != nil {
					t.Fatalf("path %s: %v", path, err)
				}
				_, isArray := r.Val().([]any)
				if isArray == tc.ok {
					t.Fatalf("path %s: reply %#v", path, r.Val())
				}
				n := client.Exists(ctx, ka).Val()
				if tc.ok != (n == 1) {
					t.Fatalf("path %s: first key exists: %d", path, n)
				}
			}
		})
	}
}

// frozenStore returns a store on a fresh Redis whose clock stands still, so
// that concurrent decisions are exact whatever their batching.
func frozenStore(t *testing.T, prefix string) *Store {
	t.Helper()
	srv := redistest.Start(t)
	now := time.UnixMicro(1_800_000_000_000_000)
	s, err := New(srv.Client(), WithClock(func() time.Time { return now }), WithPrefix(prefix), WithDeadline(correctnessDeadline))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestGroupBlobs checks that a fast-path batch whose costs interleave is
// sent with equal packed numbers adjacent (the first in full, each other
// cost once as its cost alone, the repeats as "") and that every call
// still gets its own answer.
func TestGroupBlobs(t *testing.T) {
	s := frozenStore(t, "gb:")
	lim := weir.PerSecond(1000).WithBurst(100).WithName("gb")
	var batch []*call
	for i := range 12 {
		c, err := s.prepare(opTake, &weir.Request{Checks: []weir.Check{{Key: fmt.Sprint("k", i), Limit: lim}}, Cost: int64(1 + i%3)})
		if err != nil {
			t.Fatal(err)
		}
		c.deadline = s.mono() + int64(time.Minute)
		batch = append(batch, c)
	}
	want := map[*call]int64{}
	for i, c := range batch {
		want[c] = 100 - int64(1+i%3)
	}
	groups := s.group(slices.Clone(batch))
	if len(groups) != 1 || !groups[0].fast {
		t.Fatalf("%d groups (fast %v), want one on the fast path", len(groups), len(groups) == 1 && groups[0].fast)
	}
	full, costs := 0, 0
	for _, a := range groups[0].args[4:] {
		if b, ok := a.([]byte); ok && len(b) == 8 {
			costs++
		} else if ok && len(b) > 0 {
			full++
		}
	}
	if full != 1 || costs != 2 {
		t.Errorf("%d packed numbers and %d costs sent for one limit and 3 costs, want 1 and 2", full, costs)
	}
	s.run(batch)
	for _, c := range batch {
		<-c.done
		if c.err != nil {
			t.Fatal(c.err)
		}
		r := takeReply(c.out)
		if got := r[2]; r[0] != 1 || got != want[c] {
			t.Errorf("call with keys %v: allowed %d remaining %d, want 1 and %d", c.keys, r[0], got, want[c])
		}
	}
}
