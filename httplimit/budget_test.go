package httplimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// tokenUpstream answers every request with a fixed cost in tokens, in the
// X-Tokens header and in a JSON usage body, and records when each request
// arrived and what it cost.
type tokenUpstream struct {
	cost int64
	mu   sync.Mutex
	at   []time.Time
	used []int64
}

func (u *tokenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.at = append(u.at, time.Now())
	u.used = append(u.used, u.cost)
	u.mu.Unlock()
	w.Header().Set("X-Tokens", strconv.FormatInt(u.cost, 10))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"answer":"…","usage":{"total_tokens":%d}}`, u.cost)
}

// checkBound checks that the tokens served from the first request to each
// request before end stay within 600 + 10·t + slack (600 per minute) and
// returns their sum.
func (u *tokenUpstream) checkBound(t *testing.T, end time.Time, slack int64) int64 {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	var sum int64
	for i, at := range u.at {
		if !at.Before(end) {
			break
		}
		sum += u.used[i]
		elapsed := at.Sub(u.at[0])
		if bound := 600 + int64(elapsed/(100*time.Millisecond)) + slack; sum > bound {
			t.Fatalf("request %d at %v: %d tokens served, bound %d", i, elapsed, sum, bound)
		}
	}
	return sum
}

func headerTokens(resp *http.Response) (int64, bool) {
	n, err := strconv.ParseInt(resp.Header.Get("X-Tokens"), 10, 64)
	return n, err == nil
}

func bodyTokens(body []byte) (int64, bool) {
	var a struct {
		Usage *struct {
			TotalTokens int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(body, &a) != nil || a.Usage == nil {
		return 0, false
	}
	return a.Usage.TotalTokens, true
}

// TestTransportBudget: clients keep a tokens-per-minute budget (600 per
// minute: a burst of 600, then 10 per second) whose cost per request is
// known only from the answer, alone or as two processes sharing a store,
// for a minute of fake time. At every instant the tokens the upstream
// served since the first request stay within 600 + 10·t + P·E (P senders
// at once, E the excess of a cost over its estimate), and a cost below
// the estimate gives the difference back, so more requests go through
// than the estimates alone would let.
func TestTransportBudget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		estimate    int64
		cost        int64
		body        bool // settle from the body (else the header)
		procs, per  int  // transports sharing the store, senders each
		minRequests int  // at least this many in the minute
		maxRequests int
	}{
		// 1200 tokens in the minute at 80 each: 15 requests, plus the
		// excess of the last ones in flight.
		{"actual above the estimate, header", 50, 80, false, 1, 1, 15, 16},
		{"actual above the estimate, body", 50, 80, true, 1, 1, 15, 16},
		{"two processes, four senders", 50, 80, false, 2, 2, 15, 19},
		// At 20 each, with the estimate of 100 free before each send:
		// (1200 − 100)/20 = 55 requests, where the estimates alone would
		// allow 12. Senders that wait at once reserve their slots at the
		// estimate (a refund comes back to the later ones), so four get
		// fewer through, but still far more than 12.
		{"actual below the estimate", 100, 20, false, 1, 1, 55, 56},
		{"actual below the estimate, shared", 100, 20, true, 2, 2, 30, 56},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &tokenUpstream{cost: tc.cost}
				store := newStore()
				start := time.Now()
				var wg sync.WaitGroup
				for range tc.procs {
					b := &Budget{Limit: weir.PerMinute(600).WithName("tokens"), Estimate: func(*http.Request) int64 { return tc.estimate }}
					if tc.body {
						b.BodyCost = bodyTokens
					} else {
						b.Cost = headerTokens
					}
					tr := &Transport{Base: &handlerTransport{h: up}, Store: store, Limit: weir.PerSecond(1000), Budget: b}
					client := &http.Client{Transport: tr}
					for range tc.per {
						wg.Go(func() {
							for time.Since(start) < time.Minute {
								resp, err := client.Get("http://api.example/v1/x")
								if err != nil {
									t.Error(err)
									return
								}
								_, _ = io.ReadAll(resp.Body)
								resp.Body.Close()
							}
						})
					}
				}
				wg.Wait()
				sum := up.checkBound(t, start.Add(time.Minute), int64(tc.procs*tc.per)*max(tc.cost-tc.estimate, 0))
				n := 0
				for _, at := range up.at {
					if at.Sub(start) < time.Minute {
						n++
					}
				}
				t.Logf("%d requests in the minute, %d tokens", n, sum)
				if n < tc.minRequests || n > tc.maxRequests {
					t.Errorf("%d requests in the minute, want %d to %d", n, tc.minRequests, tc.maxRequests)
				}
			})
		})
	}
}

// TestPoolBudget: two Pools (as two processes) of 10 workers each share a
// budget of 600 tokens per minute through one store; each job costs 80
// tokens against an estimate of 50. Every job is done once, and the
// tokens served stay within 600 + 10·t + 20·30 at every request.
func TestPoolBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &tokenUpstream{cost: 80}
		store := newStore()
		const procs, workers, n = 2, 10, 30
		var wg sync.WaitGroup
		for range procs {
			tr := &Transport{Base: &handlerTransport{h: up}, Store: store, Limit: weir.PerSecond(1000), Timeout: 30 * time.Second,
				Budget: &Budget{Limit: weir.PerMinute(600).WithName("tokens"), Estimate: func(*http.Request) int64 { return 50 }, BodyCost: bodyTokens}}
			ledger := newLedger()
			p := &Pool{Transport: tr, Workers: workers, Done: ledger.record}
			jobs := makeJobs(t, n)
			wg.Go(func() {
				if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
					t.Errorf("Run: %d undone, %v", len(undone), err)
				}
				verifyNothingLost(t, n, ledger, nil, jobs)
				if ledger.codes[200] != n {
					t.Errorf("codes %v", ledger.codes)
				}
			})
		}
		wg.Wait()
		sum := up.checkBound(t, time.Now().Add(time.Hour), procs*workers*30)
		if sum != procs*n*80 {
			t.Errorf("%d tokens served, want %d", sum, procs*n*80)
		}
	})
}

func TestTransportBudgetErrors(t *testing.T) {
	est := func(*http.Request) int64 { return 1 }
	for _, tc := range []struct {
		b     Budget
		field string
	}{
		{Budget{Limit: weir.PerMinute(10)}, "Transport.Budget.Estimate"},
		{Budget{Limit: weir.Concurrent(2, time.Minute), Estimate: est}, "Transport.Budget.Limit"},
		{Budget{Limit: weir.Limit{Quota: -1, Period: time.Second}, Estimate: est}, "Transport.Budget.Limit"},
		{Budget{Limit: weir.PerMinute(10), Estimate: est, MaxBody: -1}, "Transport.Budget.MaxBody"},
	} {
		tr := &Transport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) { panic("sent") }), Budget: &tc.b}
		req, _ := http.NewRequest("GET", "http://x/", nil)
		_, err := tr.RoundTrip(req)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, weir.ErrInvalid) {
			t.Errorf("%+v: %v, want an error naming %s", tc.b, err, tc.field)
		}
	}
}
