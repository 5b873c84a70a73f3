package envoyrls

import (
	"context"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// FuzzShouldRateLimit (R21) feeds arbitrary protobuf bytes to the Envoy
// service: never a panic; errors are INVALID_ARGUMENT; every answer has
// one status per descriptor.
func FuzzShouldRateLimit(f *testing.F) {
	for _, req := range []*rlv3.RateLimitRequest{
		{Domain: "ref", Descriptors: ds(d("basic=x"), d("message_type=marketing", "to_number=1"))},
		{Domain: "ref", HitsAddend: 7, Descriptors: ds(withHits(d("path=/api/x"), 0), withLimit(d("a=b"), 3, 2))},
		{Domain: "ref", Descriptors: ds(d("tenant=a"), d("premium=a"), d("shared_path=/static/x"))},
		{Domain: "other"},
	} {
		b, _ := proto.Marshal(req)
		f.Add(b)
	}
	s, _ := newTestServer(f, "testdata/reference.yaml", false)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req rlv3.RateLimitRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		resp, err := s.ShouldRateLimit(context.Background(), &req)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("error %v, want INVALID_ARGUMENT", err)
			}
			return
		}
		if len(resp.Statuses) != len(req.Descriptors) {
			t.Fatalf("%d statuses for %d descriptors", len(resp.Statuses), len(req.Descriptors))
		}
	})
}
