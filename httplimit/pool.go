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

// A Pool sends jobs with many workers as fast as an upstream allows:
// Workers goroutines take jobs from a channel, each waits for its job's
// turn from Transport ([Transport.Wait]: the upstream's pace, learnt or
// told, shared through its Store) and only then sends it, so a job's
// Transport.Timeout starts at its send, never in the line.
//
// A job answered 429 Too Many Requests (or 503 with a Retry-After) is put
// back at the front of the queue once its Retry-After (1 s for a 429
// without one) has passed, so no job is dropped for being limited; the
// Transport pauses the upstream for the Retry-After too, unless the 429 is
// a slip of a pace to a known limit (see [Transport]).
//
// When the context ends the pool stops taking jobs; jobs already sent
// finish (their requests do not inherit the cancellation, so give the
// Transport a Timeout), and jobs taken but not sent are returned by Run.
// Stats can be read while Run works.
type Pool struct {
	// Transport paces and sends the jobs. nil means a Transport with
	// defaults (it learns the upstream's limit; no Timeout).
	Transport *Transport
	// Workers is the number of goroutines; 0 means 1. Jobs wait for their
	// turn in Transport, not in a queue of the pool, so many more workers
	// than the rate (a rate times the upstream's latency, and more) keep
	// the upstream's limit full.
	Workers int
	// MaxAttempts bounds the attempts of a job that keeps being limited;
	// 0 means no bound.
	MaxAttempts int
	// Done is called once for every finished job, from the worker that
	// finished it: with the response (its body is closed when Done returns)
	// or the error of the last attempt. It may be nil.
	Done func(job *Job, resp *http.Response, err error)
	// Report, when set, receives the pool's statistics every ReportEvery
	// while Run works, and once more when Run returns: the periodic
	// line is Report: func(s Stats) { log.Print(s) }. It is called from
	// one goroutine, never twice at once.
	Report func(Stats)
	// ReportEvery is the period of Report; 0 means one second.
	ReportEvery time.Duration

	started   atomic.Int64 // unix ns of Run's start
	stopped   atomic.Int64 // unix ns of Run's end, 0 while running
	done      atomic.Int64
	ok        atomic.Int64
	failed    atomic.Int64
	retries   atomic.Int64
	limited   atomic.Int64
	sent      atomic.Int64
	inflight  atomic.Int64
	queued    atomic.Int64
	lastKey   atomic.Pointer[string]
	hist      histogram
	sendMu    sync.Mutex
	firstSend time.Time // of an attempt that was not answered 429
	lastSend  time.Time
	admitted  int64 // attempts not answered 429
	defOnce   sync.Once
	def       *Transport // when Transport is nil
}

// Stats are a pool's counters: the statistics line ([Stats.String]) as a
// struct for metrics.
type Stats struct {
	Done     int64 // jobs finished (Done called), whatever their status
	OK       int64 // jobs finished with a response below 400
	Failed   int64 // jobs finished with an error, not a response
	Limited  int64 // 429 responses received
	Retries  int64 // attempts put back in the queue after a 429 or 503
	Sent     int64 // attempts sent
	InFlight int64 // attempts sent and not yet answered
	Queued   int64 // jobs taken from the channel and not yet sent
	Elapsed  time.Duration
	// Rate is the achieved rate: attempts not answered 429, per second,
	// from the first such send to the last (as the upstream counts them).
	Rate float64
	// Limit is the limit the Transport paces to, in requests per second
	// (0 while unknown), for the key of the latest job; Source says where
	// it comes from (see [Pace]).
	Limit  float64
	Source string
	// Mean, P50 and P99 are attempt latencies, from the send to the
	// response: the wait for the turn is not in them.
	Mean, P50, P99 time.Duration
}

// String formats s as one line, for example
//
//	done 200 (ok 200, failed 0), 429s 0, retries 0, in flight 1, queued 39, rate 3.99/s of 4.00/s (99.8%, told), latency avg 200.0ms p99 201.0ms, 50.0s
func (s Stats) String() string {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	limit := "unknown"
	if s.Limit > 0 {
		limit = fmt.Sprintf("%.2f/s (%.1f%%, %s)", s.Limit, 100*s.Rate/s.Limit, s.Source)
	}
	return fmt.Sprintf("done %d (ok %d, failed %d), 429s %d, retries %d, in flight %d, queued %d, rate %.2f/s of %s, latency avg %.1fms p99 %.1fms, %.1fs",
		s.Done, s.OK, s.Failed, s.Limited, s.Retries, s.InFlight, s.Queued, s.Rate, limit, ms(s.Mean), ms(s.P99), s.Elapsed.Seconds())
}

