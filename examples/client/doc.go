// Command client is the client-side demo of Weir: a worker pool that calls
// a rate-limited API as fast as the API allows, and no faster.
//
// By default it starts a local API that enforces 4 requests per second
// (token bucket, burst 1) and answers 429 Too Many Requests, with
// Retry-After, to anything over that. Then 40 workers drain 60 jobs through
// an httplimit.Pool paced at 4 requests per second: the pool's limiter
// spaces the requests evenly (one every 250 ms, not 40 at once), a job that
// still gets a 429 goes back in the queue, and the client's
// httplimit.Transport reads the API's RateLimit fields to slow down if the
// API allows less than the pool was told.
//
// Live statistics are printed every second, and a summary at the end (one
// run of go run ./examples/client):
//
//	[60] requests processed in [14.9] seconds with average time [6647.8] ms, total throughput: [4.04] rps, p50 [7274.5] ms, p99 [10092.5] ms, retries [0]
//	429 responses: 0, failed: 0, undone: 0, still queued: 0
//
// The average time includes the wait for a turn: with 40 workers and 4
// requests per second, most jobs queue for several seconds.
//
// Flags: -jobs, -workers, -rate (the pool's pace), -server-rate (the local
// API's limit), -url (call another API instead of starting the local one).
// Ctrl-C stops the pool gracefully: requests in flight finish and the
// number of jobs left undone is printed.
//
//	go run ./examples/client
//	go run ./examples/client -rate 8 -server-rate 4   # the transport adapts to 4/s
package main
