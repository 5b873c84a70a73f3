// Package iolimit throttles streams of bytes: readers, writers, network
// connections, listeners and HTTP responses, where every byte is a token.
//
// A [Budget] hands out bytes. The usual one is a [Limit], an in-process
// token bucket of bytes refilled continuously (GCRA, in integer
// nanoseconds):
//
//	lim, err := iolimit.NewLimit(256<<10, 0) // 256 KiB/s, default burst
//	r := iolimit.NewReader(ctx, file, lim)
//	io.Copy(dst, r) // never faster than 256 KiB/s
//
// A Reader reads first and then waits for the bytes actually read; a Writer
// waits and then writes. Neither hands one Read or Write more than the
// budget's burst: larger buffers are split, so a 16 MiB buffer works with a
// 64 KiB burst. In any interval of length T, at most burst + rate·T bytes
// pass a Limit.
//
// # Shared and per-stream budgets
//
// One Limit may be used by many streams at once: it is then an aggregate
// budget (say 10 MiB/s for a whole server). Waiters are served in the order
// they asked, so no stream starves. [All] combines budgets: a stream
// throttled by All(perStream, shared) never exceeds its own rate and all
// the streams together never exceed the shared one.
//
// A budget shared by several processes lives in a Weir store: [NewStoreBudget]
// draws bytes from a [weir.Limiter] in batches, so a Redis round trip is
// paid per batch rather than per write.
//
// The rate of a Limit can be changed while streams run ([Limit.SetRate]);
// sleeping waiters wake at the time the new rate gives them. Every wait
// ends at once, with the context's error, when its context is done.
//
// Budgets, Readers and Writers are safe for concurrent use as their
// underlying streams are; a Reader or Writer is meant for one goroutine,
// a Budget for many.
package iolimit
