package memstore_test

import (
	"testing"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/storetest"
)

// BenchmarkCosts: a settle next to a plain Allow (see storetest.BenchCosts).
//
//	go test -run '^$' -bench BenchmarkCosts -benchmem ./memstore
func BenchmarkCosts(b *testing.B) {
	s := memstore.New()
	defer s.Close()
	storetest.BenchCosts(b, s)
}
