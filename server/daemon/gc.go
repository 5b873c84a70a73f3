package daemon

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the least garbage the collector lets accumulate before a
// cycle. A rate-limit server's live heap is often a few MiB, so with the
// default GOGC=100 it would collect dozens of times a second under load,
// and every cycle also shrinks the stacks of the gRPC workers, which then
// grow again: a fifth of the CPU profile. Keeping at least this much
// headroom cut the server's CPU per gRPC decision by about a third in the
// load generator's runs (docs/server.md). Large heaps (many keys) go the
// other way, down to GOGC=50, so that a store of millions of keys carries
// half its size in garbage rather than all of it.
const gcHeadroom = 16 << 20

// tuneGC adjusts the GC percentage every interval so that the next
// collection comes after gcHeadroom bytes of allocation (see gcPercent).
// It does nothing when the GOGC environment variable is set. It returns
// when stop is closed.
func tuneGC(stop <-chan struct{}, interval time.Duration) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	defer debug.SetGCPercent(100)
	cur := 100
	for {
		metrics.Read(sample)
		var v [3]uint64
		ok := true
		for i, s := range sample {
			if s.Value.Kind() != metrics.KindUint64 {
				ok = false
				break
			}
			v[i] = s.Value.Uint64()
		}
		if ok {
			pct := gcPercent(v[0], v[1], v[2])
			// Avoid churn: only move on a 25% change.
			if pct*4 < cur*3 || pct*3 > cur*4 {
				debug.SetGCPercent(pct)
				cur = pct
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// gcPercent is the GC percentage that puts the next collection gcHeadroom
// bytes above the live heap, within 50 to 1000. The runtime's heap goal is
// live + (live + stacks + globals) × GOGC/100, so the percentage divides
// by all three: dividing by the live heap alone would multiply the stacks
// (which swing with the requests in flight) by up to ten and make the
// heap goal, and the resident set, swing with them.
func gcPercent(live, stacks, globals uint64) int {
	scan := max(live+stacks+globals, 1<<20)
	return int(max(50, min(uint64(gcHeadroom)*100/scan, 1000)))
}
