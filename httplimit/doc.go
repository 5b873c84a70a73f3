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
// A policy can charge after the handler instead, when the cost is known
// only from the outcome: Count selects the outcomes that cost anything
// (Count: [StatusIn](401, 403) for a login limit that only failures use
// up, so a user who logs in correctly is never locked out), Cost weighs
// them ([ReportedCost], what the handler reported with [ReportCost], or
// [HeaderCost]), and Estimate is taken before the handler and settled to
// the actual cost after; a cost past what is left puts the key into debt.
// The RateLimit fields of the response carry the charge when it is known
// as the head is sent (see docs/costs.md).
//
// Key functions: [BasicAuthUser], [Header] (an API key), [ClientIP] and
// [RemoteIP] (addresses, IPv6 grouped by /64, forwarding headers read only
// from trusted proxies), and [FirstOf] to chain them. A request that cannot
// be keyed is refused (400, or 401 without credentials), never admitted.
// A store error answers 503 unless the store itself fails open.
//
// # Client
//
// [Transport] is an http.RoundTripper that keeps a client within an
// upstream's rate limit and fills it: requests leave evenly spaced, each at
// least a window (plus a measured margin) after the send whose slot it
// reuses, at the limit the caller tells it (Transport.Limit) or the one the
// upstream advertises (RateLimit-Policy, draft-11 and draft-07, or
// X-RateLimit-*), learnt from a first probe; an upstream that says nothing
// has its limit learnt from its 429s (slow start, then the requests it
// admitted in the window before the first 429). The pace, and what was
// learnt, live in any [weir.Store] (Transport.Store), so processes that
// share one pace together. Transport.Timeout starts at each send, so
// waiting for a turn never spends it; [Transport.Wait] takes the turn apart
// from the send. It can retry idempotent requests after a 429 or 503.
//
// A [Budget] (Transport.Budget) keeps a second limit in units whose cost
// the response reveals (LLM tokens): an estimate is taken before each send
// and settled from the response's head or body, in the same store, so
// processes sharing it stay within one tokens-per-minute budget.
//
// [Pool] drains a channel of [Job] values with many workers through a
// Transport, handing a job to it only when it may be sent, putting 429s
// back in the queue, and keeps [Stats] (done, 429s, in flight, queued,
// achieved rate against the limit, latency percentiles).
//
//	tr := &httplimit.Transport{Limit: weir.PerSecond(4), Timeout: 30 * time.Second}
//	pool := &httplimit.Pool{Transport: tr, Workers: 40}
//	undone, err := pool.Run(ctx, jobs)
package httplimit
