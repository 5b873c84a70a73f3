package telemetry

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/weir-go/weir/server/service"
)

// BenchmarkObserve measures what one store call costs the request path
// with both signals on: a span and two metric points. The exporters point
// at a closed port; batching and export run off the request path.
func BenchmarkObserve(b *testing.B) {
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
	b.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", GRPC)
	cfg, err := Parse(os.Getenv) // the exporters read the endpoint there too
	if err != nil {
		b.Fatal(err)
	}
	tel, err := Start(context.Background(), cfg, "memory")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		tel.Shutdown(ctx) // fails: nothing listens; only the cost matters
	}()
	o := service.Observation{Op: "take", Policy: "login", Limit: "5/m", Cost: 1, Outcome: "allowed", Start: time.Now(), Duration: time.Millisecond}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tel.Observe(ctx, o)
	}
}
