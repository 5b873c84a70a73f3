package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/httplimit"
)

// The self-limiting client on the real clock, over loopback sockets: the
// matrix of httplimit's TestClientMatrix (which runs in fake time in CI)
// against an upstream that enforces an exact sliding log, beside the
// pattern most Go users write by hand: a shared golang.org/x/time/rate
// limiter and a retry after Retry-After. It takes minutes of wall clock, so
// it runs only when asked:
//
//	WEIR_CLIENT_SOAK=1 go test -run 'TestClientRealClock$' -v -timeout 40m ./bench
//
// WEIR_CLIENT_CELLS=4per1s,100per1s,10per1m picks limits, and
// WEIR_CLIENT_LATENCIES=0s,200ms,1s latencies.

// soakAPI is the upstream: an exact sliding log of quota per window for
// everyone, decided on arrival, answering after latency, with the draft-11
// fields unless bare, and Retry-After (rounded up) on a 429.
type soakAPI struct {
	quota   int
	window  time.Duration
	latency time.Duration
	bare    bool // no rate fields: only 429 and Retry-After

	mu          sync.Mutex
	log         []time.Time
	admitted    int
	limited     int
	first, last time.Time
	at429       []time.Duration // since the first admitted request
}

func (a *soakAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a.mu.Lock()
	cut := now.Add(-a.window)
	i := 0
	for i < len(a.log) && !a.log[i].After(cut) {
		i++
	}
	a.log = a.log[i:]
	ok := len(a.log) < a.quota
	if ok {
		a.log = append(a.log, now)
		if a.admitted == 0 {
			a.first = now
		}
		a.last = now
		a.admitted++
	} else {
		a.limited++
		a.at429 = append(a.at429, now.Sub(a.first))
	}
	remaining := a.quota - len(a.log)
	reset := time.Duration(0)
	if len(a.log) > 0 {
		reset = a.log[0].Add(a.window).Sub(now)
	}
	a.mu.Unlock()
	secs := func(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
	if !a.bare {
		w.Header().Set("RateLimit-Policy", `"api";q=`+strconv.Itoa(a.quota)+`;w=`+strconv.FormatInt(int64(a.window/time.Second), 10))
		w.Header().Set("RateLimit", `"api";r=`+strconv.Itoa(remaining)+`;t=`+strconv.FormatInt(secs(reset), 10))
	}
	if a.latency > 0 {
		t := time.NewTimer(a.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs(reset), 1), 10))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// soakResult is one cell's outcome, counted by the upstream (utilisation,
// 429s) and the client (failed jobs).
type soakResult struct {
	util    float64
	limited int
	sent    int
	failed  int64
	at429   []time.Duration
}

func (a *soakAPI) result(failed int64) soakResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := soakResult{limited: a.limited, sent: a.admitted + a.limited, failed: failed, at429: append([]time.Duration(nil), a.at429...)}
	if span := a.last.Sub(a.first); a.admitted > 1 && span > 0 {
		r.util = float64(a.admitted-1) / span.Seconds() / (float64(a.quota) / a.window.Seconds())
	}
	return r
}

