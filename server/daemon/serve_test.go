package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestServeDemoHTTP(t *testing.T) {
	s := start(t)
	eventually(t, "the banner to say where to look", func() bool { return strings.Contains(s.Out.String(), "try:  curl") })
	// login: 5 per minute, sliding log; the sixth is denied with 200.
	for i := range 6 {
		r := s.post("/v1/check", `{"policy":"login","key":"alice"}`)
		if r.Code != http.StatusOK {
			t.Fatalf("check %d: %d %s", i, r.Code, r.Body)
		}
		m := r.json(t)
		wantAllowed := i < 5
		if m["allowed"] != wantAllowed || m["remaining"] != float64(max(4-i, 0)) || m["limit"] != float64(5) || m["policy"] != "login" {
			t.Errorf("check %d: %s", i, r.Body)
		}
		if !wantAllowed && m["retry_after_ms"].(float64) <= 0 {
			t.Errorf("denied without retry_after_ms: %s", r.Body)
		}
	}
	// Another key is independent.
	if m := s.post("/v1/check", `{"policy":"login","key":"bob"}`).json(t); m["allowed"] != true {
		t.Errorf("bob: %v", m)
	}
	// Peek (cost 0) changes nothing.
	for range 2 {
		if m := s.post("/v1/check", `{"policy":"login","key":"carol","cost":0}`).json(t); m["remaining"] != float64(5) {
			t.Errorf("peek: %v", m)
		}
	}
	// A batch is answered in order.
	r := s.post("/v1/check", `[{"policy":"login","key":"alice"},{"policy":"api","key":"x","cost":3}]`)
	if r.Code != 200 {
		t.Fatalf("batch: %d %s", r.Code, r.Body)
	}
	if !bytes.HasPrefix(r.Body, []byte(`[{"allowed":false,"policy":"login"`)) || !bytes.Contains(r.Body, []byte(`{"allowed":true,"policy":"api","limit":100,"remaining":197`)) {
		t.Errorf("batch: %s", r.Body)
	}
	// Acquire and release a concurrency lease.
	var leases []string
	for i := range 4 {
		m := s.post("/v1/acquire", `{"policy":"uploads","key":"t1"}`).json(t)
		if (i < 3) != (m["allowed"] == true) {
			t.Fatalf("acquire %d: %v", i, m)
		}
		if i < 3 {
			leases = append(leases, m["lease"].(string))
		}
	}
	if r := s.post("/v1/release", `{"policy":"uploads","key":"t1","lease":"`+leases[0]+`"}`); r.Code != 200 {
		t.Fatalf("release: %d %s", r.Code, r.Body)
	}
	if m := s.post("/v1/acquire", `{"policy":"uploads","key":"t1"}`).json(t); m["allowed"] != true {
		t.Errorf("acquire after release: %v", m)
	}
	// Shadow: always allowed, flagged when it would have denied.
	var shadowed bool
	for range 12 {
		m := s.post("/v1/check", `{"policy":"search-shadow","key":"k"}`).json(t)
		if m["allowed"] != true {
			t.Fatalf("shadow policy denied: %v", m)
		}
		shadowed = shadowed || m["shadow"] == true
	}
	if !shadowed {
		t.Error("12 requests at 10/s never flagged shadow")
	}
	// Policies, health, metrics.
	pol := s.do("GET", "/v1/policies", "", "")
	if pol.Code != 200 || !bytes.Contains(pol.Body, []byte(`"name":"uploads"`)) {
		t.Errorf("policies: %d %s", pol.Code, pol.Body)
	}
	for _, p := range []string{"/livez", "/readyz", "/healthcheck"} {
		if r := s.do("GET", p, "", ""); r.Code != 200 {
			t.Errorf("%s: %d", p, r.Code)
		}
	}
	met := s.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`weir_decisions_total{outcome="limited",policy="login"} 2`,
		`weir_decisions_total{outcome="shadow_limited",policy="search-shadow"}`,
		`weir_store_duration_seconds_bucket{op="take",result="ok"`,
		`weir_fail_open_total`, `weir_fallback_decisions_total`,
	} {
		if !bytes.Contains(met.Body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// No per-key label ever (alice, bob, t1 are keys).
	for _, key := range []string{"alice", "bob", `"t1"`} {
		if bytes.Contains(met.Body, []byte(key)) {
			t.Errorf("metrics mention the key %s", key)
		}
	}
	// The dashboard page renders the policies.
	if d := s.do("GET", "/dashboard", "", ""); d.Code != 200 || !bytes.Contains(d.Body, []byte("uploads")) {
		t.Errorf("dashboard: %d", d.Code)
	}
}

// S12: a decision answer describes the caller's own key only: exactly the
// documented fields, no internal names, no other tenant's state.
func TestDecisionResponseShape(t *testing.T) {
	s := start(t)
	r := s.post("/v1/check", `{"policy":"api","key":"tenant-a:user-1"}`)
	m := r.json(t)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"allowed", "limit", "limit_name", "policy", "remaining", "reset_after_ms", "retry_after_ms"}
	if !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	for _, leak := range []string{"tenant-a", "user-1", "api:", "127.0.0.1"} {
		if bytes.Contains(r.Body, []byte(leak)) {
			t.Errorf("response leaks %q: %s", leak, r.Body)
		}
	}
	if ct := r.Hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// R21, S7: bad input is a 400 naming the field; nothing is charged.
func TestBadInput(t *testing.T) {
	s := start(t)
	tests := []struct {
		path, body, field string
	}{
		{"/v1/check", `{"policy":"api","key":"k","limit":1e9}`, "limit"},
		{"/v1/check", `{"policy":"api","key":"k","period":"1s"}`, "period"},
		{"/v1/check", `{"policy":"api","key":"k","cost":1e9}`, "cost"},
		{"/v1/check", `{"policy":"api","key":"k","cost":-1}`, "cost"},
		{"/v1/check", `{"policy":"api","key":"k","cost":201}`, "cost"},
		{"/v1/check", `{"policy":"api","key":"k","cost":"1"}`, "cost"},
		{"/v1/check", `{"policy":"nope","key":"k"}`, "policy"},
		{"/v1/check", `{"key":"k"}`, "policy"},
		{"/v1/check", `{"policy":"api"}`, "key"},
		{"/v1/check", `{"policy":"api","key":"k"`, "body"},
		{"/v1/check", `{"policy":"api","key":"k"} {}`, "body"},
		{"/v1/check", ``, "body"},
		{"/v1/check", `[]`, "checks"},
		{"/v1/check", `[{"policy":"api","key":"k"},{"policy":"api","key":"k","cost":-5}]`, "checks[1].cost"},
		{"/v1/check", `{"policy":"uploads","key":"k"}`, "policy"},
		{"/v1/check", `{"policy":"api","key":"k","lease":"x"}`, "lease"},
		{"/v1/acquire", `{"policy":"uploads","key":"k","cost":0}`, "cost"},
		{"/v1/acquire", `[{"policy":"uploads","key":"k"}]`, "body"},
		{"/v1/release", `{"policy":"uploads","key":"k"}`, "lease"},
	}
	for _, tt := range tests {
		r := s.post(tt.path, tt.body)
		if r.Code != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s, want 400", tt.path, tt.body, r.Code, r.Body)
			continue
		}
		e, _ := r.json(t)["error"].(map[string]any)
		if e["field"] != tt.field || !strings.HasPrefix(e["message"].(string), tt.field) {
			t.Errorf("%s %s: error %v, want field %q", tt.path, tt.body, e, tt.field)
		}
	}
	// S7: the bucket kept its configured limit and nothing was charged.
	m := s.post("/v1/check", `{"policy":"api","key":"k","cost":0}`).json(t)
	if m["limit"] != float64(100) || m["remaining"] != float64(200) {
		t.Errorf("after bad input: %v, want limit 100 and a full bucket of 200", m)
	}
}

