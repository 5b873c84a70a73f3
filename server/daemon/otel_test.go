package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/server/gen/weirv1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-process OTLP receiver, over gRPC and HTTP/protobuf,
// on 127.0.0.1:0. It keeps every span and the latest value of every sum
// and histogram point it is sent.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	colmetricpb.UnimplementedMetricsServiceServer
	addr string

	mu     sync.Mutex
	spans  []span
	sums   map[string]int64  // metric name + attributes -> latest value
	counts map[string]uint64 // histogram name + attributes -> latest count
}

type span struct {
	name    string
	service string // the resource's service.name
	attrs   map[string]string
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = fmt.Sprint(v.IntValue)
		}
	}
	return m
}

// pointKey is "NAME{k=v,...}" over the given attribute keys, in order.
func pointKey(name string, a map[string]string, keys ...string) string {
	var b strings.Builder
	b.WriteString(name + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + a[k])
	}
	return b.String() + "}"
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		svc := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, span{s.Name, svc, attrs(s.Attributes)})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type metricsService struct{ *receiver }

func (r metricsService) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, p := range m.GetSum().GetDataPoints() {
					r.sums[pointKey(m.Name, attrs(p.Attributes), "weir.op", "weir.policy", "weir.outcome", "weir.store")] = p.GetAsInt()
				}
				for _, p := range m.GetHistogram().GetDataPoints() {
					r.counts[pointKey(m.Name, attrs(p.Attributes), "weir.op", "weir.outcome", "weir.store")] = p.Count
				}
			}
		}
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// startReceiver serves OTLP over protocol (grpc or http/protobuf).
func startReceiver(t *testing.T, protocol string) *receiver {
	t.Helper()
	r := &receiver{sums: map[string]int64{}, counts: map[string]uint64{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	if protocol == "grpc" {
		gs := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(gs, r)
		colmetricpb.RegisterMetricsServiceServer(gs, metricsService{r})
		go gs.Serve(l)
		t.Cleanup(gs.Stop)
		return r
	}
	mux := http.NewServeMux()
	handle := func(path string, msg func() proto.Message, export func(proto.Message)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, req *http.Request) {
			b, err := io.ReadAll(req.Body)
			m := msg()
			if err == nil {
				err = proto.Unmarshal(b, m)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			export(m)
			w.Header().Set("Content-Type", "application/x-protobuf")
		})
	}
	handle("/v1/traces", func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} }, func(m proto.Message) {
		r.Export(context.Background(), m.(*coltracepb.ExportTraceServiceRequest))
	})
	handle("/v1/metrics", func() proto.Message { return &colmetricpb.ExportMetricsServiceRequest{} }, func(m proto.Message) {
		metricsService{r}.Export(context.Background(), m.(*colmetricpb.ExportMetricsServiceRequest))
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return r
}

// count returns how many spans match name and every attribute of want.
func (r *receiver) count(name string, want map[string]string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, s := range r.spans {
		if s.name != name || s.service != "weir" {
			continue
		}
		for k, v := range want {
			if s.attrs[k] != v {
				continue next
			}
		}
		n++
	}
	return n
}

func (r *receiver) sum(key string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sums[key]
}

func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans) + len(r.sums) + len(r.counts)
}

// otelTraffic sends one HTTP and five gRPC checks under "login" (5 a
// minute: five admitted, one denied) and one Envoy descriptor.
func otelTraffic(t *testing.T, s *server) {
	t.Helper()
	if m := s.post("/v1/check", `{"policy":"login","key":"alice"}`).json(t); m["allowed"] != true {
		t.Fatalf("HTTP check: %v", m)
	}
	cc := s.dial()
	for i := range 5 {
		r, err := weirv1.NewWeirClient(cc).Check(context.Background(), &weirv1.CheckRequest{Policy: "login", Key: "alice"})
		if err != nil || r.Allowed != (i < 4) {
			t.Fatalf("gRPC check %d: %v %v", i, r, err)
		}
	}
	_, err := rlv3.NewRateLimitServiceClient(cc).ShouldRateLimit(context.Background(), &rlv3.RateLimitRequest{Domain: "demo", Descriptors: []*rlcommon.RateLimitDescriptor{
		{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "generic_key", Value: "slow"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// setOTEL clears the OTEL_* variables the server reads, then sets kv.
func setOTEL(t *testing.T, kv ...string) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
	for i := 0; i < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func TestOTLPExport(t *testing.T) {
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(strings.ReplaceAll(protocol, "/", "_"), func(t *testing.T) {
			r := startReceiver(t, protocol)
			setOTEL(t, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+r.addr, "OTEL_EXPORTER_OTLP_PROTOCOL", protocol,
				"OTEL_BSP_SCHEDULE_DELAY", "50", "OTEL_METRIC_EXPORT_INTERVAL", "100")
			s := start(t)
			otelTraffic(t, s)
			login := map[string]string{"weir.op": "take", "weir.policy": "login", "weir.limit": "5/m algo=sliding-log", "weir.store": "memory", "weir.cost": "1"}
			// Exported while serving (the batch delay is 50ms)...
			eventually(t, "the login spans", func() bool { return r.count("weir.take", login) == 6 })
			// ...and flushed on shutdown.
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			for outcome, want := range map[string]int{"allowed": 5, "limited": 1} {
				login["weir.outcome"] = outcome
				if n := r.count("weir.take", login); n != want {
					t.Errorf("%d %s login spans, want %d", n, outcome, want)
				}
				if n := r.sum(fmt.Sprintf("weir.store.calls{weir.op=take,weir.policy=login,weir.outcome=%s,weir.store=memory}", outcome)); n != int64(want) {
					t.Errorf("weir.store.calls %s login = %d, want %d", outcome, n, want)
				}
			}
			if n := r.count("weir.take", map[string]string{"weir.policy": "envoy:demo", "weir.outcome": "allowed", "weir.store": "memory"}); n != 1 {
				t.Errorf("%d Envoy spans, want 1", n)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if c := r.counts["weir.store.duration{weir.op=take,weir.outcome=allowed,weir.store=memory}"]; c != 6 {
				t.Errorf("weir.store.duration count of allowed takes = %d, want 6 (5 login, 1 Envoy); points %v", c, r.counts)
			}
		})
	}
}

// TestOTLPOff: without OTEL_* variables, or with OTEL_SDK_DISABLED=true or
// the exporters set to none, nothing is sent even with an endpoint set.
func TestOTLPOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"default", nil},
		{"disabled", []string{"OTEL_SDK_DISABLED", "true"}},
		{"none", []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_METRICS_EXPORTER", "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startReceiver(t, "grpc")
			env := tc.env
			if env != nil { // "default" has no endpoint: it could not reach r
				env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+r.addr, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
			}
			setOTEL(t, env...)
			s := start(t)
			otelTraffic(t, s)
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			if n := r.total(); n != 0 {
				t.Errorf("received %d spans and points", n)
			}
			if strings.Contains(s.Logs.String(), "opentelemetry") {
				t.Errorf("the server set up OpenTelemetry: %s", s.Logs.String())
			}
		})
	}
}
