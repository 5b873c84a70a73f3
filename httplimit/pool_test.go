package httplimit

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// jobLedger checks that every job ends up somewhere exactly once.
type jobLedger struct {
	mu    sync.Mutex
	done  map[int64]int
	codes map[int]int
}

func newLedger() *jobLedger { return &jobLedger{done: map[int64]int{}, codes: map[int]int{}} }

func (l *jobLedger) record(j *Job, resp *http.Response, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done[j.ID]++
	if err != nil {
		l.codes[-1]++
		return
	}
	l.codes[resp.StatusCode]++
}

func makeJobs(t *testing.T, n int) chan *Job {
	jobs := make(chan *Job, n)
	for i := range n {
		req, err := http.NewRequest("GET", "http://api.example/item", nil)
		if err != nil {
			t.Fatal(err)
		}
		jobs <- &Job{ID: int64(i), Request: req}
	}
	close(jobs)
	return jobs
}

// verifyNothingLost checks that each of n jobs was finished once, or
// returned unfinished, or is still in the channel.
func verifyNothingLost(t *testing.T, n int, l *jobLedger, undone []*Job, jobs chan *Job) {
	t.Helper()
	seen := map[int64]int{}
	for id, c := range l.done {
		seen[id] += c
	}
	for _, j := range undone {
		seen[j.ID]++
	}
	for j := range jobs {
		seen[j.ID]++
	}
	for i := range int64(n) {
		if seen[i] != 1 {
			t.Fatalf("job %d accounted for %d times, want 1", i, seen[i])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d jobs accounted for, want %d", len(seen), n)
	}
}

// The acceptance test: 40 workers against a strict server (4/s, burst 1,
// 429 over it) for 30 s reach at least 95% of 4/s with at most 1% of 429s
// and lose no job.
func TestPoolAgainstStrictServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := mustNew(t, Policy{Limiter: mustLimiter(t, newStore(), weir.PerSecond(4).WithBurst(1))}).Handler(okHandler)
		base := &handlerTransport{h: server}
		ledger := newLedger()
		p := &Pool{
			Client:  &http.Client{Transport: base},
			Limiter: mustLimiter(t, newStore(), weir.PerSecond(4).WithBurst(1)),
			Workers: 40,
			Done:    ledger.record,
		}
		const n = 1000
		jobs := makeJobs(t, n)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		undone, err := p.Run(ctx, jobs)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run error %v, want the deadline", err)
		}
		st := p.Stats()
		t.Log(st)
		verifyNothingLost(t, n, ledger, undone, jobs)
		if rate := float64(ledger.codes[200]) / 30; rate < 0.95*4 {
			t.Fatalf("%d jobs done in 30 s = %.2f/s, want >= 95%% of 4/s", ledger.codes[200], rate)
		}
		if sent := base.sent.Load(); st.Limited*100 > sent {
			t.Fatalf("%d of %d requests got 429 (> 1%%)", st.Limited, sent)
		}
		if st.Processed != int64(ledger.codes[200]) || st.Elapsed != 30*time.Second {
			t.Fatalf("stats %+v disagree with %v", st, ledger.codes)
		}
		if len(undone) > 41 {
			t.Fatalf("%d jobs returned unfinished; at most one per worker and one queued are expected", len(undone))
		}
	})
}

// A server that refuses some requests: every job is finished exactly once,
// limited ones after being put back.
func TestPoolRequeuesLimitedJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1)%3 == 0 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		ledger := newLedger()
		p := &Pool{
			Client:  &http.Client{Transport: &handlerTransport{h: server}},
			Limiter: mustLimiter(t, newStore(), weir.PerSecond(20).WithBurst(1)),
			Workers: 8,
			Done:    ledger.record,
		}
		const n = 60
		jobs := makeJobs(t, n)
		undone, err := p.Run(t.Context(), jobs)
		if err != nil || len(undone) != 0 {
			t.Fatalf("Run = %d undone, %v", len(undone), err)
		}
		verifyNothingLost(t, n, ledger, undone, jobs)
		st := p.Stats()
		if ledger.codes[200] != n || st.Retries == 0 || st.Retries != st.Limited || st.Processed != n {
			t.Fatalf("codes %v, stats %+v", ledger.codes, st)
		}
	})
}