// S4: /v1/check bodies over 256 KiB and other bodies over 64 KiB are 413,
// whether declared or streamed; gRPC messages over 256 KiB are
// RESOURCE_EXHAUSTED.
func TestSizeLimits(t *testing.T) {
	s := start(t)
	big := `{"policy":"api","key":"k","fields":{"a":"` + strings.Repeat("x", 260<<10) + `"}}`
	if r := s.post("/v1/check", big); r.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared oversize body: %d", r.Code)
	}
	// Chunked (no Content-Length): the reader stops at the limit.
	req, _ := http.NewRequest("POST", s.HTTP+"/v1/check", struct{ *strings.Reader }{strings.NewReader(big)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("streamed oversize body: %d", resp.StatusCode)
	}
	mid := `{"policy":"api","key":"k","fields":{"a":"` + strings.Repeat("x", 70<<10) + `"}}`
	for _, path := range []string{"/json", "/v1/acquire", "/v1/reset"} {
		if r := s.post(path, mid); r.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s oversize: %d", path, r.Code)
		}
	}
	c := weirv1.NewWeirClient(s.dial())
	_, err = c.Check(context.Background(), &weirv1.CheckRequest{Policy: "api", Key: strings.Repeat("k", 300<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("300 KiB gRPC message: %v, want RESOURCE_EXHAUSTED", err)
	}
}

func TestServeGRPC(t *testing.T) {
	s := start(t)
	cc := s.dial()
	c := weirv1.NewWeirClient(cc)
	ctx := context.Background()
	for i := range 6 {
		r, err := c.Check(ctx, &weirv1.CheckRequest{Policy: "login", Key: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed != (i < 5) || r.Remaining != int64(max(4-i, 0)) || r.Limit != 5 {
			t.Errorf("check %d: %v", i, r)
		}
	}
	// The HTTP and gRPC APIs share state.
	if m := s.post("/v1/check", `{"policy":"login","key":"alice"}`).json(t); m["allowed"] != false {
		t.Errorf("HTTP after gRPC: %v", m)
	}
	b, err := c.CheckBatch(ctx, &weirv1.CheckBatchRequest{Checks: []*weirv1.CheckRequest{
		{Policy: "api", Key: "a", Cost: proto.Int64(10)}, {Policy: "login", Key: "bob"},
	}})
	if err != nil || len(b.Results) != 2 || b.Results[0].Remaining != 190 || !b.Results[1].Allowed {
		t.Errorf("batch: %v %v", b, err)
	}
	a, err := c.Acquire(ctx, &weirv1.CheckRequest{Policy: "uploads", Key: "t"})
	if err != nil || !a.Allowed || a.Lease == "" {
		t.Fatalf("acquire: %v %v", a, err)
	}
	if _, err := c.Release(ctx, &weirv1.ReleaseRequest{Policy: "uploads", Key: "t", Lease: a.Lease}); err != nil {
		t.Errorf("release: %v", err)
	}
	p, err := c.ListPolicies(ctx, &weirv1.ListPoliciesRequest{})
	if err != nil || len(p.Policies) != 4 {
		t.Errorf("policies: %v %v", p, err)
	}
	// Bad input: INVALID_ARGUMENT naming the field.
	_, err = c.Check(ctx, &weirv1.CheckRequest{Policy: "api", Key: "k", Cost: proto.Int64(-1)})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "cost:") {
		t.Errorf("negative cost: %v", err)
	}
	_, err = c.Check(ctx, &weirv1.CheckRequest{Policy: "nope", Key: "k"})
	if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "policy:") {
		t.Errorf("unknown policy: %v", err)
	}
	// Health and reflection.
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "weir.v1.Weir"})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", h, err)
	}
	rs, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rs.CloseSend()
	var names []string
	for _, sv := range rr.GetListServicesResponse().GetService() {
		names = append(names, sv.Name)
	}
	for _, want := range []string{"weir.v1.Weir", "envoy.service.ratelimit.v3.RateLimitService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestServeEnvoy(t *testing.T) {
	s := start(t)
	c := rlv3.NewRateLimitServiceClient(s.dial())
	req := &rlv3.RateLimitRequest{Domain: "demo", Descriptors: []*rlcommon.RateLimitDescriptor{
		{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "generic_key", Value: "slow"}}},
		{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "nothing", Value: "here"}}},
	}}
	for i := range 6 {
		r, err := c.ShouldRateLimit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		wantOver := i >= 5
		if (r.OverallCode == rlv3.RateLimitResponse_OVER_LIMIT) != wantOver || r.Statuses[0].LimitRemaining != uint32(max(4-i, 0)) ||
			r.Statuses[0].CurrentLimit.GetRequestsPerUnit() != 5 || r.Statuses[1].Code != rlv3.RateLimitResponse_OK || r.Statuses[1].CurrentLimit != nil {
			t.Errorf("call %d: %v", i, r)
		}
		if d := r.Statuses[0].DurationUntilReset.AsDuration(); d <= 0 || d > time.Minute {
			t.Errorf("call %d: duration_until_reset %v", i, d)
		}
	}
	// The /json endpoint shares the counters and answers 429 when over.
	r := s.post("/json", `{"domain":"demo","descriptors":[{"entries":[{"key":"generic_key","value":"slow"}]}]}`)
	if r.Code != http.StatusTooManyRequests || !bytes.Contains(r.Body, []byte(`"overallCode":"OVER_LIMIT"`)) {
		t.Errorf("/json: %d %s", r.Code, r.Body)
	}
	if r := s.post("/json", `{"domain":"demo","descriptors":[{"entries":[{"key":"remote_address","value":"10.0.0.1"}]}]}`); r.Code != 200 {
		t.Errorf("/json ok: %d %s", r.Code, r.Body)
	}
	if r := s.post("/json", `{"domain":"demo","bogus":1}`); r.Code != 400 {
		t.Errorf("/json bad: %d %s", r.Code, r.Body)
	}
	_, err := c.ShouldRateLimit(context.Background(), &rlv3.RateLimitRequest{Domain: "demo"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("no descriptors: %v", err)
	}
}

