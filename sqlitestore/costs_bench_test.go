package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/weir-go/weir/sqlitestore"
	"github.com/weir-go/weir/storetest"
)

// BenchmarkCosts: a settle next to a plain Allow, on a real file (WAL, one
// transaction per operation; see storetest.BenchCosts).
//
//	go test -run '^$' -bench BenchmarkCosts -benchmem ./sqlitestore
func BenchmarkCosts(b *testing.B) {
	s, err := sqlitestore.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchCosts(b, s)
}
