package grpcapi

import (
	"context"
	"strings"
	"testing"

	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Acquire on a policy without a concurrency limit is INVALID_ARGUMENT
// naming policy, as over HTTP: a lease of a rate limit would hold nothing.
func TestAcquireRatePolicy(t *testing.T) {
	s := newServer(t)
	_, err := s.Acquire(context.Background(), &weirv1.CheckRequest{Policy: "api", Key: "k"})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "policy: ") {
		t.Errorf("acquire on a rate policy: %v, want INVALID_ARGUMENT starting with \"policy: \"", err)
	}
}