// S6: tokens on every API, admin scope for reset and reload, and no
// unauthenticated non-loopback listener.
func TestAuth(t *testing.T) {
	const user, admin = "decision-token-0123456789", "admin-token-0123456789ab"
	s := start(t, "--token", user, "--admin-token", admin)
	body := `{"policy":"login","key":"k"}`
	if r := s.do("POST", "/v1/check", body, ""); r.Code != 401 || r.Hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", r.Code)
	}
	if r := s.do("POST", "/v1/check", body, "wrong-token-0123456789"); r.Code != 401 {
		t.Errorf("wrong token: %d", r.Code)
	}
	if r := s.do("POST", "/v1/check", body, user); r.Code != 200 {
		t.Errorf("decision token: %d %s", r.Code, r.Body)
	}
	if r := s.do("POST", "/json", `{"domain":"demo","descriptors":[{"entries":[{"key":"a","value":"b"}]}]}`, ""); r.Code != 401 {
		t.Errorf("/json without token: %d", r.Code)
	}
	if r := s.do("POST", "/v1/reset", body, user); r.Code != 403 {
		t.Errorf("reset with decision token: %d", r.Code)
	}
	if r := s.do("POST", "/v1/reset", body, admin); r.Code != 200 {
		t.Errorf("reset with admin token: %d %s", r.Code, r.Body)
	}
	if r := s.do("GET", "/readyz", "", ""); r.Code != 200 {
		t.Errorf("readyz is open to probes: %d", r.Code)
	}
	c := weirv1.NewWeirClient(s.dial())
	ctx := context.Background()
	if _, err := c.Check(ctx, &weirv1.CheckRequest{Policy: "login", Key: "k"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without token: %v", err)
	}
	uctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+user)
	if _, err := c.Check(uctx, &weirv1.CheckRequest{Policy: "login", Key: "k"}); err != nil {
		t.Errorf("gRPC with token: %v", err)
	}
	if _, err := c.Reset(uctx, &weirv1.ResetRequest{Policy: "login", Key: "k"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC reset with decision token: %v", err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+admin)
	if _, err := c.Reset(actx, &weirv1.ResetRequest{Policy: "login", Key: "k"}); err != nil {
		t.Errorf("gRPC reset with admin token: %v", err)
	}
	e := rlv3.NewRateLimitServiceClient(s.dial())
	if _, err := e.ShouldRateLimit(ctx, &rlv3.RateLimitRequest{Domain: "demo"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Envoy RLS without token: %v", err)
	}
	h, err := healthpb.NewHealthClient(s.dial()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health is open: %v %v", h, err)
	}
}

func TestNonLoopbackNeedsToken(t *testing.T) {
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"serve", "--http", "0.0.0.0:0", "--grpc", "127.0.0.1:0"}, IO{Stdout: &out, Stderr: &errb})
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("non-loopback without tokens: %v", err)
	}
	err = Run(context.Background(), []string{"serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--debug", "0.0.0.0:0"}, IO{Stdout: &out, Stderr: &errb})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("non-loopback pprof: %v", err)
	}
}

