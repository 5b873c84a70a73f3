package daemon

import (
	"context"
	"runtime"
	"sync"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-go/weir/server/envoyrls"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/grpcapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// buildGRPC builds the gRPC server and registers its services.
func (s *Server) buildGRPC() error {
	s.gs = grpc.NewServer(s.grpcOptions()...)
	s.health = health.NewServer()
	for _, name := range s.grpcServices(s.gs) {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s.gs, s.health)
	reflection.Register(s.gs)
	return nil
}

// grpcServices registers the API services on gs and returns the names the
// health service reports as serving ("" is the server as a whole). This
// is the one place a new gRPC service is registered.
func (s *Server) grpcServices(gs *grpc.Server) []string {
	s.api = grpcapi.New(s.svc, s.auth, grpcapi.WithGate(s.gate))
	weirv1.RegisterWeirServer(gs, s.api)
	rlv3.RegisterRateLimitServiceServer(gs, s.env)
	return []string{"", "weir.v1.Weir", "envoy.service.ratelimit.v3.RateLimitService"}
}

// grpcOptions are the gRPC server's limits, interceptors (request
// counters, auth, the in-flight gate), codec and credentials.
func (s *Server) grpcOptions() []grpc.ServerOption {
	reqs := newCodeCounters(s.m.Requests, "grpc")
	unary := []grpc.UnaryServerInterceptor{
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			reqs.inc(info.FullMethod, status.Code(err).String())
			return resp, err
		},
		grpcapi.AuthInterceptor(s.auth), grpcapi.GateInterceptor(s.gate),
	}
	stream := []grpc.StreamServerInterceptor{
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			err := h(srv, ss)
			reqs.inc(info.FullMethod, status.Code(err).String())
			return err
		},
		grpcapi.StreamAuthInterceptor(s.auth),
	}
	gopts := []grpc.ServerOption{
		// Reused worker goroutines keep grown stacks: without them every
		// RPC pays for stack growth (about a sixth of the CPU profile).
		grpc.NumStreamWorkers(uint32(max(128, 16*runtime.GOMAXPROCS(0)))),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(1024),
		grpc.ConnectionTimeout(s.o.HeaderTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Envoy descriptor values that are not UTF-8 are decided, not refused.
		grpc.ForceServerCodecV2(envoyrls.Codec()),
	}
	if s.tls != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(s.tls.ServerConfig())))
	}
	return gopts
}

// codeCounters caches the request counters by method and code, so the hot
// path skips hashing label values.
type codeCounters struct {
	vec *prometheus.CounterVec
	api string
	m   sync.Map // [2]string -> prometheus.Counter
}

func newCodeCounters(vec *prometheus.CounterVec, api string) *codeCounters {
	return &codeCounters{vec: vec, api: api}
}

func (c *codeCounters) inc(method, code string) {
	k := [2]string{method, code}
	if v, ok := c.m.Load(k); ok {
		v.(prometheus.Counter).Inc()
		return
	}
	ctr := c.vec.WithLabelValues(c.api, method, code)
	c.m.Store(k, ctr)
	ctr.Inc()
}
