// Command llmgateway is a small reverse proxy in front of an
// OpenAI-compatible API that limits each API key to requests per minute
// AND tokens per minute, the way LLM providers meter their customers.
//
// A token budget is a cost known only after the work: the prompt's size
// is a guess until a tokenizer counts it, and the completion's arrives
// with the answer. So the gateway
//
//  1. estimates the request's tokens before sending it: the prompt at 4
//     bytes per token, plus 4 per message and 3 for the reply's priming,
//     plus the completion cap (max_tokens or max_completion_tokens,
//     -default-max-tokens without one) times n;
//  2. takes the estimate from the key's token budget, and one unit from
//     its request budget, and answers 429 (Retry-After, and the RateLimit
//     fields) if either does not fit;
//  3. forwards the request, reads usage.total_tokens from the answer and
//     settles the budget to it: an answer that cost less gives the rest
//     back, one that cost more charges the excess, into debt if need be
//     (the key's next requests then wait until time has repaid it). An
//     error answer without usage costs nothing. A stream is passed on as
//     it comes and settled from its usage chunk when it ends (the client
//     asks for one with stream_options.include_usage); without one, the
//     estimate stands.
//
// It is built on httplimit's charge-after-the-handler policies
// (Policy.Estimate, Policy.Cost = httplimit.ReportedCost and
// httplimit.ReportCost), so every answer carries the standard RateLimit
// fields for both budgets, with the settled token charge:
//
//	RateLimit-Policy: "requests";q=60;w=60, "tokens";q=10000;w=60
//	RateLimit: "requests";r=59;t=1, "tokens";r=9938;t=1
//
// Keys are the bearer tokens of the Authorization header, hashed before
// they reach the store. With -redis the budgets live in Redis and every
// gateway that uses it shares them; a key then uses at most
//
//	TPM + TPM/60 · T + P · E
//
// tokens over any T seconds from its first request, where P is the
// number of its requests in flight at once and E the largest excess of a
// request's actual tokens over its estimate (docs/costs.md derives it).
// The test TestTokenBudgetTwoProcesses checks it with two gateway
// processes sharing a real redis-server.
//
// Try it (it starts a fake upstream in process unless -upstream is given):
//
//	go run ./examples/llmgateway      # listens on 127.0.0.1:8092
//	curl -i -H 'Authorization: Bearer sk-alice' -d '{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"Tell me a story about a weir"}]}' http://127.0.0.1:8092/v1/chat/completions
//
// Flags: -upstream URL (a real OpenAI-compatible API; the client's
// Authorization header is passed on), -redis ADDR (-redis-deadline, 250ms:
// how long a decision may wait for Redis before a 503), -rpm, -tpm,
// -default-max-tokens, -addr.
package main
