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
// collection comes after gcHeadroom bytes of allocation, within GOGC 50 to
// 1000. It does
// nothing when the GOGC environment variable is set. It returns when stop
// is closed.
func tuneGC(stop <-chan struct{}, interval time.Duration) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(interval)
	defer t.Stop()
	defer debug.SetGCPercent(100)
	cur := 100
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live := max(sample[0].Value.Uint64(), 1<<20)
			pct := int(max(50, min(uint64(gcHeadroom)*100/live, 1000)))
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