// R24: on shutdown readiness flips first; in-flight requests finish; Run
// returns nil.
func TestGracefulShutdown(t *testing.T) {
	s := start(t, "--drain-delay", "500ms")
	host := strings.TrimPrefix(s.HTTP, "http://")
	// An in-flight request: headers sent, body not yet.
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"policy":"api","key":"k"}`
	fmt.Fprintf(c, "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	// Make sure the server has read the headers before shutting down.
	time.Sleep(50 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	eventually(t, "readyz to report draining", func() bool {
		r, err := http.Get(s.HTTP + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusServiceUnavailable
	})
	hc := healthpb.NewHealthClient(s.dial())
	h, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health while draining: %v %v", h, err)
	}
	if _, err := c.Write([]byte(body[5:])); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) || !bytes.Contains(buf[:n], []byte(`"allowed":true`)) {
		t.Errorf("in-flight request: %q", buf[:n])
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run after shutdown: %v", err)
	}
}

const policyV1 = `
policies:
  p:
    limits: ["2/m algo=fixed-window"]
`

// S13: reload validates fully, then swaps; a bad file keeps the old
// configuration and says why (file, line, key).
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weir.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(policyV1)
	s := start(t, "--config", path)
	check := func() map[string]any { return s.post("/v1/check", `{"policy":"p","key":"k","cost":0}`).json(t) }
	if m := check(); m["limit"] != float64(2) {
		t.Fatalf("v1: %v", m)
	}
	bad := []struct{ text, want string }{
		{"policies:\n  p:\n    limits: [\"2/m\"]\n    shadw: true\n", "weir.yaml:4: unknown key \"shadw\""},
		{"policies:\n  p:\n    limits: [\"0/m\"]\n", "weir.yaml:3:"},
		{"policies:\n  p:\n    limits: [\"2/m\"]\n  p:\n    limits: [\"3/m\"]\n", "duplicate policy \"p\""},
		{"policies:\n  p:\n    limits: [\"2/m name=a\", \"3/m name=a\"]\n", "duplicate limit name \"a\""},
		{"policies: [\n", "weir.yaml:"},
	}
	for _, b := range bad {
		write(b.text)
		r := s.post("/v1/reload", "")
		if r.Code != http.StatusUnprocessableEntity || !bytes.Contains(r.Body, []byte(strings.ReplaceAll(b.want, `"`, `\"`))) {
			t.Errorf("reload %q: %d %s, want 422 with %s", b.text, r.Code, r.Body, b.want)
		}
		if m := check(); m["limit"] != float64(2) {
			t.Errorf("after bad reload: %v", m)
		}
	}
	if !strings.Contains(s.Logs.String(), "keeping the previous configuration") {
		t.Error("bad reloads are not logged")
	}
	write(strings.ReplaceAll(policyV1, "2/m", "7/m"))
	if r := s.post("/v1/reload", ""); r.Code != 200 {
		t.Fatalf("good reload: %d %s", r.Code, r.Body)
	}
	if m := check(); m["limit"] != float64(7) {
		t.Errorf("after reload: %v", m)
	}
}

