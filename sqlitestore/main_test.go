package sqlitestore

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("WEIR_SQLITE_HELPER") != "" {
		// A child process of the multi-process tests: no leak check, it
		// is killed or exits on its own.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}
