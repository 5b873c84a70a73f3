package envoyrls_test

import (
	"net"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/envoyrls"
	"google.golang.org/grpc"
)

// Serve the Envoy rate-limit service with its codec, so that descriptor
// values that are not UTF-8 are decided rather than failed (and let
// through by Envoy).
func ExampleCodec() {
	domains, _, err := config.LoadEnvoy("testdata/reference.yaml")
	if err != nil {
		panic(err)
	}
	store := memstore.New()
	defer store.Close()
	rls := envoyrls.New(store, domains, envoyrls.Options{QuotaMode: true}, nil)
	gs := grpc.NewServer(grpc.ForceServerCodecV2(envoyrls.Codec()))
	rlv3.RegisterRateLimitServiceServer(gs, rls)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go gs.Serve(lis)
	gs.Stop()
}
