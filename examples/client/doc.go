// Command client is the client-side demo of Weir: a worker pool that calls
// a rate-limited API as fast as the API allows, and no faster.
//
// By default it starts a local API that admits at most 4 requests in any
// second (an exact sliding log), answers in 200 ms, sends the draft-11
// RateLimit-Policy and RateLimit fields, and answers 429 Too Many Requests,
// with Retry-After, to anything over its limit. Then 40 workers drain 60
// jobs through an httplimit.Pool over an httplimit.Transport, the
// recommended setup: the transport sends one probe, learns the limit from
// its answer (or is told it with -rate), and paces the requests evenly,
// each at least a second plus a measured margin after the send whose slot
// it reuses; the pool hands a job to it only when it may be sent, so the
// transport's 30 s Timeout starts at the send.
//
// The statistics line is printed every second, and a summary at the end:
//
//	done 60 (ok 60, failed 0), 429s 0, retries 0, in flight 0, queued 0, rate 3.98/s of 4.00/s (99.6%, RateLimit-Policy), latency avg 200.0ms p99 198.7ms, 15.0s
//	jobs: 60 done, 0 failed, 0 undone, 0 still queued
//
// (that line is from the in-process test, TestDemo, in fake time; over
// loopback on a busy machine the rate is lower, see docs/http.md).
//
// Flags: -jobs, -workers, -rate (the API's limit as told to the client; 0,
// the default, learns it), -server-rate and -latency (the local API),
// -url (call another API instead of starting the local one). Ctrl-C stops
// the pool gracefully: requests in flight finish and the number of jobs
// left undone is printed.
//
//	go run ./examples/client
//	go run ./examples/client -rate 4 -jobs 200
package main
