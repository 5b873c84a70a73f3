package iolimit_test

import (
	"context"
	"io"
	"testing"

	"github.com/weir-go/weir/iolimit"
)

// BenchmarkWaitN is the cost of one WaitN that does not have to sleep.
func BenchmarkWaitN(b *testing.B) {
	lim := mustLimit(b, iolimit.MaxRate, 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := lim.WaitN(ctx, 32<<10); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitNParallel is BenchmarkWaitN with GOMAXPROCS goroutines
// sharing the Limit.
func BenchmarkWaitNParallel(b *testing.B) {
	lim := mustLimit(b, iolimit.MaxRate, 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := lim.WaitN(ctx, 32<<10); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReader is the cost of a throttled 32 KiB Read that does not
// have to sleep, from a reader that copies nothing.
func BenchmarkReader(b *testing.B) {
	lim := mustLimit(b, iolimit.MaxRate, 1<<20)
	r := iolimit.NewReader(context.Background(), nopReader{}, lim)
	p := make([]byte, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read(p); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

type nopReader struct{}

func (nopReader) Read(p []byte) (int, error) { return len(p), nil }
