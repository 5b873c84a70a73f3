package localquota_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/memstore"
)

// distant is a shared store whose every call takes rtt: a store behind a
// round trip.
type distant struct {
	weir.Store
	rtt time.Duration
}

func (s *distant) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	time.Sleep(s.rtt)
	return s.Store.Take(ctx, req)
}

func (s *distant) Refund(ctx context.Context, req *weir.Request) error {
	time.Sleep(s.rtt)
	return s.Store.Refund(ctx, req)
}

// TestClosedLoopManyKeys: 16 callers in a closed loop (each makes its next
// decision when its last returns) go round robin over 1000 keys of a fast
// limit, 64 keys at a time, over a store 3 ms away. Their first pass over
// the keys waits on 1000 Takes, 16 at a time: 190 ms, longer than the
// hold, so when they come back to a key its first block has lapsed. The
// store used to stay in that state: every decision found its key's block
// lapsed, waited for a Take, and the callers came back to each key later
// than its block lives (blocks are refilled by the decisions of a key that
// spent in the last half hold). Refreshes by the janitor must bring it out:
// after the first second, no decision waits.
func TestClosedLoopManyKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memstore.New()
		defer mem.Close()
		s, err := localquota.New(&distant{Store: mem, rtt: 3 * time.Millisecond}, localquota.WithHold(hold))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const keys, callers, chunk = 1000, 16, 64
		lim := weir.PerSecond(1_000_000)
		var next atomic.Int64
		var phase1 localquota.Stats
		var mu sync.Mutex
		start := time.Now()
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for time.Since(start) < 2*time.Second {
					k := next.Add(chunk) - chunk
					for j := range int64(chunk) {
						c := weir.Check{Key: fmt.Sprint("k", (k+j)%keys), Limit: lim}
						d, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{c}, Cost: 1})
						if err != nil || !d.Allowed {
							t.Errorf("denied or failed under a limit that admits all: %+v, %v", d, err)
							return
						}
					}
					// The callers' own work: a pass over the keys takes
					// 2.5 ms when no decision waits.
					time.Sleep(2500 * time.Microsecond)
					mu.Lock()
					if phase1.Local == 0 && time.Since(start) >= time.Second {
						phase1 = s.Stats()
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		end := s.Stats()
		waits, decisions := end.Waits-phase1.Waits, end.Local-phase1.Local
		t.Logf("first second: %+v", phase1)
		t.Logf("second second: %d decisions, %d waits, %d fetches, %d blocks, %d refills, %d refreshes",
			decisions, waits, end.Fetches-phase1.Fetches, end.Blocks-phase1.Blocks, end.Refills-phase1.Refills, end.Refreshes-phase1.Refreshes)
		if waits > 0 {
			t.Errorf("%d of %d decisions in the second second waited on the store", waits, decisions)
		}
	})
}
