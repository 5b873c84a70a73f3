// Command stream serves a large JSON array slowly and in constant memory:
// the streaming endpoint of Weir's examples, the counterpart of a Flask
// view that returns a generator.
//
//	go run ./examples/stream                  # listens on 127.0.0.1:8091
//	curl -s localhost:8091/records | head -c 300
//
// GET /records answers a JSON array of 400,000 records. Each record is
// built and encoded when it is its turn to be sent, and written through
// the response writer that [iolimit.Handler] throttles, so the server
// never holds the array (tens of megabytes) in memory: a slow client
// only slows the loop that encodes it, because a Write blocks until the
// client's byte budget lets it through. Peak memory stays flat however
// long the array is (the test checks it stays under 30 MiB).
//
// Every client gets its own budget of 32 KiB/s (-rate), and all clients
// together share one of 10 MiB/s (-total): a per-stream budget joined to
// a shared one with [iolimit.All]. The response is flushed every 64
// records, so the client sees records as they come rather than in
// large buffered chunks. A client that goes away cancels the request's
// context, which ends any wait at once and stops the encoding loop.
package main
