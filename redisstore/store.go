package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// Client is the part of a go-redis client the store uses. *redis.Client,
// *redis.ClusterClient, *redis.Ring and every redis.UniversalClient
// satisfy it.
//
// Configure the client with MaxRetries: -1. A client that retries a
// command after a connection broke may run a decision twice (the first
// attempt can have reached Redis); see docs/redis.md.
type Client interface {
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd
	Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	Del(ctx context.Context, keys ...string) *redis.IntCmd
	Ping(ctx context.Context) *redis.StatusCmd
}

// A Store keeps limiter state in Redis (or Valkey): every decision is one
// Lua script run, atomic across every process that shares the Redis, at
// the Redis server's clock. It implements [weir.Store], [weir.Pinger] and
// io.Closer.
//
// Concurrent decisions are batched: while a script call is in flight, new
// decisions queue and leave together in the next call (see
// [WithBatching]). Each decision is still atomic on its own.
//
// When Redis fails or answers later than the deadline (default 50ms), the
// failure policy decides ([WithFailurePolicy], [WithFallback]); the
// Decision's Source says which path produced it.
//
// A Store is safe for concurrent use. Close it to stop its goroutines; it
// never closes the client.
type Store struct {
	c       Client
	opt     options
	cluster bool
	slotTag [16]byte // the tag of every key with WithSingleSlot
	noFast  bool     // tests: every call takes the script's general path

	base    time.Time // origin of mono
	calls   sync.Pool // of *call
	queue   chan *call
	closing chan struct{}
	closed  sync.Once
	wg      sync.WaitGroup
}

var (
	_ weir.Store  = (*Store)(nil)
	_ weir.Pinger = (*Store)(nil)
)

// New returns a store over client. It starts the batching goroutines
// (Close stops them) but does not contact Redis: call Ping to check the
// connection.
func New(client Client, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, &weir.FieldError{Field: "client", Reason: "is nil"}
	}
	o := defaults()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	switch {
	case o.deadline <= 0:
		return nil, &weir.FieldError{Field: "deadline", Reason: fmt.Sprintf("must be positive (got %v)", o.deadline)}
	case o.maxBatch < 1:
		return nil, &weir.FieldError{Field: "maxBatch", Reason: fmt.Sprintf("must be at least 1 (got %d)", o.maxBatch)}
	case o.workers < 1:
		return nil, &weir.FieldError{Field: "inFlight", Reason: fmt.Sprintf("must be at least 1 (got %d)", o.workers)}
	case o.maxKeyLen < len(o.prefix)+minKeyLength:
		return nil, &weir.FieldError{Field: "maxKeyLength", Reason: fmt.Sprintf("%d leaves no room for the %d-byte prefix and %d bytes of tag and hash", o.maxKeyLen, len(o.prefix), minKeyLength)}
	case strings.ContainsAny(o.prefix, "{}"):
		return nil, &weir.FieldError{Field: "prefix", Reason: fmt.Sprintf("%q contains a brace: Redis Cluster would hash it instead of the store's tag", o.prefix)}
	case o.policy > Fallback:
		return nil, &weir.FieldError{Field: "policy", Reason: fmt.Sprintf("unknown policy %d", o.policy)}
	case o.policy == Fallback && o.fallback == nil:
		return nil, &weir.FieldError{Field: "fallback", Reason: "policy Fallback needs a store (use WithFallback)"}
	case o.share < 0:
		return nil, &weir.FieldError{Field: "share", Reason: fmt.Sprintf("must not be negative (got %d)", o.share)}
	}
	s := &Store{
		c:       client,
		opt:     o,
		base:    time.Now(),
		queue:   make(chan *call, 4*o.maxBatch*o.workers),
		closing: make(chan struct{}),
	}
	s.slotTag = tagOf(o.prefix)
	switch o.cluster {
	case 0:
		_, s.cluster = client.(*redis.ClusterClient)
	case 1:
		s.cluster = true
	}
	s.wg.Add(o.workers)
	for range o.workers {
		go s.worker()
	}
	return s, nil
}

