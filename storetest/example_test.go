package storetest_test

import (
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/storetest"
)

// A store's conformance test: the factory gives each subtest a fresh store
// on the suite's clock and closes it when the subtest ends.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, now func() time.Time) weir.Store {
			s := memstore.New(memstore.WithClock(now))
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	}
}