func serveSoak(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// runWeir is the recommended setup: a Pool over a Transport with a 30 s
// Timeout, told the limit or not.
func runWeir(ctx context.Context, url string, quota int, window time.Duration, told bool, workers, jobs int) (int64, error) {
	ht := &http.Transport{MaxIdleConnsPerHost: workers}
	defer ht.CloseIdleConnections()
	tr := &httplimit.Transport{Base: ht, Timeout: 30 * time.Second}
	if told {
		tr.Limit = weir.Per(int64(quota), window)
	}
	p := &httplimit.Pool{Transport: tr, Workers: workers}
	ch := make(chan *httplimit.Job, jobs)
	for i := range jobs {
		req, _ := http.NewRequest("GET", url, nil)
		ch <- &httplimit.Job{ID: int64(i), Request: req}
	}
	close(ch)
	_, err := p.Run(ctx, ch)
	if os.Getenv("WEIR_CLIENT_DEBUG") != "" {
		fmt.Printf("%s %+v\n", p.Stats(), tr.Pace(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")))
	}
	return p.Stats().Failed, err
}

// runXRate is the hand-written pattern: one x/time/rate limiter at r per
// second (burst 1) shared by the workers; each job waits for it, sends with
// an http.Client whose 30 s Timeout starts after the wait, and on a 429
// sleeps for Retry-After and tries again.
func runXRate(ctx context.Context, url string, r float64, workers, jobs int) (int64, error) {
	ht := &http.Transport{MaxIdleConnsPerHost: workers}
	defer ht.CloseIdleConnections()
	client := &http.Client{Transport: ht, Timeout: 30 * time.Second}
	lim := rate.NewLimiter(rate.Limit(r), 1)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(jobs) {
				for {
					if err := lim.Wait(ctx); err != nil {
						failed.Add(1)
						return
					}
					resp, err := client.Get(url)
					if err != nil {
						failed.Add(1)
						break
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusTooManyRequests {
						break
					}
					ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					time.Sleep(time.Duration(max(ra, 1)) * time.Second)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load(), ctx.Err()
}

func TestClientRealClock(t *testing.T) {
	if os.Getenv("WEIR_CLIENT_SOAK") != "1" {
		t.Skip("a real-clock soak of minutes: set WEIR_CLIENT_SOAK=1")
	}
	cells := map[string]bool{"4per1s": true, "100per1s": true, "10per1m": true}
	if v := os.Getenv("WEIR_CLIENT_CELLS"); v != "" {
		cells = map[string]bool{}
		for _, c := range strings.Split(v, ",") {
			cells[c] = true
		}
	}
	limits := []struct {
		name      string
		quota     int
		window    time.Duration
		workers   int
		jobs      int
		latencies []time.Duration
	}{
		{"4per1s", 4, time.Second, 40, 80, []time.Duration{0, 200 * time.Millisecond, time.Second}},
		{"100per1s", 100, time.Second, 400, 4000, []time.Duration{0, 200 * time.Millisecond, time.Second}},
		{"10per1m", 10, time.Minute, 40, 15, []time.Duration{200 * time.Millisecond}},
	}
	impls := []struct {
		name string
		run  func(ctx context.Context, url string, quota int, window time.Duration, workers, jobs int) (int64, error)
	}{
		{"weir told", func(ctx context.Context, url string, q int, w time.Duration, workers, jobs int) (int64, error) {
			return runWeir(ctx, url, q, w, true, workers, jobs)
		}},
		{"weir learnt", func(ctx context.Context, url string, q int, w time.Duration, workers, jobs int) (int64, error) {
			return runWeir(ctx, url, q, w, false, workers, jobs)
		}},
		{"x/time/rate at the limit", func(ctx context.Context, url string, q int, w time.Duration, workers, jobs int) (int64, error) {
			return runXRate(ctx, url, float64(q)/w.Seconds(), workers, jobs)
		}},
		{"x/time/rate at 95%", func(ctx context.Context, url string, q int, w time.Duration, workers, jobs int) (int64, error) {
			return runXRate(ctx, url, 0.95*float64(q)/w.Seconds(), workers, jobs)
		}},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "| limit | latency | client | utilisation | 429s | jobs failed |\n|---|---|---|---|---|---|\n")
	for _, l := range limits {
		if !cells[l.name] {
			continue
		}
		for _, lat := range l.latencies {
			if v := os.Getenv("WEIR_CLIENT_LATENCIES"); v != "" && !slices.Contains(strings.Split(v, ","), lat.String()) {
				continue
			}
			for _, impl := range impls {
				api := &soakAPI{quota: l.quota, window: l.window, latency: lat}
				url := serveSoak(t, api)
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
				failed, err := impl.run(ctx, url, l.quota, l.window, l.workers, l.jobs)
				cancel()
				if err != nil {
					t.Errorf("%s %v %s: %v", l.name, lat, impl.name, err)
				}
				r := api.result(failed)
				line := fmt.Sprintf("| %d per %v, %d workers, %d jobs | %v | %s | %.1f%% | %d of %d (%.2f%%) | %d |",
					l.quota, l.window, l.workers, l.jobs, lat, impl.name, 100*r.util, r.limited, r.sent, 100*float64(r.limited)/float64(max(r.sent, 1)), r.failed)
				if len(r.at429) > 0 && len(r.at429) <= 5 {
					t.Logf("%s: 429s at %v after the first admitted request", impl.name, r.at429)
				}
				t.Log(line)
				table.WriteString(line + "\n")
			}
		}
	}
	t.Log("\n" + table.String())
}
