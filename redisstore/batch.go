package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	blob1 [8 * 11]byte

	out  []int64 // this decision's part of the reply
	err  error
	done chan struct{}
}

// replyLen is the length of the call's part of the reply.
func (c *call) replyLen() int {
	if c.op == opRefund {
		return 1
	}
	if c.want {
		return 6 + 5*c.nc
	}
	return 6
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
func (s *Store) do(ctx context.Context, c *call) error {
	if err := ctx.Err(); err != nil {
		return unavailable(err)
	}
	c.done = make(chan struct{}, 1)
	t := time.NewTimer(s.opt.deadline)
	defer t.Stop()
	select {
	case s.queue <- c:
	case <-s.closing:
		return errClosed
	case <-t.C:
		return errDeadline
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		return errDeadline
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
}

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
	}
}

// A group is the part of a batch that one script call carries: calls whose
// keys share a cluster slot and, with a test clock, an instant.
type group struct {
	slot  uint16
	now   int64
	calls []*call
	keys  []string
	args  []any
	cmd   *redis.Cmd
}

func (s *Store) run(batch []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.deadline)
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
	slack := "0"
	if s.opt.clock != nil {
		slack = "60000"
	}
	for i := range groups {
		g := &groups[i]
		nk, na := 0, 4
		fast := "1" // every call can take the script's fast path
		for _, c := range g.calls {
			nk += len(c.keys)
			na += len(c.args)
			if !c.fast {
				fast = "0"
			}
		}
		g.keys = make([]string, 0, nk)
		g.args = make([]any, 0, na)
		now := ""
		if g.now >= 0 {
			now = fmt.Sprint(g.now)
		}
		g.args = append(g.args, now, slack, len(g.calls), fast)
		for _, c := range g.calls {
			g.keys = append(g.keys, c.keys...)
			g.args = append(g.args, c.args...)
		}
	}
	return groups
}

// eval runs the script with EVALSHA, and with EVAL (which also caches it)
// when Redis does not know it (NOSCRIPT: nothing ran, so this is safe).
func (s *Store) eval(ctx context.Context, keys []string, args []any) *redis.Cmd {
	cmd := s.c.EvalSha(ctx, scriptSHA, keys, args...)
	if isNoScript(cmd.Err()) {
		cmd = s.c.Eval(ctx, scriptSrc, keys, args...)
	}
	return cmd
}

// pipeline sends one script call per group in one pipeline (a cluster
// client splits it by node), then resends with EVAL the calls that met
// NOSCRIPT.
func (s *Store) pipeline(ctx context.Context, groups []group) {
	_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range groups {
			groups[i].cmd = p.EvalSha(ctx, scriptSHA, groups[i].keys, groups[i].args...)
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
			g.cmd = p.Eval(ctx, scriptSrc, g.keys, g.args...)
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
	r, err := replyInts(g.cmd)
	if err != nil {
		fail(err)
		return
	}
	want := 1
	for _, c := range g.calls {
		want += c.replyLen()
	}
	if len(r) != want {
		fail(errReply)
		return
	}
	now := r[0]
	off := 1
	for _, c := range g.calls {
		n := c.replyLen()
		c.finish(now, r[off:off+n:off+n], nil)
		off += n
	}
}

// replyInts reads the script's reply: its integers packed as little-endian
// int64s in one string, or (for a malformed call) an array of integers.
func replyInts(cmd *redis.Cmd) ([]int64, error) {
	if v, ok := cmd.Val().(string); ok {
		if len(v)%8 != 0 {
			return nil, errReply
		}
		r := make([]int64, len(v)/8)
		for i := range r {
			r[i] = int64(binary.LittleEndian.Uint64([]byte(v[8*i : 8*i+8])))
		}
		return r, nil
	}
	r, err := cmd.Int64Slice()
	if err != nil {
		return nil, unavailable(err)
	}
	return r, nil
}
