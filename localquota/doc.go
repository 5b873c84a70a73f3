// Package localquota decides at memory speed over a shared store: a
// [Store] wraps any authoritative weir.Store (Redis, SQLite, memory) and
// keeps a local allowance per (limit, key). It takes units from the shared
// state in blocks, admits from them without a round trip, and gives back
// what it did not use.
//
// # What it guarantees
//
// Every unit admitted locally was first taken from the shared state (exact
// accounting). So over a whole run the total admitted by every process
// together is within the shared limit's own bound, with nothing over: a
// token bucket admits at most Burst + Rate·T, a fixed window at most Quota
// per window. A unit may be spent later than it was taken, but never more
// than L after (L is [WithHold], 100 ms by default), which bounds how much
// a short interval can see:
//
//   - token bucket: at most Burst + ⌊(T+L)·Quota/Period⌋ in any interval of
//     length T;
//   - fixed window and sliding counter: exactly their own bounds (a block
//     lapses with the epoch-aligned window that paid for it, so at most
//     Quota per window);
//   - sliding log: at most Quota·⌈(T+L)/Period⌉ in any interval of length
//     T (so up to 2·Quota in a window of Period when L > 0);
//   - concurrency: unchanged (at most Quota held): leases, reservations
//     (MaxWait), places in line (Queue) and peeks go to the shared store as
//     they are.
//
// docs/algorithms.md derives each bound and draws the timeline.
//
// # Blocks
//
// A check that holds fewer units than a request needs takes a block from
// the shared store, sized by the demand its key shows (the units it spends
// per half hold) with slow start: a block a caller waited for is twice the
// last while blocks are spent before they lapse (a key's first block is
// ⌈rate·L/64⌉, at most a sixteenth of the capacity), and units that go back
// unspent shrink the next blocks. A block is at least what the request needs and at most
// [WithMaxBlock] and the limit's capacity. It is taken at most what the
// shared state can give: when a Take of the whole block is denied, what
// remained is taken instead (one more round trip). When what a check holds
// beyond a lead would not cover its demand (of a half hold; of the lead
// for a fast token bucket, below), a background Take refills it so callers
// rarely wait. The lead follows the measured round trip of refills (three
// times it, from L/8 to L/2); a block lives L less the lead, so a slow
// store costs more Takes (Stats reports the lead and the round trips of
// refills). A request that lacks units while such
// a refill is in flight waits for it rather than asking the shared store
// (which the refill may have emptied). A steady key whose decisions come
// further apart than a quarter hold (up to two holds) is refreshed by the
// background sweep shortly before its next decision is expected, so that
// decision does not wait either; so is every such key while most of the
// process's decisions wait (a closed loop of callers over many keys). No
// lock is held across a round trip. A denial from the shared store is
// remembered until its RetryAfter, so an exhausted limit does not cost a
// round trip per request.
//
// Unspent units go back to the shared store when a block is about to lapse
// (unless a return then would give nothing back: a fast token bucket, whose
// rate·L covers the block, refills those units anyway, so its blocks are
// spent until they expire and its refills are sized for a whole hold),
// when its key has been idle for three quarters of a hold (again unless the
// return would give nothing), and on Close, never leaving
// the shared state more permissive than if they had not been taken: window
// and log units are refunded by their charge instant (nothing once their
// window has passed), and token-bucket units less those that refilled since
// the charge, dated so that a refund delayed past its date gives nothing.
//
// # Optimistic mode
//
// With [WithOptimistic](S) a process admits from a credit first and charges
// the shared store every S instead (and at once when a key's credit runs
// low): no decision waits for the store after a key's first request, and
// with N processes the fleet admits at most the shared limit's bound +
// N·⌈rate·S⌉ over any run from its start (each process has at most
// ⌈rate·S⌉ units admitted and not yet charged).
//
// # Failures
//
// When the shared store fails, a process keeps admitting from the blocks it
// holds until they lapse, then returns the shared store's answer: its error,
// or the Decision of its failure policy (redisstore's fail-open, fail-closed
// or fallback). A block whose Take failed was not counted; a unit whose
// return failed stays charged (lost, never counted twice).
//
// # Decisions
//
// A local admission's Decision has Remaining = the units this process still
// holds for the deciding limit (the shared state may hold more), Time = the
// store's clock estimated from the block's charge instant, and Source =
// SourceStore. Denials are the shared store's.
package localquota
