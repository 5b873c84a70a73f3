package redisstore_test

import (
	"testing"
	"time"

	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
	"github.com/weir-go/weir/storetest"
)

// BenchmarkCosts: a settle next to a plain Allow against a real
// redis-server on a free port: one round trip per operation, so
// reserve+settle is two (see storetest.BenchCosts).
//
//	go test -run '^$' -bench BenchmarkCosts -benchmem ./redisstore
func BenchmarkCosts(b *testing.B) {
	srv := redistest.Start(b)
	s, err := redisstore.New(srv.Client(), redisstore.WithDeadline(10*time.Second)) // a busy machine: measure, do not fail
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchCosts(b, s)
}
