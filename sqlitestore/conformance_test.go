package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/storetest"
)

// TestConformance runs the shared store suite on a real database file.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) weir.Store {
		s, err := Open(filepath.Join(t.TempDir(), "weir.db"), WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}
