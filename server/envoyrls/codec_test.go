package envoyrls

import (
	"context"
	"net"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends []byte as it is (a request proto.Marshal would refuse)
// and decodes replies with the proto codec.
type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// rawRequest encodes a RateLimitRequest of one domain and one descriptor
// per (key, value), strings as raw bytes.
func rawRequest(domain string, entries ...[2]string) []byte {
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendString(req, domain)
	for _, e := range entries {
		var entry, desc []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, e[0])
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, e[1])
		desc = protowire.AppendTag(desc, 1, protowire.BytesType)
		desc = protowire.AppendBytes(desc, entry)
		req = protowire.AppendTag(req, 2, protowire.BytesType)
		req = protowire.AppendBytes(req, desc)
	}
	return req
}

// TestInvalidUTF8Decides (issue 16.3): Envoy may put any byte of a header
// into a descriptor value. With the proto codec such a request failed
// (INTERNAL: invalid UTF-8) and Envoy let it through; with Codec it is
// decided, and "u\xff" and "u\xfe" are counted apart.
func TestInvalidUTF8Decides(t *testing.T) {
	s, _ := newTestServer(t, "testdata/reference.yaml", false)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(Codec()))
	rlv3.RegisterRateLimitServiceServer(gs, s)
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2("proto")})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call := func(value string) string {
		t.Helper()
		var resp rlv3.RateLimitResponse
		err := conn.Invoke(context.Background(), "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
			rawRequest("ref", [2]string{"basic", value}), &resp)
		if err != nil {
			t.Fatalf("basic=%q: %v", value, err)
		}
		return resp.OverallCode.String()
	}
	for i, want := range []string{ok, ok, ok, over} {
		if got := call("u\xff"); got != want {
			t.Fatalf("basic=u\\xff, call %d: %s, want %s", i, got, want)
		}
	}
	if got := call("u\xfe"); got != ok {
		t.Fatalf("basic=u\\xfe after u\\xff is over: %s, want OK (its own counter)", got)
	}
	// Valid requests decode as before, through the proto codec.
	if got := call("plain"); got != ok {
		t.Fatalf("basic=plain: %s", got)
	}
}

// TestDecodeRequestMatchesProto: on valid input the lenient decoder gives
// what proto.Unmarshal gives for the fields the server reads.
func TestDecodeRequestMatchesProto(t *testing.T) {
	in := &rlv3.RateLimitRequest{Domain: "ref", HitsAddend: 7, Descriptors: ds(
		withLimit(withHits(d("a=b", "c=d"), 3), 5, 2), d("x=é"),
	)}
	in.Descriptors[1].IsNegativeHits = true
	b, err := encoding.GetCodecV2("proto").Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out rlv3.RateLimitRequest
	if err := decodeRequest(b.Materialize(), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != in.String() {
		t.Errorf("lenient decode:\n%v\nwant\n%v", &out, in)
	}
	if err := decodeRequest([]byte{0x0a, 0x05, 'a'}, &out); err == nil {
		t.Error("truncated input: no error")
	}
}
