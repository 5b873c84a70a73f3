// Command distributed shows several processes sharing limits through
// Redis: a rate limit on a job queue (50 jobs per second, bursts of 10)
// and a semaphore on a fragile partner API (at most 3 calls at once),
// both held in Redis by redisstore, so they hold across every process.
//
// Run it against a Redis server:
//
//	go run ./examples/distributed -redis localhost:6379 -procs 4 -duration 5s
//
// The command starts -procs worker processes (itself, re-executed), each
// taking jobs as fast as the shared rate limit lets it and calling the
// "partner API" under the shared semaphore. At the end it prints what
// every worker did and checks the totals: the jobs started stay within
// burst + rate × time, and the partner API never saw more than 3 calls at
// once, whatever the number of processes.
package main