// Stats returns the pool's counters so far.
func (p *Pool) Stats() Stats {
	s := Stats{
		Done:     p.done.Load(),
		OK:       p.ok.Load(),
		Failed:   p.failed.Load(),
		Retries:  p.retries.Load(),
		Limited:  p.limited.Load(),
		Sent:     p.sent.Load(),
		InFlight: p.inflight.Load(),
		Queued:   p.queued.Load(),
	}
	if start := p.started.Load(); start != 0 {
		end := p.stopped.Load()
		if end == 0 {
			end = time.Now().UnixNano()
		}
		s.Elapsed = time.Duration(end - start)
	}
	p.sendMu.Lock()
	if span := p.lastSend.Sub(p.firstSend); p.admitted > 1 && span > 0 {
		s.Rate = float64(p.admitted-1) / span.Seconds()
	}
	p.sendMu.Unlock()
	if k := p.lastKey.Load(); k != nil {
		pace := p.transport().Pace(*k)
		s.Limit, s.Source = pace.PerSecond(), pace.Source
	}
	s.Mean, s.P50, s.P99 = p.hist.summary()
	return s
}

var errNoRequest = errors.New("httplimit: job has no request")

func (p *Pool) transport() *Transport {
	if p.Transport != nil {
		return p.Transport
	}
	p.defOnce.Do(func() { p.def = &Transport{} })
	return p.def
}

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
	if err := p.transport().init(); err != nil {
		return nil, err
	}
	n := max(p.Workers, 1)
	if p.ReportEvery < 0 {
		return nil, &weir.FieldError{Field: "Pool.ReportEvery", Reason: fmt.Sprintf("must not be negative (got %v)", p.ReportEvery)}
	}
	p.started.Store(time.Now().UnixNano())
	p.stopped.Store(0)
	defer p.reportUntil()()
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
				p.queued.Add(1)
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
	p.queued.Add(-int64(len(undone)))
	return undone, ctx.Err()
}

// attempt waits for j's turn and sends it once.
func (p *Pool) attempt(ctx context.Context, j *Job) outcome {
	if j.Request == nil {
		p.queued.Add(-1)
		p.finish(j, nil, errNoRequest)
		return outcome{job: j}
	}
	t := p.transport()
	key := t.key(j.Request)
	p.lastKey.Store(&key)
	// The request runs to completion even if ctx ends after its send.
	req, err := rewind(j.Request.WithContext(ctx))
	if err != nil {
		p.queued.Add(-1)
		p.finish(j, nil, err)
		return outcome{job: j}
	}
	ready, err := t.Wait(req)
	if err != nil {
		closeBody(req)
		if ctx.Err() != nil {
			return outcome{job: j, undone: true} // still counted as queued until Run returns it
		}
		p.queued.Add(-1)
		p.finish(j, nil, err)
		return outcome{job: j}
	}
	ready = ready.WithContext(context.WithoutCancel(ready.Context()))
	p.queued.Add(-1)
	j.Attempts++
	p.sent.Add(1)
	p.inflight.Add(1)
	sent := time.Now()
	resp, err := t.RoundTrip(ready)
	p.inflight.Add(-1)
	if err != nil {
		p.finish(j, nil, err)
		return outcome{job: j}
	}
	p.hist.record(time.Since(sent))
	limited := resp.StatusCode == http.StatusTooManyRequests
	if !limited {
		p.sendMu.Lock()
		if p.admitted == 0 || sent.Before(p.firstSend) {
			p.firstSend = sent
		}
		if sent.After(p.lastSend) {
			p.lastSend = sent
		}
		p.admitted++
		p.sendMu.Unlock()
	}
	now := time.Now()
	ra, hasRA := ParseRetryAfter(resp.Header, now)
	if limited || (resp.StatusCode == http.StatusServiceUnavailable && hasRA) {
		if limited {
			p.limited.Add(1)
		}
		if p.MaxAttempts == 0 || j.Attempts < p.MaxAttempts {
			drain(resp)
			p.retries.Add(1)
			p.queued.Add(1)
			// The job goes again no earlier than its Retry-After (the
			// key itself may not be paused: a slip, see docs/http.md).
			if !hasRA && limited {
				ra = time.Second
			}
			if err := sleep(ctx, min(ra, t.maxPause())); err != nil {
				return outcome{job: j, undone: true}
			}
			return outcome{job: j, requeue: true}
		}
	}
	p.finish(j, resp, nil)
	drain(resp)
	return outcome{job: j}
}

func (p *Pool) finish(j *Job, resp *http.Response, err error) {
	if err != nil {
		p.failed.Add(1)
	} else if resp.StatusCode < 400 {
		p.ok.Add(1)
	}
	if p.Done != nil {
		p.Done(j, resp, err)
	}
	p.done.Add(1)
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
