package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// streamPolicies are the policies of the stream tests. The hourly
// limits refill one unit every six minutes or more, so counts do not
// depend on how fast the test runs.
const streamPolicies = `policies:
  ten: {limits: ["10/h"]}
  shadow: {limits: ["2/h"], shadow: true}
  jobs: {limits: ["2/m algo=concurrency"]}
  tenant: {limits: ["3/h"], key: "{tenant}:{key}"}
  big: {limits: ["1000000000/s"]}
`

// testServer is a real gRPC server on 127.0.0.1:0 wired as the daemon
// wires it (reused stream workers, auth and gate interceptors), and a
// client connected to it.
type testServer struct {
	api    *Server
	gs     *grpc.Server
	client weirv1.WeirClient
}

func startServer(tb testing.TB, auth *service.Auth, gate *service.Gate) *testServer {
	tb.Helper()
	cfg, err := config.Parse("t.yaml", []byte(streamPolicies))
	if err != nil {
		tb.Fatal(err)
	}
	ms := memstore.New()
	tb.Cleanup(func() { ms.Close() })
	svc, err := service.New(ms, nil, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	api := New(svc, auth, WithGate(gate))
	gs := grpc.NewServer(
		grpc.NumStreamWorkers(uint32(max(128, 16*runtime.GOMAXPROCS(0)))),
		grpc.ChainUnaryInterceptor(AuthInterceptor(auth), GateInterceptor(gate)),
		grpc.ChainStreamInterceptor(StreamAuthInterceptor(auth)),
	)
	weirv1.RegisterWeirServer(gs, api)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		api.Drain()
		gs.Stop()
		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return &testServer{api: api, gs: gs, client: weirv1.NewWeirClient(conn)}
}

func check(id uint64, policy, key string) *weirv1.CheckStreamRequest {
	return &weirv1.CheckStreamRequest{Id: id, Check: &weirv1.CheckRequest{Policy: policy, Key: key}}
}

// roundTrip sends every message, closes the sending side and returns
// every answer; the stream must end with OK.
func roundTrip(t *testing.T, st weirv1.Weir_CheckStreamClient, msgs []*weirv1.CheckStreamRequest) []*weirv1.CheckStreamResponse {
	t.Helper()
	sent := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := st.Send(m); err != nil {
				sent <- err
				return
			}
		}
		sent <- st.CloseSend()
	}()
	var out []*weirv1.CheckStreamResponse
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("recv after %d answers: %v", len(out), err)
		}
		out = append(out, r)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	if len(out) != len(msgs) {
		t.Fatalf("%d answers to %d messages", len(out), len(msgs))
	}
	for i, r := range out {
		if r.GetId() != msgs[i].GetId() {
			t.Fatalf("answer %d has id %d, want %d (request order)", i, r.GetId(), msgs[i].GetId())
		}
	}
	return out
}

