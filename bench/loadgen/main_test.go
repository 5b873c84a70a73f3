package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recorder remembers the keys a fake server was asked about, in arrival
// order, and answers with a fixed outcome.
type recorder struct {
	mu   sync.Mutex
	keys []string
	fail bool // answer with an error
}

func (r *recorder) add(keys ...string) {
	r.mu.Lock()
	r.keys = append(r.keys, keys...)
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// httpServer answers POST /v1/check like weir serve (a decision, or one
// per element of an array) or, with body set, with that body and status.
func httpServer(t *testing.T, rec *recorder, code int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var one struct{ Policy, Key string }
		var many []struct{ Policy, Key string }
		if json.Unmarshal(b, &one) == nil {
			rec.add(one.Policy + "/" + one.Key)
		} else if json.Unmarshal(b, &many) == nil {
			for _, m := range many {
				rec.add(m.Policy + "/" + m.Key)
			}
		} else {
			rec.add("malformed:" + string(b))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const decision = `{"allowed":true,"policy":"p","remaining":1}`

// TestHTTPClientsSendTheSameRequests: the library client and the lean one
// send the same keys of the same policy, one or a batch per call, and
// both accept a 200 with a decision.
func TestHTTPClientsSendTheSameRequests(t *testing.T) {
	for _, batch := range []int{1, 3} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			var lib, raw recorder
			libCall, libClose := httpCaller(httpServer(t, &lib, 200, decision), "p", 50, batch, 2)
			defer libClose()
			rawCall, rawClose, err := rawCaller("rawhttp", httpServer(t, &raw, 200, decision), "", "p", "", 50, batch, 2, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer rawClose()
			ctx := context.Background()
			for w := range 2 {
				for i := range 20 {
					if err := libCall(ctx, w, i); err != nil {
						t.Fatalf("http: %v", err)
					}
					if err := rawCall(ctx, w, i); err != nil {
						t.Fatalf("rawhttp: %v", err)
					}
				}
			}
			l, r := lib.got(), raw.got()
			if len(l) != 40*batch || !slices.Equal(l, r) {
				t.Fatalf("http sent %d keys, rawhttp %d; first %q and %q", len(l), len(r), l[:min(3, len(l))], r[:min(3, len(r))])
			}
			for _, k := range l {
				if !strings.HasPrefix(k, "p/user:") {
					t.Fatalf("key %q", k)
				}
			}
		})
	}
}

// TestHTTPClientsCheckAnswers: an answer that is not a 200 carrying a
// decision is an error, for both clients.
func TestHTTPClientsCheckAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
	}{
		{"server error", 500, decision},
		{"denied by the daemon's overload gate", 503, `{"error":"overloaded"}`},
		{"no decision", 200, `{"ok":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			url := httpServer(t, &rec, tc.code, tc.body)
			libCall, libClose := httpCaller(url, "p", 10, 1, 1)
			defer libClose()
			rawCall, rawClose, err := rawCaller("rawhttp", url, "", "p", "", 10, 1, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer rawClose()
			ctx := context.Background()
			// The library client checks the status only; the lean one
			// also the body.
			if err := libCall(ctx, 0, 0); (err == nil) != (tc.code == 200) {
				t.Errorf("http: %v", err)
			}
			if err := rawCall(ctx, 0, 0); err == nil {
				t.Errorf("rawhttp accepted %d %s", tc.code, tc.body)
			}
		})
	}
}

// TestReadHTTPResponse reads responses the lean HTTP client may meet.
func TestReadHTTPResponse(t *testing.T) {
	for _, tc := range []struct {
		name, resp string
		ok         bool
	}{
		{"decision", "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"allowed\":true}", true},
		{"header case", "HTTP/1.1 200 OK\r\ncontent-LENGTH: 17\r\n\r\n{\"allowed\":false}", true},
		{"429", "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 16\r\n\r\n{\"allowed\":true}", false},
		{"no length", "HTTP/1.1 200 OK\r\n\r\n{\"allowed\":true}", false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"allowed\":true}", false},
		{"no decision", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false},
	} {
		err := readHTTPResponse(bufio.NewReader(strings.NewReader(tc.resp)))
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

type weirServer struct {
	weirv1.UnimplementedWeirServer
	rec *recorder
}

func (s *weirServer) Check(_ context.Context, r *weirv1.CheckRequest) (*weirv1.CheckResponse, error) {
	s.rec.add(r.Policy + "/" + r.Key)
	if s.rec.fail {
		return nil, status.Error(codes.ResourceExhausted, "overloaded")
	}
	return &weirv1.CheckResponse{Allowed: true}, nil
}

func (s *weirServer) CheckBatch(_ context.Context, r *weirv1.CheckBatchRequest) (*weirv1.CheckBatchResponse, error) {
	out := &weirv1.CheckBatchResponse{}
	for _, c := range r.Checks {
		s.rec.add(c.Policy + "/" + c.Key)
		out.Results = append(out.Results, &weirv1.CheckResponse{Allowed: true})
	}
	if s.rec.fail {
		return nil, status.Error(codes.ResourceExhausted, "overloaded")
	}
	return out, nil
}

type envoyServer struct {
	rlv3.UnimplementedRateLimitServiceServer
	rec *recorder
}

func (s *envoyServer) ShouldRateLimit(_ context.Context, r *rlv3.RateLimitRequest) (*rlv3.RateLimitResponse, error) {
	for _, d := range r.Descriptors {
		for _, e := range d.Entries {
			s.rec.add(r.Domain + "/" + e.Key + "=" + e.Value)
		}
	}
	if s.rec.fail {
		return nil, status.Error(codes.Unavailable, "down")
	}
	return &rlv3.RateLimitResponse{OverallCode: rlv3.RateLimitResponse_OK}, nil
}

// grpcServer serves the weir.v1 and Envoy services on a loopback port.
func grpcServer(t *testing.T, rec *recorder) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	weirv1.RegisterWeirServer(srv, &weirServer{rec: rec})
	rlv3.RegisterRateLimitServiceServer(srv, &envoyServer{rec: rec})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// TestGRPCClientsSendTheSameRequests: for weir.v1 Check, CheckBatch and
// Envoy's ShouldRateLimit, the grpc-go client and the lean HTTP/2 one send
// the same requests, and both check the answer: an error status fails
// the call.
func TestGRPCClientsSendTheSameRequests(t *testing.T) {
	for _, tc := range []struct {
		lib, raw string
		batch    int
	}{
		{"grpc", "rawgrpc", 1},
		{"grpc", "rawgrpc", 4},
		{"envoy", "rawenvoy", 1},
		{"envoy", "rawenvoy", 3},
	} {
		t.Run(fmt.Sprintf("%s/batch=%d", tc.raw, tc.batch), func(t *testing.T) {
			var lib, raw recorder
			libAddr, rawAddr := grpcServer(t, &lib), grpcServer(t, &raw)
			var libCall func(context.Context, int, int) error
			var libClose func()
			if tc.lib == "grpc" {
				libCall, libClose = grpcCaller(libAddr, "p", 30, tc.batch, 2)
			} else {
				libCall, libClose = envoyCaller(libAddr, "d", 30, tc.batch, 2)
			}
			defer libClose()
			rawCall, rawClose, err := rawCaller(tc.raw, "", rawAddr, "p", "d", 30, tc.batch, 3, 2)
			if err != nil {
				t.Fatal(err)
			}
			defer rawClose()
			ctx := context.Background()
			for w := range 3 {
				for i := range 10 {
					if err := libCall(ctx, w, i); err != nil {
						t.Fatalf("%s: %v", tc.lib, err)
					}
					if err := rawCall(ctx, w, i); err != nil {
						t.Fatalf("%s: %v", tc.raw, err)
					}
				}
			}
			l, r := lib.got(), raw.got()
			if len(l) != 30*tc.batch || !slices.Equal(l, r) {
				t.Fatalf("%s sent %d keys, %s %d; first %q and %q", tc.lib, len(l), tc.raw, len(r), l[:min(3, len(l))], r[:min(3, len(r))])
			}
			lib.fail, raw.fail = true, true
			if err := libCall(ctx, 0, 0); err == nil {
				t.Errorf("%s accepted an error status", tc.lib)
			}
			if err := rawCall(ctx, 0, 0); err == nil {
				t.Errorf("%s accepted an error status", tc.raw)
			}
		})
	}
}

// TestPerDec: CPU per decision in µs, and -1 when it was not measured.
func TestPerDec(t *testing.T) {
	for _, tc := range []struct {
		cpu  int64 // µs
		dec  float64
		want float64
	}{
		{1000, 100, 10},
		{0, 100, 0},
		{-1, 100, -1},
		{1000, 0, -1},
	} {
		if got := perDec(durationUS(tc.cpu), tc.dec); got != tc.want {
			t.Errorf("perDec(%dµs, %v) = %v, want %v", tc.cpu, tc.dec, got, tc.want)
		}
	}
}

func durationUS(us int64) time.Duration {
	if us < 0 {
		return -1
	}
	return time.Duration(us) * time.Microsecond
}
