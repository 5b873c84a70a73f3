// Package redisstore keeps Weir's limiter state in Redis (or Valkey), so
// that many processes, on many machines, share one set of limits:
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379", MaxRetries: -1})
//	store, err := redisstore.New(client, redisstore.WithFailurePolicy(redisstore.FailClosed))
//	if err != nil { ... }
//	defer store.Close()
//	lim, err := weir.NewLimiter(store, weir.PerSecond(100), weir.PerDay(10000))
//	d, err := lim.Allow(ctx, "user:42")
//
// # Algorithms and exactness
//
// Every algorithm of Weir (token bucket as GCRA, sliding-window log,
// sliding-window counter, fixed window, concurrency leases) runs as a Lua
// port of internal/algo, in scripts/*.lua embedded in the binary. The
// ports use exact integer arithmetic in microseconds (Lua numbers are
// doubles, exact below 2^53; products beyond that go through an exact
// long multiplication), and the shared conformance suite (storetest)
// checks them decision for decision against the Go algorithms. Limits
// with a Quota or Burst above 2^51 are refused with a *weir.FieldError.
//
// # One script run per decision
//
// A decision, with all of its limits, is one script run: checked, then
// charged only if every limit admits, atomically. Keys and values reach
// the script only through KEYS and ARGV, laid out as wire.go defines (the
// layout is tabled in docs/redis.md, "Wire format"). Concurrent decisions are batched:
// while a script call is in flight, new decisions queue and leave together
// in the next call ([WithBatching]); each stays atomic on its own.
//
// # Time
//
// Decisions use the Redis server's clock (TIME, in microseconds), so
// processes whose clocks disagree still share one timeline. [WithClock]
// replaces it for tests.
//
// # Keys and Redis Cluster
//
// The state of a limit on a key lives under PREFIX{TAG}... where TAG is a
// hash of the key: every limit of one key shares a hash slot, keys spread
// over a cluster, and no input can choose the slot. In a cluster, the
// checks of one request must share their key (a [weir.Limiter] always
// does), or the store must use [WithSingleSlot].
//
// # Failures
//
// A decision that Redis does not answer within the deadline (50ms by
// default, [WithDeadline]) is decided by the failure policy: an error
// matching weir.ErrUnavailable (the default), deny ([FailClosed]), admit
// ([FailOpen]), or a local store ([WithFallback]); Decision.Source says
// which. The script is sent again with EVAL when Redis lost it (NOSCRIPT),
// which is safe since nothing ran. Configure the client with MaxRetries: -1:
// a client retry after a broken connection can apply a decision twice.
//
// See docs/redis.md for the key layout, the minimal ACL, and benchmarks.
package redisstore