// Hot reload on file change, without any request asking for it.
func TestReloadOnFileChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(policyV1), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, "--config", path, "--reload-interval", "20ms")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(policyV1, "2/m", "9/m")), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new limit", func() bool {
		return s.post("/v1/check", `{"policy":"p","key":"k","cost":0}`).json(t)["limit"] == float64(9)
	})
}

// SIGHUP reloads the configuration (file watching is off here).
func TestReloadOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(path, []byte(policyV1), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, "--config", path)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(policyV1, "2/m", "4/m")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new limit after SIGHUP", func() bool {
		return s.post("/v1/check", `{"policy":"p","key":"k","cost":0}`).json(t)["limit"] == float64(4)
	})
	if !strings.Contains(s.Logs.String(), `"reason":"SIGHUP"`) {
		t.Errorf("reload not logged as SIGHUP:\n%s", s.Logs.String())
	}
}

// The SQLite store keeps counters across restarts.
func TestSQLitePersists(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "weir.db")
	s := start(t, "--store", db)
	for range 3 {
		s.post("/v1/check", `{"policy":"login","key":"k"}`)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s = start(t, "--store", db)
	if m := s.post("/v1/check", `{"policy":"login","key":"k","cost":0}`).json(t); m["remaining"] != float64(2) {
		t.Errorf("after restart: %v, want 2 remaining of 5", m)
	}
}

// R22: a key cap on the memory store bounds its memory: new keys beyond
// the cap are refused (503, nothing charged) while existing keys keep
// their state and keep being served.
func TestKeyCap(t *testing.T) {
	s := start(t, "--store", "memory:?max_keys=200")
	for i := range 200 {
		if r := s.post("/v1/check", fmt.Sprintf(`{"policy":"login","key":"k%d"}`, i)); r.Code != 200 {
			t.Fatalf("key %d under the cap: %d %s", i, r.Code, r.Body)
		}
	}
	if r := s.post("/v1/check", `{"policy":"login","key":"one-too-many"}`); r.Code != http.StatusServiceUnavailable {
		t.Errorf("key over the cap: %d %s", r.Code, r.Body)
	}
	if m := s.post("/v1/check", `{"policy":"login","key":"k7"}`).json(t); m["allowed"] != true || m["remaining"] != float64(3) {
		t.Errorf("existing key after the cap: %v", m)
	}
}