// MaxAttempts bounds a job that is always refused: it finishes with its
// last 429.
func TestPoolMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		})
		ledger := newLedger()
		p := &Pool{Client: &http.Client{Transport: &handlerTransport{h: server}}, Workers: 2, MaxAttempts: 3, Done: ledger.record}
		jobs := makeJobs(t, 4)
		if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
			t.Fatalf("Run = %v, %v", undone, err)
		}
		if ledger.codes[429] != 4 || p.Stats().Retries != 8 {
			t.Fatalf("codes %v, retries %d; want four 429s after 3 attempts each", ledger.codes, p.Stats().Retries)
		}
	})
}

// Cancelling the context lets requests in flight finish and returns the
// jobs not sent.
func TestPoolGracefulShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * time.Second) // slow, and unaware of the client's cancellation
			w.WriteHeader(http.StatusOK)
		})
		ledger := newLedger()
		p := &Pool{
			Client:  &http.Client{Transport: &handlerTransport{h: server}},
			Limiter: mustLimiter(t, newStore(), weir.PerSecond(10).WithBurst(1)),
			Workers: 5,
			Done:    ledger.record,
		}
		const n = 100
		jobs := makeJobs(t, n)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		undone, err := p.Run(ctx, jobs)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run error %v", err)
		}
		verifyNothingLost(t, n, ledger, undone, jobs)
		if ledger.codes[200] != 5 || ledger.codes[-1] != 0 {
			t.Fatalf("codes %v: want the 5 requests in flight to finish with 200", ledger.codes)
		}
		if got := p.Stats().Elapsed; got != 2*time.Second+400*time.Millisecond {
			t.Fatalf("Run took %v, want 2.4s (last in-flight request sent at 0.4s)", got)
		}
	})
}

func TestPoolErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, p := range []*Pool{{Workers: -1}, {MaxAttempts: -2}} {
			if _, err := p.Run(t.Context(), nil); !errors.Is(err, weir.ErrInvalid) {
				t.Errorf("Run with %+v: %v", p, err)
			}
		}
		// A job whose body cannot be replayed, and one whose server is
		// unreachable, finish with an error: they are not lost.
		ledger := newLedger()
		failing := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection refused") })
		p := &Pool{Client: &http.Client{Transport: failing}, Done: ledger.record}
		jobs := make(chan *Job, 3)
		bad, _ := http.NewRequest("POST", "http://h/", nil)
		bad.Body = struct {
			*strings.Reader
			noClose
		}{strings.NewReader("x"), noClose{}}
		bad.GetBody = nil
		good, _ := http.NewRequest("GET", "http://h/", nil)
		jobs <- &Job{ID: 0, Request: bad}
		jobs <- &Job{ID: 1, Request: good}
		jobs <- &Job{ID: 2}
		close(jobs)
		if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
			t.Fatalf("Run = %v, %v", undone, err)
		}
		if ledger.codes[-1] != 3 || p.Stats().Failed != 3 {
			t.Fatalf("codes %v, stats %+v", ledger.codes, p.Stats())
		}
	})
}

type noClose struct{}

func (noClose) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestStatsString(t *testing.T) {
	s := Stats{Processed: 60, Elapsed: 16 * time.Second, Mean: 1033 * time.Millisecond, P50: time.Second, P99: 2 * time.Second, Retries: 2}
	want := "[60] requests processed in [16.0] seconds with average time [1033.0] ms, total throughput: [3.75] rps, p50 [1000.0] ms, p99 [2000.0] ms, retries [2]"
	if got := s.String(); got != want {
		t.Fatalf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	mean, p50, p99 := h.summary()
	within := func(got, want time.Duration) bool { return got >= want*97/100 && got <= want*103/100 }
	if mean != 500500*time.Microsecond || !within(p50, 500*time.Millisecond) || !within(p99, 990*time.Millisecond) {
		t.Fatalf("mean %v p50 %v p99 %v", mean, p50, p99)
	}
	for _, us := range []uint64{0, 1, 63, 64, 65, 1000, 1 << 20, 1<<63 + 5} {
		i := histIndex(us)
		if v := histValue(i); us >= 64 && us < 1<<40 && (v < float64(us)*0.96 || v > float64(us)*1.04) {
			t.Errorf("bucket of %d is worth %v", us, v)
		}
	}
}
