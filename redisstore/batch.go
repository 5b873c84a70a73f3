package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
)

// A call is one decision (a take or a refund) on its way through the
// batching layer. The caller builds it and reads the result after done; a
// worker only reads keys and args and writes the result fields.
type call struct {
	op   int
	nc   int // checks
	want bool
	fast bool // a take of one token-bucket check: the script's fast path
	slot uint16
	now  int64 // µs; -1: the server's clock (set from the reply)
	keys []string
	args []any

	// Storage for keys, args and the packed numbers of a one-check call,
	// so that it needs no allocations of its own.
	key1  [1]string
	args2 [2]any
	blob1 [8 * (headerWords + checkWords)]byte
	wide  [takeWords + statusWords]int64 // a fast-path reply in the general path's form

	deadline int64       // when the call fails, in ns on the store's clock (Store.mono)
	timer    *time.Timer // the caller's deadline; kept when the call is recycled
	out      []int64     // this decision's part of the reply
	err      error
	done     chan struct{} // kept when the call is recycled
}

// getCall returns a zeroed call with a done channel (and, once used, a
// stopped timer), recycled when possible. putCall recycles c; only a caller that received c's result
// may call it (the worker is done with c then).
func (s *Store) getCall() *call {
	c, _ := s.calls.Get().(*call)
	if c == nil {
		return &call{done: make(chan struct{}, 1)}
	}
	return c
}

func (s *Store) putCall(c *call) {
	*c = call{done: c.done, timer: c.timer}
	s.calls.Put(c)
}

func (c *call) finish(now int64, out []int64, err error) {
	if c.now < 0 {
		c.now = now
	}
	c.out, c.err = out, err
	c.done <- struct{}{}
}

var errDeadline = fmt.Errorf("%w: redisstore: deadline exceeded", weir.ErrUnavailable)

