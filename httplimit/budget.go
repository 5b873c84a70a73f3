package httplimit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/weir-go/weir"
)

// A Budget is a limit a [Transport] keeps besides the upstream's pace, in
// units the caller counts (tokens, bytes, credits) whose cost of a request
// is known only from its response: a tokens-per-minute budget for an LLM
// API shared by every process of a service.
//
// Before a request is sent, its Estimate is taken from the budget, waiting
// until it fits (the send waits for its turn of the pace after that). Once
// the response is in, the charge is settled to the actual cost: read from
// the response head by Cost, or from the body by BodyCost once the caller
// has read the body to its end or closed it. An actual below the estimate
// gives the difference back; one above charges the excess, into debt if
// need be, so that the next requests wait until time has repaid it. When
// neither function can tell (or the request failed without a response),
// the estimate stays charged. A response that the transport retries (429,
// 503) is settled to what Cost reads, or to 0: the upstream turned it away.
// A turn taken by [Transport.Wait] that is never sent keeps its estimate.
//
// The budget is kept per key (Transport.Key, by default the host) in
// Transport.Store, so transports of several processes sharing a store
// share it. Over any T from a key's first request, the units used stay
// within what the Limit admits in T (for a token bucket, Burst plus the
// rate times T) plus P·E, where P is the number of requests in flight at
// once and E the largest excess of an actual cost over its estimate
// (docs/costs.md).
type Budget struct {
	// Limit is the budget: Quota units per Period, as
	// weir.PerMinute(90_000).WithName("tokens"). Any algorithm but
	// Concurrency. An empty Name is "budget".
	Limit weir.Limit
	// Estimate is what a request is expected to cost, from 0 to the
	// Limit's capacity (more is taken as the capacity; the excess is
	// charged when settled). Required.
	Estimate func(*http.Request) int64
	// Cost, when set, reads the actual cost from the response head (a
	// header such as "X-Usage-Tokens"), or reports false.
	Cost func(*http.Response) (int64, bool)
	// BodyCost, when set and Cost did not tell, reads the actual cost from
	// the body as the caller read it (the "usage" of a JSON answer), or
	// reports false. It sees at most MaxBody bytes, from the start.
	BodyCost func(body []byte) (int64, bool)
	// MaxBody is how much of the body BodyCost sees. 0 means 1 MiB.
	MaxBody int
}

// budget is a Transport's compiled Budget.
type budget struct {
	b        *Budget
	lim      *weir.Limiter
	capacity int64
}

func newBudget(b *Budget, store weir.Store) (*budget, error) {
	if b.Estimate == nil {
		return nil, &weir.FieldError{Field: "Transport.Budget.Estimate", Reason: "is required"}
	}
	if b.MaxBody < 0 {
		return nil, &weir.FieldError{Field: "Transport.Budget.MaxBody", Reason: fmt.Sprintf("must not be negative (got %d)", b.MaxBody)}
	}
	l := b.Limit
	if l.Algorithm == weir.Concurrency {
		return nil, &weir.FieldError{Field: "Transport.Budget.Limit", Reason: "a concurrency limit is not a budget"}
	}
	if l.Name == "" {
		l.Name = "budget"
	}
	if err := l.Validate(); err != nil {
		return nil, &weir.FieldError{Field: "Transport.Budget.Limit", Reason: err.Error(), Err: err}
	}
	lim, err := weir.NewLimiter(store, l)
	if err != nil {
		return nil, err
	}
	return &budget{b: b, lim: lim, capacity: l.Capacity()}, nil
}

// A charge is an estimate taken from a budget, settled once.
type charge struct {
	bg   *budget
	key  string
	est  int64
	at   time.Time
	once sync.Once
	err  error
}

// take waits until req's estimate fits the budget and takes it.
func (bg *budget) take(ctx context.Context, key string, req *http.Request) (*charge, error) {
	est := min(max(bg.b.Estimate(req), 0), bg.capacity)
	d, err := bg.lim.WaitN(ctx, key, est)
	if err != nil {
		return nil, err
	}
	return &charge{bg: bg, key: key, est: est, at: d.Time.Add(d.Delay)}, nil
}

// settle settles the charge to actual (negative counts as 0), once.
func (c *charge) settle(ctx context.Context, actual int64) error {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, c.err = c.bg.lim.Settle(sctx, c.key, c.est, c.at, max(actual, 0))
	})
	return c.err
}

// settleFrom settles the charge from resp: at once if Cost tells or there
// is no BodyCost, else when the body is done (resp.Body is wrapped).
func (c *charge) settleFrom(ctx context.Context, resp *http.Response) {
	if c == nil {
		return
	}
	if f := c.bg.b.Cost; f != nil {
		if n, ok := f(resp); ok {
			_ = c.settle(ctx, n)
			return
		}
	}
	if c.bg.b.BodyCost == nil {
		return // the estimate stands
	}
	maxBody := c.bg.b.MaxBody
	if maxBody == 0 {
		maxBody = 1 << 20
	}
	resp.Body = &settlingBody{ReadCloser: resp.Body, c: c, ctx: ctx, max: maxBody}
}

// settleRetried settles the charge of an answer the transport retries:
// to what Cost reads, else to 0.
func (c *charge) settleRetried(ctx context.Context, resp *http.Response) {
	if c == nil {
		return
	}
	n := int64(0)
	if f := c.bg.b.Cost; f != nil {
		if m, ok := f(resp); ok {
			n = m
		}
	}
	_ = c.settle(ctx, n)
}

// settlingBody keeps the start of a body and settles its charge from it
// when the body is read to its end or closed.
type settlingBody struct {
	io.ReadCloser
	c   *charge
	ctx context.Context
	max int
	buf []byte
}

func (b *settlingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(n, room)]...)
	}
	if err == io.EOF {
		b.done()
	}
	return n, err
}

func (b *settlingBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

func (b *settlingBody) done() {
	if n, ok := b.c.bg.b.BodyCost(b.buf); ok {
		_ = b.c.settle(b.ctx, n)
	}
}
