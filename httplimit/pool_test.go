package httplimit

import (
	"context"
	"errors"
	"net/http"
	"strconv"
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
			Transport: &Transport{Base: &handlerTransport{h: server}, Limit: weir.PerSecond(20)},
			Workers:   8,
			Done:      ledger.record,
		}
		const n = 60
		jobs := makeJobs(t, n)
		undone, err := p.Run(t.Context(), jobs)
		if err != nil || len(undone) != 0 {
			t.Fatalf("Run = %d undone, %v", len(undone), err)
		}
		verifyNothingLost(t, n, ledger, undone, jobs)
		st := p.Stats()
		if ledger.codes[200] != n || st.Retries == 0 || st.Retries != st.Limited || st.Done != n || st.OK != n || st.Sent != n+st.Retries || st.Queued != 0 || st.InFlight != 0 {
			t.Fatalf("codes %v, stats %+v", ledger.codes, st)
		}
	})
}

// A slip (one 429 while paced to a told limit) does not stop the other
// jobs, but the refused job goes again only after its Retry-After.
func TestPoolSlipWaitsRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		arrivals := map[string][]time.Time{}
		var all []time.Time
		server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Query().Get("id")
			mu.Lock()
			arrivals[id] = append(arrivals[id], time.Now())
			all = append(all, time.Now())
			first := len(arrivals[id]) == 1
			mu.Unlock()
			if id == "3" && first {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		ledger := newLedger()
		p := &Pool{
			Transport: &Transport{Base: &handlerTransport{h: server}, Limit: weir.PerSecond(10)},
			Workers:   8,
			Done:      ledger.record,
		}
		const n = 40
		jobs := make(chan *Job, n)
		for i := range n {
			req, err := http.NewRequest("GET", "http://api.example/item?id="+strconv.Itoa(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			jobs <- &Job{ID: int64(i), Request: req}
		}
		close(jobs)
		undone, err := p.Run(t.Context(), jobs)
		if err != nil || len(undone) != 0 {
			t.Fatalf("Run = %d undone, %v", len(undone), err)
		}
		verifyNothingLost(t, n, ledger, undone, jobs)
		got := arrivals["3"]
		if len(got) != 2 || got[1].Sub(got[0]) < 2*time.Second {
			t.Fatalf("job 3 arrived at %v; want twice, the second 2s (its Retry-After) after the first", got)
		}
		others := 0
		for _, a := range all {
			if a.After(got[0]) && a.Before(got[0].Add(2*time.Second)) {
				others++
			}
		}
		if others < 15 {
			t.Fatalf("%d other sends in the 2s after the slip, want about 20 (10/s): the key was paused", others)
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
		p := &Pool{Transport: &Transport{Base: &handlerTransport{h: server}}, Workers: 2, MaxAttempts: 3, Done: ledger.record}
		jobs := makeJobs(t, 4)
		if undone, err := p.Run(t.Context(), jobs); err != nil || len(undone) != 0 {
			t.Fatalf("Run = %v, %v", undone, err)
		}
		if st := p.Stats(); ledger.codes[429] != 4 || st.Retries != 8 || st.Limited != 12 || st.OK != 0 || st.Done != 4 {
			t.Fatalf("codes %v, stats %+v; want four 429s after 3 attempts each", ledger.codes, st)
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
			Transport: &Transport{Base: &handlerTransport{h: server}, Limit: weir.PerSecond(10)},
			Workers:   5,
			Done:      ledger.record,
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
		// Sends are 102 ms apart (10 per second plus the first-contact
		// margin of 1/50): the fifth left at 408 ms and took 2 s.
		if got := p.Stats().Elapsed; got != 2408*time.Millisecond {
			t.Fatalf("Run took %v, want 2.408s", got)
		}
		if st := p.Stats(); st.Queued != 0 || st.InFlight != 0 {
			t.Fatalf("stats after Run: %+v", st)
		}
	})
}

func TestPoolErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, p := range []*Pool{{Workers: -1}, {MaxAttempts: -2}, {Transport: &Transport{Limit: weir.Concurrent(2, time.Second)}}, {Transport: &Transport{Timeout: -1}}} {
			if _, err := p.Run(t.Context(), nil); !errors.Is(err, weir.ErrInvalid) {
				t.Errorf("Run with %+v: %v", p, err)
			}
		}
		// A job whose body cannot be replayed, and one whose server is
		// unreachable, finish with an error: they are not lost.
		ledger := newLedger()
		failing := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection refused") })
		p := &Pool{Transport: &Transport{Base: failing}, Done: ledger.record}
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
		if ledger.codes[-1] != 3 || p.Stats().Failed != 3 || p.Stats().Queued != 0 {
			t.Fatalf("codes %v, stats %+v", ledger.codes, p.Stats())
		}
	})
}

type noClose struct{}

func (noClose) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestStatsString(t *testing.T) {
	s := Stats{Done: 120, OK: 119, Failed: 1, Limited: 2, Retries: 2, InFlight: 3, Queued: 37, Elapsed: 30 * time.Second,
		Rate: 3.99, Limit: 4, Source: "told", Mean: 200 * time.Millisecond, P99: 201 * time.Millisecond}
	want := "done 120 (ok 119, failed 1), 429s 2, retries 2, in flight 3, queued 37, rate 3.99/s of 4.00/s (99.8%, told), latency avg 200.0ms p99 201.0ms, 30.0s"
	if got := s.String(); got != want {
		t.Fatalf("String() =\n%s\nwant\n%s", got, want)
	}
	s.Limit = 0
	if got := s.String(); !strings.Contains(got, "rate 3.99/s of unknown,") {
		t.Fatalf("String() without a limit = %s", got)
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
