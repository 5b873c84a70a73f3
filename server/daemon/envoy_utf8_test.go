package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawProto sends []byte as it is and decodes replies with the proto codec.
type rawProto struct{ encoding.CodecV2 }

func (c rawProto) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// TestEnvoyInvalidUTF8 (issue 16.3): weir serve decides an Envoy request
// whose descriptor value is not UTF-8 (as Envoy sends a header's bytes),
// counting distinct bytes apart, instead of failing it (which Envoy,
// failing open, would let through).
func TestEnvoyInvalidUTF8(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	os.WriteFile(file, []byte("domain: edge\ndescriptors:\n  - key: user\n    rate_limit: {unit: hour, requests_per_unit: 1}\n"), 0o600)
	s := start(t, "--envoy-config", file)
	cc := s.dial()
	call := func(value string) string {
		t.Helper()
		var entry, desc, req []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, "user")
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, value)
		desc = protowire.AppendTag(desc, 1, protowire.BytesType)
		desc = protowire.AppendBytes(desc, entry)
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendString(req, "edge")
		req = protowire.AppendTag(req, 2, protowire.BytesType)
		req = protowire.AppendBytes(req, desc)
		var resp rlv3.RateLimitResponse
		err := cc.Invoke(context.Background(), "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit", req, &resp,
			grpc.ForceCodecV2(rawProto{encoding.GetCodecV2("proto")}))
		if err != nil {
			t.Fatalf("user=%q: %v", value, err)
		}
		return resp.OverallCode.String()
	}
	for i, want := range []string{"OK", "OVER_LIMIT"} {
		if got := call("u\xff"); got != want {
			t.Fatalf("user=u\\xff, call %d: %s, want %s", i, got, want)
		}
	}
	if got := call("u\xfe"); got != "OK" {
		t.Fatalf("user=u\\xfe: %s, want OK (its own counter)", got)
	}
}