// TestCheckStreamCounts: answers come in request order with their ids,
// and admit exactly what the policy allows, shadow mode included.
func TestCheckStreamCounts(t *testing.T) {
	ts := startServer(t, nil, nil)
	ctx := t.Context()
	var msgs []*weirv1.CheckStreamRequest
	for i := range 15 {
		// Ids are the client's: any value, not necessarily increasing.
		msgs = append(msgs, check(math.MaxUint64-uint64(i*7), "ten", "k"))
		msgs = append(msgs, check(uint64(i), "shadow", "s"))
	}
	st, err := ts.client.CheckStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var allowed, shadowed int
	for i, r := range roundTrip(t, st, msgs) {
		res := r.GetResult()
		if res == nil {
			t.Fatalf("answer %d: %v, want a result", i, r)
		}
		if res.Policy != msgs[i].Check.Policy {
			t.Fatalf("answer %d is for policy %q, want %q", i, res.Policy, msgs[i].Check.Policy)
		}
		switch res.Policy {
		case "ten":
			n := i / 2
			if res.Allowed != (n < 10) || res.Limit != 10 || res.Remaining != int64(max(9-n, 0)) {
				t.Errorf("ten #%d: allowed=%v limit=%d remaining=%d", n, res.Allowed, res.Limit, res.Remaining)
			}
			if !res.Allowed && res.RetryAfterMs <= 0 {
				t.Errorf("ten #%d: denied with retry_after_ms %d", n, res.RetryAfterMs)
			}
			if res.Allowed {
				allowed++
			}
		case "shadow":
			// A shadow policy admits everything and flags what it would
			// have denied.
			n := i / 2
			if !res.Allowed || res.Shadow != (n >= 2) || res.RetryAfterMs != 0 {
				t.Errorf("shadow #%d: allowed=%v shadow=%v retry_after_ms=%d", n, res.Allowed, res.Shadow, res.RetryAfterMs)
			}
			if res.Shadow {
				shadowed++
			}
		}
	}
	if allowed != 10 || shadowed != 13 {
		t.Errorf("admitted %d of 15 under 10/h (want 10), shadowed %d of 15 under 2/h (want 13)", allowed, shadowed)
	}
	// The stream and unary calls share the state.
	r, err := ts.client.Check(ctx, &weirv1.CheckRequest{Policy: "ten", Key: "k"})
	if err != nil || r.Allowed {
		t.Errorf("unary check after the stream: %v, %v; want denied", r, err)
	}
}

