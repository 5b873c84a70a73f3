// Command webapp is the web-app demo of Weir's HTTP middleware: a small
// API whose users sign in with basic auth and are each limited per
// endpoint.
//
//	GET /        5 requests per second per user
//	GET /pizza   two limits at once: 2 per second and 20 per minute per user
//	GET /pasta   1 request per second per user
//
// The users are alice (password "pizza") and bob (password "pasta").
// Authentication runs first, so a client cannot spread its traffic over
// made-up user names; unauthenticated requests get 401 before any limit
// is consulted.
//
// Every response carries the IETF draft rate-limit fields, for example
//
//	RateLimit-Policy: "pizza-second";q=2;w=1, "pizza-minute";q=20;w=60
//	RateLimit: "pizza-second";r=1;t=1, "pizza-minute";r=19;t=3
//
// and a request over a limit gets 429 Too Many Requests with Retry-After
// and an application/problem+json body.
//
// The limiter state lives in memory by default (-store memory). With
// -store redis the state lives in Redis (-redis localhost:6379), so several
// instances of the app share the same per-user budgets.
//
// Try it:
//
//	go run ./examples/webapp                  # listens on 127.0.0.1:8090
//	curl -i -u alice:pizza http://127.0.0.1:8090/pizza
//
// A thin main wires flags and signals to run, which the tests call.
package main