// Close stops the store's goroutines; decisions in flight fail. It does not
// close the Redis client. Calling it again does nothing.
func (s *Store) Close() error {
	s.closed.Do(func() {
		close(s.closing)
		s.wg.Wait()
		for {
			select {
			case c := <-s.queue:
				c.finish(0, nil, errClosed)
			default:
				return
			}
		}
	})
	return nil
}

var errClosed = fmt.Errorf("%w: redisstore: store closed", weir.ErrUnavailable)

// Ping reports whether Redis answers within the deadline.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opt.deadline)
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

func unavailable(err error) error {
	if errors.Is(err, weir.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: redis: %w", weir.ErrUnavailable, err)
}

// Bounds that keep the script's double arithmetic exact (below 2^53 µs
// with a present-day clock near 1.8e15 µs and periods of up to 100 years,
// 3.2e15 µs).
const (
	maxUnits  = 1 << 51               // quota and burst
	maxWaitUS = 1_000_000_000_000_000 // reservation horizon (µs, 31 years)
	maxAt     = 4_000_000_000_000_000 // refund instants (µs, year 2096)
)

// prepare validates req and builds its call: Redis keys and script args.
func (s *Store) prepare(op int, req *weir.Request) (*call, error) {
	if err := engine.Validate(req); err != nil {
		return nil, err
	}
	n := len(req.Checks)
	c := s.getCall()
	c.op, c.nc, c.want = op, n, op == opTake && len(req.Statuses) == n
	c.fast = !s.noFast && op == opTake && !req.Force && n == 1 && req.Checks[0].Limit.Algorithm == weir.TokenBucket
	if n == 1 {
		c.keys = c.key1[:] // no allocation for the common case
	} else {
		c.keys = make([]string, n)
	}
	at := int64(-1)
	if op == opRefund && !req.At.IsZero() {
		at = min(max(req.At.UnixMicro(), 0), maxAt)
	}
	wop := op
	if req.Force {
		wop += opCharge - opTake // opCharge, or opSettle for a refund
	}
	h := decisionHeader{
		op:      int64(wop),
		checks:  int64(n),
		cost:    req.Cost,
		maxWait: min(int64(req.MaxWait/time.Microsecond), maxWaitUS),
		at:      at,
		queue:   min(int64(req.Queue/time.Microsecond), maxWaitUS),
	}
	if c.want {
		h.want = 1
	}
	var b []byte
	if n == 1 {
		b = c.blob1[:0]
	} else {
		b = make([]byte, 0, 8*(headerWords+checkWords*n))
	}
	b = h.append(b)
	var tag0 [16]byte
	for i := range req.Checks {
		ch := &req.Checks[i]
		if err := checkExact(i, ch.Limit); err != nil {
			return nil, err
		}
		p := paramsOf(ch.Limit)
		b = p.append(b)
		c.keys[i] = s.redisKey(engine.Name(ch.Limit), ch.Key, ch.Limit.Algorithm)
		if !s.cluster {
			continue // the slot matters only to a cluster
		}
		tag := s.tag(ch.Key)
		if i == 0 {
			tag0 = tag
			c.slot = slotOf(tag)
		} else if tag != tag0 && slotOf(tag) != c.slot {
			return nil, &weir.FieldError{Field: fmt.Sprintf("checks[%d].Key", i), Reason: "in a Redis Cluster every check of one request must have the same key, so that their state shares a hash slot (or use WithSingleSlot)"}
		}
	}
	c.args = c.args2[:]
	c.args[0], c.args[1] = b, req.Lease // go-redis sends []byte as is
	if s.opt.clock != nil {
		c.now = s.opt.clock().UnixMicro()
	} else {
		c.now = -1
	}
	return c, nil
}

// checkExact rejects limits whose arithmetic in the script could leave the
// doubles' exact integer range: the script multiplies exactly beyond 2^53
// (see muldiv in scripts/entry.lua), but sums of units must stay
// below it.
func checkExact(i int, l weir.Limit) error {
	if l.Quota > maxUnits || l.Burst > maxUnits {
		return &weir.FieldError{Field: fmt.Sprintf("checks[%d].Limit.Quota", i), Reason: fmt.Sprintf("quota %d / burst %d above 2^51: the Redis store computes in exact integers below 2^53", l.Quota, l.Burst)}
	}
	return nil
}

// Take decides on every check of req at once, in one script run. See
// [weir.Store].
func (s *Store) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	c, err := s.prepare(opTake, req)
	if err != nil {
		return weir.Decision{}, err
	}
	if err := s.do(ctx, c); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return weir.Decision{}, err // the caller gave up
		}
		return s.failure(ctx, req, err)
	}
	d, err := s.decision(req, c)
	s.putCall(c)
	return d, err
}