// TestCheckStreamConcurrent: several streams on one key admit exactly
// the policy's quota between them.
func TestCheckStreamConcurrent(t *testing.T) {
	ts := startServer(t, nil, nil)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			st, err := ts.client.CheckStream(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 15 {
				if err := st.Send(check(uint64(g*100+i), "ten", "shared")); err != nil {
					t.Error(err)
					return
				}
				r, err := st.Recv()
				if err != nil || r.GetId() != uint64(g*100+i) || r.GetResult() == nil {
					t.Errorf("stream %d message %d: %v, %v", g, i, r, err)
					return
				}
				if r.GetResult().Allowed {
					admitted.Add(1)
				}
			}
			if err := st.CloseSend(); err != nil {
				t.Error(err)
			}
			if _, err := st.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("stream %d ends with %v, want io.EOF", g, err)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != 10 {
		t.Errorf("4 streams × 15 messages under 10/h admitted %d, want 10", n)
	}
}

// TestCheckStreamBadInput: a bad message gets an error answer naming
// the field, charges nothing, and the stream goes on.
func TestCheckStreamBadInput(t *testing.T) {
	ts := startServer(t, nil, nil)
	tests := []struct {
		msg  *weirv1.CheckStreamRequest
		code codes.Code
		want string // the message's prefix
	}{
		{&weirv1.CheckStreamRequest{Id: 1}, codes.InvalidArgument, "check: is required"},
		{&weirv1.CheckStreamRequest{Id: 2, Check: &weirv1.CheckRequest{}}, codes.InvalidArgument, "check.policy: is required"},
		{check(3, "nope", "k"), codes.InvalidArgument, `check.policy: unknown policy "nope"`},
		{&weirv1.CheckStreamRequest{Id: 4, Check: &weirv1.CheckRequest{Policy: "ten", Key: "k", Cost: proto.Int64(-1)}}, codes.InvalidArgument, "check.cost: must not be negative"},
		{&weirv1.CheckStreamRequest{Id: 5, Check: &weirv1.CheckRequest{Policy: "ten", Key: "k", Cost: proto.Int64(11)}}, codes.InvalidArgument, "check.cost: 11 exceeds the capacity 10"},
		{check(6, "jobs", "k"), codes.InvalidArgument, "check.policy: policy \"jobs\" holds concurrency units"},
		{check(7, "tenant", "k"), codes.InvalidArgument, "check.fields.tenant: is required"},
	}
	st, err := ts.client.CheckStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Each bad message is followed by a good one, which is decided.
	var msgs []*weirv1.CheckStreamRequest
	for i, tt := range tests {
		msgs = append(msgs, tt.msg, check(uint64(100+i), "ten", "k"))
	}
	out := roundTrip(t, st, msgs)
	allowed := 0
	for i, tt := range tests {
		e := out[2*i].GetError()
		if e == nil || codes.Code(e.Code) != tt.code || !strings.HasPrefix(e.Message, tt.want) {
			t.Errorf("message %d: answer %v, want %v %q…", tt.msg.Id, out[2*i], tt.code, tt.want)
		}
		if r := out[2*i+1].GetResult(); r == nil {
			t.Errorf("good message after %d: %v, want a result", tt.msg.Id, out[2*i+1])
		} else if r.Allowed {
			allowed++
		}
	}
	// Bad messages charged nothing: all 8 good ones were admitted and 2
	// units are left.
	if allowed != len(tests) || out[len(out)-1].GetResult().GetRemaining() != 10-int64(len(tests)) {
		t.Errorf("admitted %d good messages (want %d), last answer %v", allowed, len(tests), out[len(out)-1])
	}
}

// TestCheckStreamOverload: with the gate full a message is shed with an
// error answer at once; the next one, once a place is free, is decided.
func TestCheckStreamOverload(t *testing.T) {
	gate := service.NewGate(1)
	ts := startServer(t, nil, gate)
	st, err := ts.client.CheckStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !gate.Enter() {
		t.Fatal("gate full")
	}
	if err := st.Send(check(1, "ten", "k")); err != nil {
		t.Fatal(err)
	}
	r, err := st.Recv()
	if err != nil || codes.Code(r.GetError().GetCode()) != codes.ResourceExhausted {
		t.Fatalf("with the gate full: %v, %v; want RESOURCE_EXHAUSTED", r, err)
	}
	gate.Leave()
	if err := st.Send(check(2, "ten", "k")); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Recv(); err != nil || !r.GetResult().GetAllowed() || r.GetResult().GetRemaining() != 9 {
		t.Fatalf("after the gate emptied: %v, %v; want allowed, 9 left (the shed one charged nothing)", r, err)
	}
	// The stream leaves the gate after each decision.
	if !gate.Enter() {
		t.Fatal("the stream holds a place in the gate")
	}
	gate.Leave()
}

// TestCheckStreamAuth: CheckStream needs a valid token (S6).
func TestCheckStreamAuth(t *testing.T) {
	ts := startServer(t, service.NewAuth([]string{"decide-tok"}, []string{"admin-tok"}), nil)
	tests := []struct {
		name, header string
		want         codes.Code
	}{
		{"none", "", codes.Unauthenticated},
		{"wrong", "Bearer nope", codes.Unauthenticated},
		{"not bearer", "decide-tok", codes.Unauthenticated},
		{"decide", "Bearer decide-tok", codes.OK},
		{"admin", "Bearer admin-tok", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.header)
			}
			st, err := ts.client.CheckStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Sending may fail once the server has refused the stream;
			// Recv reports why.
			_ = st.Send(check(1, "big", tt.name))
			r, err := st.Recv()
			if status.Code(err) != tt.want {
				t.Fatalf("recv: %v, %v; want %v", r, err, tt.want)
			}
			if tt.want == codes.OK && !r.GetResult().GetAllowed() {
				t.Fatalf("answer %v, want allowed", r)
			}
		})
	}
}

// TestCheckStreamCancel: cancelling the client's context ends the stream
// at once on both sides.
func TestCheckStreamCancel(t *testing.T) {
	ts := startServer(t, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	st, err := ts.client.CheckStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(check(1, "big", "k")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := st.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("recv after cancel: %v, want CANCELED", err)
	}
	// GracefulStop waits for every handler: it returns only if the
	// server side of the stream ended too.
	stopWithin(t, ts.gs, 10*time.Second)
}

// stopWithin fails the test when gs.GracefulStop takes longer than d.
func stopWithin(t *testing.T, gs *grpc.Server, d time.Duration) {
	t.Helper()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		gs.Stop()
		<-stopped
		t.Fatalf("GracefulStop took more than %v: a stream handler did not return", d)
	}
}

