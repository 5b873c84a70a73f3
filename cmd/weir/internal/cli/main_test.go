package cli

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	pipeGoTimers = true // in-process pipe tests run under testing/synctest
	goleak.VerifyTestMain(m)
}
