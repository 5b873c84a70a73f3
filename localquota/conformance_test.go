package localquota_test

import (
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/storetest"
)

// TestConformance runs the parts of storetest that apply to a local-quota
// store over the memory store. Left out, and why (docs/localquota.md):
//
//   - Vectors, Model, Statuses, MultiLimit: they expect the shared state's
//     exact Remaining, ResetAfter and deciding limit; a local admission
//     reports the units this process holds.
//   - Bound: its sliding-log case checks the log's own window bound, and a
//     unit spent up to L after it was charged widens it to
//     Quota·⌈(T+L)/Period⌉ (TestBound checks that bound instead).
//   - Concurrency (its multi-limit case) and IdleThenBurst: units held in a
//     block look charged to a peek of the shared state, and a block taken
//     by a background refill just after the last caller stays unspent until
//     it is returned (within L), so "exactly the quota at one instant" does
//     not hold.
func TestConformance(t *testing.T) {
	storetest.RunOnly(t, func(t *testing.T, now func() time.Time) weir.Store {
		shared := memstore.New(memstore.WithClock(now))
		s, err := localquota.New(shared, localquota.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); shared.Close() })
		return s
	}, "Reservation", "RefundCeiling", "Lease", "LeaseLine", "Reset", "Invalid", "Keys", "Limiter")
}
