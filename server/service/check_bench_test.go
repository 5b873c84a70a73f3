package service

import (
	"context"
	"testing"
)

// BenchmarkCheck measures one decision through the service on a memory
// store, with no observer set (the server's default).
func BenchmarkCheck(b *testing.B) {
	s, _, _ := newService(b, "policies:\n  p: {limits: [\"1000000000/s\"]}\n")
	ctx := context.Background()
	req := &Request{Policy: "p", Key: "k", Cost: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
