package redisstore

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// The wire format between the store and its script (scripts/*.lua),
// defined here once; the script reads and writes exactly this.
//
// A script call carries a batch of decisions.
//
//	KEYS     one Redis key per check, decision after decision, in order
//	ARGV[1]  now in µs, or "" for the server's clock (TIME)
//	ARGV[2]  extra TTL in ms (0 in production; WithClock sets 60000)
//	ARGV[3]  number of decisions
//	ARGV[4]  the path: pathGeneral, or when every decision is a take of
//	         one token-bucket check one of the fast paths (pathFastRepeated
//	         when a key may repeat, pathFastDistinct when none does)
//	ARGV[5…] per decision, on the general path: its numbers, then its lease
//	         id ("" for none); on a fast path: its numbers alone, "" when
//	         they equal the previous decision's, or its cost alone (8 bytes)
//	         when only that differs
//
// A decision's numbers are little-endian int64s (one struct.unpack in the
// script): the 7 words of a decisionHeader, then the 6 words of a
// checkParams per check. Its op is a take, a refund, or their forced
// forms (weir.Request.Force): a charge, answered as a take, and a
// settlement, answered as a refund. The fast paths carry takes only.
//
// The reply is one string of little-endian int64s (see decodeReply): the
// instant of the decision (µs), then per decision, in order:
//
//	take, general path  takeWords: allowed (1, 0, or -1 when a key holds
//	                    data of another type), decider (0-based check
//	                    index), remaining, retry after, reset after, delay,
//	                    debt (units), clamped (1/0)
//	take, fast path     fastWords: allowed, remaining, wait (a denial's
//	                    retry after, an admission's delay), reset after
//	refund              refundWords: 1, or -1 when a key holds data of
//	                    another type
//
// and after a take's words, when it asked for statuses, statusWords per
// check: allowed (1/0), remaining, retry after, reset after, delay, debt,
// clamped (1/0; the fast path answers debt and clamped 0). Times are µs. A malformed call is answered {-1} (an array, not a string).

// Operations: a decisionHeader's op.
const (
	opTake   = 1
	opRefund = 2
	opCharge = 3 // a forced take: weir.Request.Force
	opSettle = 4 // a forced refund: weir.Request.Force
)

// Paths: ARGV[4].
const (
	pathGeneral      = "0"
	pathFastRepeated = "1" // a key may repeat: states are kept by key, saved at the end
	pathFastDistinct = "2" // no key repeats: each state is saved as it is decided
)

// Words (int64s) of each part of a call and of its reply.
const (
	headerWords = 7 // decisionHeader
	checkWords  = 6 // checkParams
	takeWords   = 8
	fastWords   = 4
	refundWords = 1
	statusWords = 7
)

// ttlSlackTest is ARGV[2] with a test clock (WithClock), in ms: keys must
// not expire in real time while the fake clock stands still.
const ttlSlackTest = "60000"

// A decisionHeader is the fixed part of one decision's numbers.
type decisionHeader struct {
	op      int64 // opTake, opRefund, opCharge or opSettle
	checks  int64 // number of checkParams that follow
	cost    int64
	maxWait int64 // µs a take may reserve ahead (token buckets)
	at      int64 // a refund's instant in µs, or -1 for now
	want    int64 // 1: the reply carries a status per check
	queue   int64 // µs a denied take keeps its place in line at concurrency limits
}

func (h *decisionHeader) append(b []byte) []byte {
	return pack(b, h.op, h.checks, h.cost, h.maxWait, h.at, h.want, h.queue)
}

// checkParams are one check's numbers.
type checkParams struct {
	kind     int64 // weir.Algorithm's value: BUILD[kind] in the script
	quota    int64
	per      int64 // µs; for a token bucket, Period/Quota reduced: per/q
	capacity int64
	q        int64 // a token bucket's reduced quota; 1 otherwise
	maxDebt  int64 // the debt cap in units (internal/algo's DebtCap); 0 for Concurrency
}

func paramsOf(l weir.Limit) checkParams {
	p := checkParams{
		kind:     int64(l.Algorithm),
		quota:    l.Quota,
		per:      int64(l.Period / time.Microsecond),
		capacity: l.Capacity(),
		q:        1,
	}
	if l.Algorithm != weir.Concurrency {
		ap := engine.Params(l)
		p.maxDebt = ap.DebtCap()
	}
	if l.Algorithm == weir.TokenBucket {
		g := gcd(p.per, p.quota)
		p.per, p.q = p.per/g, p.quota/g
	}
	return p
}

func (p *checkParams) append(b []byte) []byte {
	return pack(b, p.kind, p.quota, p.per, p.capacity, p.q, p.maxDebt)
}

// pack appends vs as little-endian 64-bit integers.
func pack(b []byte, vs ...int64) []byte {
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// callHeader returns ARGV[1…4] of a call of n decisions at now (µs, or
// negative for the server's clock).
func callHeader(args []any, now int64, testClock bool, n int, path string) []any {
	at, slack := "", "0"
	if now >= 0 {
		at = strconv.FormatInt(now, 10)
	}
	if testClock {
		slack = ttlSlackTest
	}
	return append(args, at, slack, n, path)
}

// replyLen is the number of words of c's part of the reply, on a fast path
// or the general one.
func (c *call) replyLen(fast bool) int {
	n := takeWords
	switch {
	case c.op == opRefund:
		return refundWords
	case fast:
		n = fastWords
	}
	if c.want {
		n += statusWords * c.nc
	}
	return n
}

// widen puts a fast-path reply (allowed, remaining, wait, reset, and
// maybe a status) into the general path's form (allowed, decider,
// remaining, retry after, reset after, delay, and the statuses): the wait
// is a denial's retry-after and an admission's delay.
func (c *call) widen(r []int64) []int64 {
	w := c.wide[:takeWords]
	w[0], w[1], w[2], w[4], w[6], w[7] = r[0], 0, r[1], r[3], 0, 0
	if r[0] == 1 {
		w[3], w[5] = 0, r[2]
	} else {
		w[3], w[5] = r[2], 0
	}
	return append(w, r[fastWords:]...)
}

// A takeReply is a take's part of the reply, in the general path's form.
type takeReply []int64

func (r takeReply) allowed() bool   { return r[0] == 1 }
func (r takeReply) wrongType() bool { return r[0] < 0 }
func (r takeReply) decider() int64  { return r[1] }

// valid reports whether r's numbers can be a take's on n checks.
func (r takeReply) valid(n int) bool {
	return r[0] <= 1 && r[1] >= 0 && r[1] < int64(n) && r[2] >= 0 && r[3] >= 0 && r[4] >= 0 && r[5] >= 0 && r[6] >= 0 && (r[7] == 0 || r[7] == 1)
}

// status is the decider's status.
func (r takeReply) status() weir.Status {
	return weir.Status{Allowed: r[0] == 1, Remaining: r[2], RetryAfter: micros(r[3]), ResetAfter: micros(r[4]), Delay: micros(r[5]), Debt: r[6], Clamped: r[7] == 1}
}

// check returns the status of check i (the reply must carry statuses).
func (r takeReply) check(i int) weir.Status {
	v := r[takeWords+statusWords*i:]
	return weir.Status{Allowed: v[0] == 1, Remaining: v[1], RetryAfter: micros(v[2]), ResetAfter: micros(v[3]), Delay: micros(v[4]), Debt: v[5], Clamped: v[6] == 1}
}

// decodeReply reads the script's reply: its integers packed as
// little-endian int64s in one string, or (for a malformed call) an array
// of integers.
func decodeReply(cmd *redis.Cmd) ([]int64, error) {
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
