// Package httplimit limits HTTP traffic in both directions with weir
// limiters: a server middleware that limits clients by key and tells them
// where they stand, and a client side that keeps within a server's limits.
//
// # Server
//
// [New] builds a [Middleware] from one or more [Policy] values, each a
// [weir.Limiter] (one or several limits, such as 10/s and 1000/day), a
// [KeyFunc] and an optional route or method match:
//
//	lim, _ := weir.NewLimiter(memstore.New(), weir.PerSecond(10).WithName("burst"), weir.PerDay(1000).WithName("daily"))
//	mw, _ := httplimit.New(httplimit.Policy{Limiter: lim, Key: httplimit.BasicAuthUser()})
//	http.Handle("/", mw.Handler(app))
//
// Every response carries the fields of the IETF draft
// draft-ietf-httpapi-ratelimit-headers-11:
//
//	RateLimit-Policy: "burst";q=10;w=1, "daily";q=1000;w=86400
//	RateLimit: "burst";r=9;t=1, "daily";r=999;t=87
//
// q and w are each limit's Quota and Period (for a token bucket, its
// sustained rate; the burst is not advertised), r is what remains of it
// and t the seconds until it is whole again, rounded up. The legacy
// X-RateLimit-Limit, -Remaining and -Reset fields are optional
// ([WithHeaders]). A denied request gets 429 Too Many Requests with
// Retry-After in whole seconds, rounded up so that a retry at that time is
// admitted, and an RFC 9457 application/problem+json body of type
// quota-exceeded naming the violated policies ([WithOnLimited] replaces it).
//
// Key functions: [BasicAuthUser], [Header] (an API key), [ClientIP] and
// [RemoteIP] (addresses, IPv6 grouped by /64, forwarding headers read only
// from trusted proxies), and [FirstOf] to chain them. A request that cannot
// be keyed is refused (400, or 401 without credentials), never admitted.
// A store error answers 503 unless the store itself fails open.
//
// # Client
//
// [Transport] is an http.RoundTripper that waits for a unit of a limiter
// before each request (per host by default; any store, so processes can
// share one outgoing budget) and adapts to what servers say: Retry-After,
// RateLimit and RateLimit-Policy (draft-08+ and draft-07) and
// X-RateLimit-*. It can retry idempotent requests after a 429 or 503.
//
// [Pool] drains a channel of [Job] values with many workers under a shared
// limit, paced evenly, putting limited jobs back in the queue, and keeps
// [Stats] (throughput, latency percentiles, retries).
package httplimit
