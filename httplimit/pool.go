package httplimit

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-go/weir"
)

// A Job is one request for a [Pool] to send.
type Job struct {
	// ID is the caller's name for the job; the pool does not use it.
	ID int64
	// Request is sent once per attempt, as a clone with a fresh body: its
	// Body must be nil or have GetBody set (http.NewRequest sets it for
	// bytes, strings and bytes.Buffer readers).
	Request *http.Request
	// Attempts counts the times the request was sent.
	Attempts int
}

// A Pool sends jobs with many workers under a shared rate: Workers
// goroutines take jobs from a channel, each waits for a unit of Limiter
// (and of Concurrency, if set) and sends its job with Client.
//
// With a token-bucket Limiter of burst 1, waiting workers reserve their
// turns in order, so requests leave evenly spaced (GCRA pacing) rather than
// in bursts of Workers. A job answered 429 Too Many Requests (or 503 with a
// Retry-After) is put back at the front of the queue, and every worker
// pauses for the Retry-After, so no job is dropped for being limited.
//
// When the context ends the pool stops taking jobs; jobs already sent
// finish (their requests do not inherit the cancellation, so give Client a
// Timeout), and jobs taken but not sent are returned by Run. Stats can be
// read while Run works.
type Pool struct {
	// Client sends the requests. nil means http.DefaultClient.
	Client *http.Client
	// Limiter is the shared rate: each attempt waits for one unit under
	// Key. A token bucket with burst 1 gives the most even spacing. nil
	// means no rate limit.
	Limiter *weir.Limiter
	// Key is the Limiter key; "" means "pool".
	Key string
	// Concurrency, if set, is a limiter with a Concurrency limit: each
	// attempt holds one unit of it under Key while in flight.
	Concurrency *weir.Limiter
	// Workers is the number of goroutines; 0 means 1.
	Workers int
	// MaxAttempts bounds the attempts of a job that keeps being limited;
	// 0 means no bound.
	MaxAttempts int
	// Done is called once for every finished job, from the worker that
	// finished it: with the response (its body is closed when Done returns)
	// or the error of the last attempt. It may be nil.
	Done func(job *Job, resp *http.Response, err error)

	started   atomic.Int64 // unix ns of Run's start
	stopped   atomic.Int64 // unix ns of Run's end, 0 while running
	processed atomic.Int64
	failed    atomic.Int64
	retries   atomic.Int64
	limited   atomic.Int64
	hist      histogram

	pauseMu sync.Mutex
	paused  time.Time
}

// Stats are a pool's counters.
type Stats struct {
	Processed int64         // jobs finished (Done called), whatever their status
	Failed    int64         // jobs finished with an error, not a response
	Retries   int64         // attempts put back in the queue after a 429 or 503
	Limited   int64         // 429 responses received
	Elapsed   time.Duration // since Run started (until it returned)
	// Mean, P50 and P99 are job latencies: from the moment a worker took
	// the job for its last attempt to the response, including the wait for
	// the limiter.
	Mean, P50, P99 time.Duration
}

// Throughput is Processed per second of Elapsed.
func (s Stats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Processed) / s.Elapsed.Seconds()
}

// String formats s as
//
//	[60] requests processed in [16.0] seconds with average time [1033.0] ms, total throughput: [3.75] rps, p50 [1000.0] ms, p99 [2000.0] ms, retries [0]
func (s Stats) String() string {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return fmt.Sprintf("[%d] requests processed in [%.1f] seconds with average time [%.1f] ms, total throughput: [%.2f] rps, p50 [%.1f] ms, p99 [%.1f] ms, retries [%d]",
		s.Processed, s.Elapsed.Seconds(), ms(s.Mean), s.Throughput(), ms(s.P50), ms(s.P99), s.Retries)
}

// Stats returns the pool's counters so far.
func (p *Pool) Stats() Stats {
	s := Stats{
		Processed: p.processed.Load(),
		Failed:    p.failed.Load(),
		Retries:   p.retries.Load(),
		Limited:   p.limited.Load(),
	}
	if start := p.started.Load(); start != 0 {
		end := p.stopped.Load()
		if end == 0 {
			end = time.Now().UnixNano()
		}
		s.Elapsed = time.Duration(end - start)
	}
	s.Mean, s.P50, s.P99 = p.hist.summary()
	return s
}

var errNoRequest = errors.New("httplimit: job has no request")

type outcome struct {
	job     *Job
	requeue bool // limited: send again
	undone  bool // not sent because the context ended
}

