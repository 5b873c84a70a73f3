// Package memstore is Weir's in-memory [weir.Store], the embedded default:
// limiter state for a single process, with no dependencies beyond the
// standard library.
//
//	store := memstore.New()
//	lim, err := weir.NewLimiter(store, weir.PerSecond(10))
//
// It runs the same algorithms as every other store (internal/algo) and
// passes the same conformance suite (storetest). A decision on an existing
// key takes a shard lock, a hash-table lookup and a few integer operations,
// and allocates nothing for token buckets, fixed windows and sliding
// counters (sliding logs and leases append to slices now and then). Memory is bounded by [WithMaxKeys]; idle state is
// evicted only when it is fresh, so eviction never lets one extra request
// through. See docs/memstore.md for the design and measurements.
package memstore