// TestCheckStreamDrain: Drain ends open streams with UNAVAILABLE after
// their answers, refuses new ones, and lets GracefulStop return.
func TestCheckStreamDrain(t *testing.T) {
	ts := startServer(t, nil, nil)
	st, err := ts.client.CheckStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.Send(check(uint64(i), "big", "k")); err != nil {
			t.Fatal(err)
		}
		if r, err := st.Recv(); err != nil || r.GetId() != uint64(i) {
			t.Fatalf("answer %d: %v, %v", i, r, err)
		}
	}
	ts.api.Drain()
	if r, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("recv after Drain: %v, %v; want UNAVAILABLE", r, err)
	}
	st2, err := ts.client.CheckStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := st2.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("new stream after Drain: %v, %v; want UNAVAILABLE", r, err)
	}
	stopWithin(t, ts.gs, 10*time.Second)
}

// TestCheckStreamFlowControl: a client that sends without reading the
// answers is stopped by flow control; the server does not buffer its
// messages without bound. This crosses a real network connection, so it
// watches the sender in real time: the sender must stall long before it
// has sent everything.
func TestCheckStreamFlowControl(t *testing.T) {
	ts := startServer(t, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st, err := ts.client.CheckStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const total = 200_000 // about 50 MB of messages
	key := strings.Repeat("k", 250)
	var sent atomic.Int64
	senderDone := make(chan error, 1)
	go func() {
		for i := range total {
			if err := st.Send(check(uint64(i), "big", key)); err != nil {
				senderDone <- err
				return
			}
			sent.Add(1)
		}
		senderDone <- nil
	}()
	// Wait until the sender makes no progress for 200 ms.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, still := int64(-1), 0
	for still < 10 {
		select {
		case err := <-senderDone:
			t.Fatalf("the client sent all %d messages (%v) without reading an answer: nothing pushed back", sent.Load(), err)
		case <-tick.C:
		}
		if n := sent.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	t.Logf("the sender stalled after %d messages (%d KiB)", last, last*int64(proto.Size(check(0, "big", key)))>>10)
	// Reading answers lets it go on, in order.
	for i := range 100 {
		r, err := st.Recv()
		if err != nil || r.GetId() != uint64(i) || !r.GetResult().GetAllowed() {
			t.Fatalf("answer %d: %v, %v", i, r, err)
		}
	}
	cancel()
	if err := <-senderDone; status.Code(err) != codes.Canceled && !errors.Is(err, io.EOF) {
		t.Fatalf("sender after cancel: %v", err)
	}
	stopWithin(t, ts.gs, 10*time.Second)
}

// ExampleServer_CheckStream decides two requests over one stream.
func ExampleServer_CheckStream() {
	cfg, _ := config.Parse("weir.yaml", []byte("policies:\n  api: {limits: [\"1/h\"]}\n"))
	ms := memstore.New()
	defer ms.Close()
	svc, _ := service.New(ms, nil, cfg, nil)
	api := New(svc, nil)
	gs := grpc.NewServer()
	weirv1.RegisterWeirServer(gs, api)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go gs.Serve(ln)
	defer func() { api.Drain(); gs.GracefulStop() }()

	conn, _ := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	st, _ := weirv1.NewWeirClient(conn).CheckStream(context.Background())
	for id := range uint64(3) {
		policy := "api"
		if id == 2 {
			policy = "apj"
		}
		st.Send(&weirv1.CheckStreamRequest{Id: id, Check: &weirv1.CheckRequest{Policy: policy, Key: "user:42"}})
	}
	st.CloseSend()
	for {
		r, err := st.Recv()
		if err != nil {
			break
		}
		if e := r.GetError(); e != nil {
			fmt.Println(r.Id, codes.Code(e.Code), e.Message)
			continue
		}
		fmt.Println(r.Id, "allowed:", r.GetResult().Allowed)
	}
	// Output:
	// 0 allowed: true
	// 1 allowed: false
	// 2 InvalidArgument check.policy: unknown policy "apj"
}