// do sends c through the batching layer and waits for its result, at most
// until the store's deadline or ctx's.
//
// The deadline is kept on both sides. The caller waits on a timer (kept
// in the call, so a recycled call reuses it), which holds even when the
// client does not pass contexts to its sockets (ContextTimeoutEnabled
// off) and a worker sits in a read until the client's ReadTimeout. The
// workers fail a call whose deadline passed while it queued without
// sending it, and give each script call a context that ends at the
// earliest deadline of its decisions.
func (s *Store) do(ctx context.Context, c *call) error {
	if err := ctx.Err(); err != nil {
		return unavailable(err)
	}
	c.deadline = s.mono() + int64(s.opt.deadline)
	if c.timer == nil {
		c.timer = time.NewTimer(s.opt.deadline)
	} else {
		c.timer.Reset(s.opt.deadline)
	}
	defer c.timer.Stop()
	select {
	case s.queue <- c:
	default:
		select { // the queue is full: wait for room
		case s.queue <- c:
		case <-s.closing:
			return errClosed
		case <-c.timer.C:
			return errDeadline
		case <-ctx.Done():
			return unavailable(ctx.Err())
		}
	}
	select {
	case <-c.done:
		return c.err
	case <-c.timer.C:
		return errDeadline
	case <-s.closing:
		return errClosed
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
}

// mono is the store's monotonic clock, in ns.
func (s *Store) mono() int64 { return int64(time.Since(s.base)) }

func (s *Store) worker() {
	defer s.wg.Done()
	batch := make([]*call, 0, s.opt.maxBatch)
	for {
		select {
		case c := <-s.queue:
			batch = append(batch[:0], c)
		case <-s.closing:
			return
		}
	drain:
		for len(batch) < s.opt.maxBatch {
			select {
			case c := <-s.queue:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		s.run(batch)
		clear(batch)
		// The callers this batch released are runnable now, and most of
		// them are about to queue their next decision. Yielding once lets
		// them, so the next batch leaves fuller instead of with the first
		// one or two: with 16 callers, 7 decisions per call instead of 4.8
		// and 12-24% more decisions/s (BenchmarkRedisAllow); a lone caller
		// loses nothing, since nothing else is runnable.
		runtime.Gosched()
	}
}

// A group is the part of a batch that one script call carries: calls whose
// keys share a cluster slot and, with a test clock, an instant.
type group struct {
	slot  uint16
	now   int64
	calls []*call
	fast  bool // the script's fast path: every call is a take of one token-bucket check
	keys  []string
	args  []any
	cmd   *redis.Cmd
}

func (s *Store) run(batch []*call) {
	// Fail the calls whose deadline passed while they queued; the script
	// call ends at the earliest deadline of the rest.
	now, live, end := s.mono(), batch[:0], int64(math.MaxInt64)
	for _, c := range batch {
		if c.deadline <= now {
			c.finish(0, nil, errDeadline)
			continue
		}
		live = append(live, c)
		end = min(end, c.deadline)
	}
	if len(live) == 0 {
		return
	}
	batch = live
	ctx, cancel := context.WithDeadline(context.Background(), s.base.Add(time.Duration(end)))
	defer cancel()
	groups := s.group(batch)
	if len(groups) == 1 {
		g := &groups[0]
		g.cmd = s.eval(ctx, g.keys, g.args)
	} else {
		s.pipeline(ctx, groups)
	}
	for i := range groups {
		s.deliver(&groups[i])
	}
}

func (s *Store) group(batch []*call) []group {
	var groups []group
	for _, c := range batch {
		k := -1
		for i := range groups {
			if (!s.cluster || groups[i].slot == c.slot) && groups[i].now == c.now {
				k = i
				break
			}
		}
		if k < 0 {
			groups = append(groups, group{slot: c.slot, now: c.now})
			k = len(groups) - 1
		}
		groups[k].calls = append(groups[k].calls, c)
	}
	for i := range groups {
		g := &groups[i]
		nk, na := 0, 4
		g.fast = true // every call can take the script's fast path
		for _, c := range g.calls {
			nk += len(c.keys)
			na += len(c.args)
			g.fast = g.fast && c.fast
		}
		g.keys = make([]string, 0, nk)
		g.args = make([]any, 0, na)
		path := pathGeneral
		if g.fast {
			path = pathFastRepeated
		}
		g.args = callHeader(g.args, g.now, s.opt.clock != nil, len(g.calls), path)
		dist := false
		if g.fast { // a fast call has one key
			for _, c := range g.calls {
				g.keys = append(g.keys, c.keys[0])
			}
			if dist = distinct(g.keys); dist && groupBlobs(g.calls) {
				for j, c := range g.calls {
					g.keys[j] = c.keys[0]
				}
			}
		}
		var prev []byte
		for _, c := range g.calls {
			if !g.fast {
				g.keys = append(g.keys, c.keys...)
				g.args = append(g.args, c.args...)
				continue
			}
			// A take has no lease: only its packed numbers go, or "" when
			// they are the previous take's (the same limit and cost, the
			// common case), which Redis then neither reads nor interns, or
			// its cost alone when only that differs.
			b := c.args[0].([]byte)
			switch {
			case bytes.Equal(b, prev):
				g.args = append(g.args, "")
			case prev != nil && sameButCost(b, prev):
				g.args = append(g.args, b[costAt:costAt+8])
			default:
				g.args = append(g.args, b)
			}
			prev = b
		}
		if dist {
			g.args[3] = pathFastDistinct // the script may save each state at once
		}
	}
	return groups
}

// groupBlobs orders the takes of a fast-path group so that equal packed
// numbers are adjacent: the script parses a take's numbers (13 words and
// two exact divisions) only when they differ from the previous take's,
// which a batch whose takes differ in cost defeats (a localquota.Store's
// blocks, sized per key). BenchmarkScript/.../costs=7, 64 takes of 7
// costs interleaved: 4.5 µs of Redis time per take sent in arrival order,
// 3.4-3.5 µs grouped, as with one cost. The calls of a batch
// are concurrent, so any order is one they could have arrived in. A batch
// whose numbers change at most once is left as it is, without sorting.
// The caller passes only takes on distinct keys, whose answers do not
// depend on their order; groupBlobs reports whether it reordered them.
func groupBlobs(calls []*call) bool {
	changes := 0
	for i := 1; i < len(calls) && changes < 2; i++ {
		if !bytes.Equal(calls[i].args[0].([]byte), calls[i-1].args[0].([]byte)) {
			changes++
		}
	}
	if changes < 2 {
		return false
	}
	slices.SortStableFunc(calls, func(a, b *call) int {
		x, y := a.args[0].([]byte), b.args[0].([]byte)
		if c := bytes.Compare(x[costAt+8:], y[costAt+8:]); c != 0 {
			return c
		}
		return bytes.Compare(x[:costAt+8], y[:costAt+8])
	})
	return true
}

// costAt is the offset of the cost in a decision's packed numbers.
const costAt = 2 * 8

// sameButCost reports whether the packed numbers a and b of two fast-path
// takes differ at most in their cost.
func sameButCost(a, b []byte) bool {
	return len(a) == len(b) && len(a) > costAt+8 &&
		bytes.Equal(a[:costAt], b[:costAt]) && bytes.Equal(a[costAt+8:], b[costAt+8:])
}

// distinct reports whether no key repeats. (Up to 32 keys, comparing
// every pair costs less than a map.)
func distinct(keys []string) bool {
	if len(keys) > 32 {
		seen := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			if _, ok := seen[k]; ok {
				return false
			}
			seen[k] = struct{}{}
		}
		return true
	}
	for i, k := range keys {
		if slices.Contains(keys[:i], k) {
			return false
		}
	}
	return true
}

// eval runs the script with EVALSHA, and with EVAL (which also caches it)
// when Redis does not know it (NOSCRIPT: nothing ran, so this is safe).
func (s *Store) eval(ctx context.Context, keys []string, args []any) *redis.Cmd {
	cmd := s.c.EvalSha(ctx, scriptSHA(), keys, args...)
	if isNoScript(cmd.Err()) {
		cmd = s.c.Eval(ctx, scriptSrc(), keys, args...)
	}
	return cmd
}

// pipeline sends one script call per group in one pipeline (a cluster
// client splits it by node), then resends with EVAL the calls that met
// NOSCRIPT.
func (s *Store) pipeline(ctx context.Context, groups []group) {
	_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range groups {
			groups[i].cmd = p.EvalSha(ctx, scriptSHA(), groups[i].keys, groups[i].args...)
		}
		return nil
	})
	var again []*group
	for i := range groups {
		if isNoScript(groups[i].cmd.Err()) {
			again = append(again, &groups[i])
		}
	}
	if len(again) == 0 {
		return
	}
	_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, g := range again {
			g.cmd = p.Eval(ctx, scriptSrc(), g.keys, g.args...)
		}
		return nil
	})
}

func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// deliver checks a group's reply and hands each call its part.
func (s *Store) deliver(g *group) {
	fail := func(err error) {
		for _, c := range g.calls {
			c.finish(0, nil, err)
		}
	}
	if err := g.cmd.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			fail(errDeadline)
		} else {
			fail(unavailable(err))
		}
		return
	}
	r, err := decodeReply(g.cmd)
	if err != nil {
		fail(err)
		return
	}
	want := 1
	for _, c := range g.calls {
		want += c.replyLen(g.fast)
	}
	if len(r) != want {
		fail(errReply)
		return
	}
	now := r[0]
	off := 1
	for _, c := range g.calls {
		n := c.replyLen(g.fast)
		out := r[off : off+n : off+n]
		if g.fast {
			out = c.widen(out)
		}
		c.finish(now, out, nil)
		off += n
	}
}