// Run sends the jobs received from jobs until jobs is closed and every job
// is finished, or ctx ends. It returns the jobs it took but did not finish
// (empty unless ctx ended) and ctx's error if ctx ended; jobs still in the
// channel stay there. Run must not be called twice at once.
func (p *Pool) Run(ctx context.Context, jobs <-chan *Job) ([]*Job, error) {
	if p.Workers < 0 {
		return nil, &weir.FieldError{Field: "Pool.Workers", Reason: fmt.Sprintf("must not be negative (got %d)", p.Workers)}
	}
	if p.MaxAttempts < 0 {
		return nil, &weir.FieldError{Field: "Pool.MaxAttempts", Reason: fmt.Sprintf("must not be negative (got %d)", p.MaxAttempts)}
	}
	n := max(p.Workers, 1)
	p.started.Store(time.Now().UnixNano())
	p.stopped.Store(0)
	defer func() { p.stopped.Store(time.Now().UnixNano()) }()

	work := make(chan *Job)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				results <- p.attempt(ctx, j)
			}
		}()
	}

	// The dispatcher: a queue of put-back jobs in front of the channel.
	var queue []*Job
	var undone []*Job
	inflight := 0
	in := jobs
	stopping := false
	for {
		if !stopping && ctx.Err() != nil {
			stopping = true
		}
		if stopping {
			if inflight == 0 {
				break
			}
			o := <-results
			inflight--
			if o.requeue || o.undone {
				undone = append(undone, o.job)
			}
			continue
		}
		if in == nil && len(queue) == 0 && inflight == 0 {
			break
		}
		var send chan *Job
		var head *Job
		recv := in
		if len(queue) > 0 {
			send, head, recv = work, queue[0], nil
		}
		select {
		case send <- head:
			queue = queue[1:]
			inflight++
		case j, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			if j != nil {
				queue = append(queue, j)
			}
		case o := <-results:
			inflight--
			if o.requeue {
				queue = append([]*Job{o.job}, queue...)
			} else if o.undone {
				undone = append(undone, o.job)
			}
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	undone = append(undone, queue...)
	return undone, ctx.Err()
}

// attempt sends j once.
func (p *Pool) attempt(ctx context.Context, j *Job) outcome {
	start := time.Now()
	if err := p.waitPause(ctx); err != nil {
		return outcome{job: j, undone: true}
	}
	key := p.Key
	if key == "" {
		key = "pool"
	}
	if p.Concurrency != nil {
		lease, err := p.Concurrency.Acquire(ctx, key, 1)
		if err != nil {
			return p.failedWait(ctx, j, err, start)
		}
		defer func() { _ = lease.Release(ctx) }()
	}
	if p.Limiter != nil {
		if _, err := p.Limiter.Wait(ctx, key); err != nil {
			return p.failedWait(ctx, j, err, start)
		}
	}
	if j.Request == nil {
		p.finish(j, nil, errNoRequest, start)
		return outcome{job: j}
	}
	// The request runs to completion even if ctx ends now.
	req, err := rewind(j.Request.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		p.finish(j, nil, err, start)
		return outcome{job: j}
	}
	j.Attempts++
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		p.finish(j, nil, err, start)
		return outcome{job: j}
	}
	limited := resp.StatusCode == http.StatusTooManyRequests
	ra, hasRA := ParseRetryAfter(resp.Header, time.Now())
	if limited || (resp.StatusCode == http.StatusServiceUnavailable && hasRA) {
		if limited {
			p.limited.Add(1)
		}
		if !hasRA {
			ra = time.Second
		}
		p.pause(ra)
		if p.MaxAttempts == 0 || j.Attempts < p.MaxAttempts {
			drain(resp)
			p.retries.Add(1)
			return outcome{job: j, requeue: true}
		}
	}
	p.finish(j, resp, nil, start)
	drain(resp)
	return outcome{job: j}
}

// failedWait handles an error from a limiter wait. If ctx ended, or will
// end before the limiter would admit (a deadline), the job is undone: the
// worker waits for the end so that it does not drain the queue meanwhile.
// Other errors (a store down, a bad configuration) fail the job.
func (p *Pool) failedWait(ctx context.Context, j *Job, err error, start time.Time) outcome {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		<-ctx.Done()
		return outcome{job: j, undone: true}
	}
	p.finish(j, nil, err, start)
	return outcome{job: j}
}

func (p *Pool) finish(j *Job, resp *http.Response, err error, start time.Time) {
	p.hist.record(time.Since(start))
	if err != nil {
		p.failed.Add(1)
	}
	if p.Done != nil {
		p.Done(j, resp, err)
	}
	p.processed.Add(1)
}

func (p *Pool) pause(d time.Duration) {
	p.pauseMu.Lock()
	defer p.pauseMu.Unlock()
	if until := time.Now().Add(d); until.After(p.paused) {
		p.paused = until
	}
}

func (p *Pool) waitPause(ctx context.Context) error {
	p.pauseMu.Lock()
	until := p.paused
	p.pauseMu.Unlock()
	return sleep(ctx, time.Until(until))
}

// histogram records durations in microseconds with about 3% precision:
// exact below 64µs, then 32 buckets per power of two.
type histogram struct {
	mu     sync.Mutex
	counts [64 + 40*32]int64
	n      int64
	sum    time.Duration
}

func histIndex(us uint64) int {
	if us < 64 {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us >> e is in [32, 64)
	i := 64 + (e-1)*32 + int(us>>e) - 32
	return min(i, 64+40*32-1)
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) float64 {
	if i < 64 {
		return float64(i)
	}
	e := (i-64)/32 + 1
	m := (i-64)%32 + 32
	return (float64(m) + 0.5) * float64(uint64(1)<<e)
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.mu.Lock()
	h.counts[histIndex(us)]++
	h.n++
	h.sum += d
	h.mu.Unlock()
}

func (h *histogram) summary() (mean, p50, p99 time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0, 0, 0
	}
	q := func(f float64) time.Duration {
		rank := int64(f*float64(h.n) + 0.999999)
		var c int64
		for i, k := range h.counts {
			c += k
			if c >= rank {
				return time.Duration(histValue(i) * float64(time.Microsecond))
			}
		}
		return 0
	}
	return h.sum / time.Duration(h.n), q(0.50), q(0.99)
}
