package redisstore

import (
	"time"

	"github.com/weir-go/weir"
)

// An Option configures a [Store]. The With functions of this package
// make them, as in the module's other packages.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	prefix     string
	maxKeyLen  int // whole Redis key, prefix included
	deadline   time.Duration
	policy     Policy
	fallback   weir.Store
	share      int64
	retryAfter time.Duration
	clock      func() time.Time
	maxBatch   int
	workers    int
	cluster    int // 0 detect, 1 yes, -1 no
	singleSlot bool
}

func defaults() options {
	return options{
		prefix:     "weir:",
		maxKeyLen:  256,
		deadline:   50 * time.Millisecond,
		retryAfter: time.Second,
		maxBatch:   256,
		workers:    2,
	}
}

// WithPrefix sets the prefix of every Redis key the store writes. The
// default is "weir:". A deployment's Redis ACL can then allow only keys
// matching "~PREFIX*".
func WithPrefix(p string) Option { return optionFunc(func(o *options) { o.prefix = p }) }

// WithMaxKeyLength bounds the length of the Redis keys the store writes
// (default 256 bytes, prefix included). (name, key) pairs that would make a
// longer key are stored under a SHA-256 of them instead. The bound must
// leave room for the prefix and 84 bytes of tag and hash.
func WithMaxKeyLength(n int) Option { return optionFunc(func(o *options) { o.maxKeyLen = n }) }

// WithDeadline sets how long one decision may take, queueing and the round
// trip to Redis included, before it counts as a store failure and the
// failure policy decides (default 50ms). A caller's context deadline, when
// earlier, wins.
func WithDeadline(d time.Duration) Option { return optionFunc(func(o *options) { o.deadline = d }) }

// WithFailurePolicy sets what Take answers when Redis fails or is too slow
// (the default is FailError).
func WithFailurePolicy(p Policy) Option { return optionFunc(func(o *options) { o.policy = p }) }

// WithFallback makes the store decide with the local store fb when Redis
// fails or is too slow (policy Fallback): typically memstore.New(). share
// divides every limit's quota and burst (rounded up, at least 1) so that N
// processes falling back at once admit about what the shared limit would:
// pass the number of processes, or 1 to keep the limits as they are.
func WithFallback(fb weir.Store, share int64) Option {
	return optionFunc(func(o *options) {
		o.policy = Fallback
		o.fallback = fb
		o.share = share
	})
}

// WithFailClosedRetryAfter sets the RetryAfter of the decisions that policy
// FailClosed makes (default 1s).
func WithFailClosedRetryAfter(d time.Duration) Option {
	return optionFunc(func(o *options) { o.retryAfter = d })
}

// WithClock makes the store decide at the instants now returns instead of
// the Redis server's clock. It exists for tests (storetest.Run drives a
// fake clock through it); in production the server clock keeps processes
// with skewed clocks in agreement. Instants are truncated to whole
// microseconds, and TTLs get an extra minute, since Redis expires keys in
// real time while a fake clock may stand still.
func WithClock(now func() time.Time) Option { return optionFunc(func(o *options) { o.clock = now }) }

// WithBatching sets how many decisions one script call may carry (default
// 256) and how many script calls may be in flight at once (default 2).
// Concurrent decisions queue while calls are in flight and leave together
// in the next call, so throughput grows with concurrency while a lone
// caller still pays one round trip. WithBatching(1, n) sends every decision
// in its own call.
func WithBatching(maxBatch, inFlight int) Option {
	return optionFunc(func(o *options) {
		o.maxBatch = maxBatch
		o.workers = inFlight
	})
}

// WithCluster says whether the client talks to a Redis Cluster. By default
// the store assumes a cluster when the client is a *redis.ClusterClient.
// In a cluster, every check of one request must share a key (so that its
// Redis keys share a hash slot); batches are split by slot.
func WithCluster(on bool) Option {
	return optionFunc(func(o *options) {
		if on {
			o.cluster = 1
		} else {
			o.cluster = -1
		}
	})
}

// WithSingleSlot puts every key of the store in one Redis Cluster hash slot
// (tagged with a hash of the prefix), so that one request may check limits
// on different keys atomically, even in a cluster. The price: the store's
// whole state lives on one cluster node. Without it (the default), the state
// of each key lives in the slot of a hash of the key, spreading keys over
// the cluster, and every check of one request must share its key.
func WithSingleSlot() Option { return optionFunc(func(o *options) { o.singleSlot = true }) }
