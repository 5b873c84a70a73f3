package memstore_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) weir.Store {
		s := memstore.New(memstore.WithClock(now))
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// The suite again with a tiny sweep interval, a key cap the suite never
// reaches, and the sweeper racing every decision.
func TestConformanceSweeping(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) weir.Store {
		s := memstore.New(memstore.WithClock(now), memstore.WithSweep(time.Millisecond), memstore.WithMaxKeys(100_000))
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
