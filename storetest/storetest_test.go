package storetest

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-go/weir"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestModel runs the suite against the reference model itself: the hand
// derived vectors and the properties must hold for the algorithms as they
// are, before any store is involved.
func TestModel(t *testing.T) {
	Run(t, func(t *testing.T, now func() time.Time) weir.Store { return newModel(now) })
}
