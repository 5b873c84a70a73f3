package grpcapi

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/weir-go/weir/server/gen/weirv1"
)

// The benchmarks below run a real gRPC server and its client in the same
// process over loopback TCP: ns/op is the wall time per decision with
// both sides sharing the machine's cores. The parallel variants run 8
// goroutines per core, each on its own key (and its own stream).

// benchParallelism is the goroutines per GOMAXPROCS of the parallel
// variants: enough calls in flight to keep both sides busy.
const benchParallelism = 8

// BenchmarkCheckUnary is one decision per Check call.
func BenchmarkCheckUnary(b *testing.B) {
	ts := startServer(b, nil, nil)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		req := &weirv1.CheckRequest{Policy: "big", Key: "serial"}
		for b.Loop() {
			if _, err := ts.client.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		var g atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			req := &weirv1.CheckRequest{Policy: "big", Key: fmt.Sprint("p", g.Add(1))}
			for pb.Next() {
				if _, err := ts.client.Check(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCheckStream is one decision per CheckStream message: serial
// waits for each answer before sending the next message; pipelined keeps
// up to 64 messages in flight on one stream; parallel runs one stream
// per goroutine, each waiting for its answers.
func BenchmarkCheckStream(b *testing.B) {
	ts := startServer(b, nil, nil)
	open := func(b *testing.B) weirv1.Weir_CheckStreamClient {
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		st, err := ts.client.CheckStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		st := open(b)
		msg := check(0, "big", "serial")
		for b.Loop() {
			msg.Id++
			if err := st.Send(msg); err != nil {
				b.Fatal(err)
			}
			if r, err := st.Recv(); err != nil || r.Id != msg.Id {
				b.Fatal(r, err)
			}
		}
	})
	b.Run("pipelined", func(b *testing.B) {
		b.ReportAllocs()
		const window = 64
		st := open(b)
		msg := check(0, "big", "pipelined")
		var sent, answered uint64
		recv := func() {
			if r, err := st.Recv(); err != nil || r.Id != answered+1 {
				b.Fatal(r, err)
			}
			answered++
		}
		for b.Loop() {
			sent++
			msg.Id = sent
			if err := st.Send(msg); err != nil {
				b.Fatal(err)
			}
			if sent-answered == window {
				recv()
			}
		}
		for answered < sent {
			recv()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		var g atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := ts.client.CheckStream(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			msg := check(0, "big", fmt.Sprint("p", g.Add(1)))
			for pb.Next() {
				msg.Id++
				if err := st.Send(msg); err != nil {
					b.Error(err)
					return
				}
				if r, err := st.Recv(); err != nil || r.Id != msg.Id {
					b.Error(r, err)
					return
				}
			}
		})
	})
}