// decision reads a take's reply.
func (s *Store) decision(req *weir.Request, c *call) (weir.Decision, error) {
	r := takeReply(c.out)
	if r.wrongType() {
		return s.failureNoCtx(req, fmt.Errorf("%w: redisstore: a key of this request holds data of another type", weir.ErrUnavailable))
	}
	if !r.valid(len(req.Checks)) {
		return s.failureNoCtx(req, errReply)
	}
	st := r.status()
	d := weir.Decision{
		Allowed:    st.Allowed,
		Limit:      req.Checks[r.decider()].Limit.Named(),
		Remaining:  st.Remaining,
		RetryAfter: st.RetryAfter,
		ResetAfter: st.ResetAfter,
		Delay:      st.Delay,
		Debt:       st.Debt,
		Clamped:    st.Clamped,
		Time:       time.UnixMicro(c.now),
		Source:     weir.SourceStore,
	}
	if c.want {
		for i := range req.Checks {
			req.Statuses[i] = r.check(i)
		}
	}
	return d, nil
}

func (s *Store) failureNoCtx(req *weir.Request, err error) (weir.Decision, error) {
	return s.failure(context.Background(), req, err)
}

var errReply = fmt.Errorf("%w: redisstore: unexpected reply from the script", weir.ErrUnavailable)

func micros(us int64) time.Duration {
	if us > math.MaxInt64/1000 {
		return math.MaxInt64
	}
	return time.Duration(us) * time.Microsecond
}

// Refund gives back req.Cost units charged at req.At to each check and
// releases req.Lease from Concurrency checks, in one script run. See
// [weir.Store]. Failure policies do not apply: a failed refund is an error
// matching weir.ErrUnavailable. With policy Fallback, leases are also
// released in the fallback store, which may have granted them.
func (s *Store) Refund(ctx context.Context, req *weir.Request) error {
	c, err := s.prepare(opRefund, req)
	if err != nil {
		return err
	}
	if s.opt.policy == Fallback && req.Lease != "" {
		s.releaseFallback(ctx, req)
	}
	if err := s.do(ctx, c); err != nil {
		return err
	}
	ok := c.out[0] == 1
	s.putCall(c)
	if !ok {
		return fmt.Errorf("%w: redisstore: a key of this request holds data of another type", weir.ErrUnavailable)
	}
	return nil
}

func (s *Store) releaseFallback(ctx context.Context, req *weir.Request) {
	fr := s.shared(req)
	k := 0
	for _, ch := range fr.Checks {
		if ch.Limit.Algorithm == weir.Concurrency {
			fr.Checks[k] = ch
			k++
		}
	}
	if k == 0 {
		return
	}
	fr.Checks = fr.Checks[:k]
	fr.Statuses = nil
	_ = s.opt.fallback.Refund(ctx, fr)
}

// Reset deletes the state of each check. See [weir.Store].
func (s *Store) Reset(ctx context.Context, checks []weir.Check) error {
	ctx, cancel := context.WithTimeout(ctx, s.opt.deadline)
	defer cancel()
	for i, ch := range checks {
		if err := ch.Limit.Validate(); err != nil {
			var fe *weir.FieldError
			if errors.As(err, &fe) {
				return &weir.FieldError{Field: "checks[" + strconv.Itoa(i) + "]." + fe.Field, Reason: fe.Reason}
			}
			return err
		}
	}
	// One DEL per key: keys of different checks may live in different
	// cluster slots.
	for _, ch := range checks {
		if err := s.c.Del(ctx, s.redisKey(engine.Name(ch.Limit), ch.Key, ch.Limit.Algorithm)).Err(); err != nil {
			return unavailable(err)
		}
	}
	return nil
}
