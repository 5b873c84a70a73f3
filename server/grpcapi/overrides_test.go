package grpcapi

import (
	"context"
	"testing"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestOverrides(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("plans:\n  free: [\"1/h\"]\n  pro: [\"3/h\"]\npolicies:\n  api: {plans: {default: free}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	svc, err := service.New(ms, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	const adminTok, decideTok = "admin-token-0123456789", "decide-token-0123456789"
	s := New(svc, service.NewAuth([]string{decideTok}, []string{adminTok}))
	as := func(tok string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	}
	admin, decide := as(adminTok), as(decideTok)
	code := func(err error) codes.Code { return status.Code(err) }

	set := &weirv1.SetOverrideRequest{Policy: "api", Key: "acme", Plan: "pro", ForMs: 60_000, Reason: "trial", By: "ann"}
	if _, err := s.SetOverride(decide, set); code(err) != codes.PermissionDenied {
		t.Fatalf("SetOverride with a decision token: %v, want PERMISSION_DENIED", err)
	}
	o, err := s.SetOverride(admin, set)
	if err != nil || o.GetPlan() != "pro" || o.GetExpiresUnixMs() == 0 || o.GetReason() != "trial" {
		t.Fatalf("SetOverride = %v, %v", o, err)
	}
	if r, err := s.Check(decide, &weirv1.CheckRequest{Policy: "api", Key: "acme", Cost: ptr(int64(3))}); err != nil || !r.GetAllowed() {
		t.Fatalf("check under the override: %v, %v", r, err)
	}
	if _, err := s.SetOverride(admin, &weirv1.SetOverrideRequest{Policy: "api", Key: "k", Limits: []string{"0/s"}}); code(err) != codes.InvalidArgument {
		t.Fatalf("bad limit: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := s.SetOverride(admin, &weirv1.SetOverrideRequest{Policy: "api", Key: "k", Plan: "pro", ForMs: -1}); code(err) != codes.InvalidArgument {
		t.Fatalf("negative for_ms: %v, want INVALID_ARGUMENT", err)
	}
	if got, err := s.GetOverride(admin, &weirv1.OverrideKey{Policy: "api", Key: "acme"}); err != nil || got.GetBy() == "" {
		t.Fatalf("GetOverride = %v, %v", got, err)
	}
	if l, err := s.ListOverrides(admin, &weirv1.ListOverridesRequest{}); err != nil || len(l.GetOverrides()) != 1 {
		t.Fatalf("ListOverrides = %v, %v", l, err)
	}
	if _, err := s.ListOverrides(decide, &weirv1.ListOverridesRequest{}); code(err) != codes.PermissionDenied {
		t.Fatalf("ListOverrides with a decision token: %v", err)
	}
	if _, err := s.DeleteOverride(admin, &weirv1.OverrideKey{Policy: "api", Key: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteOverride(admin, &weirv1.OverrideKey{Policy: "api", Key: "acme"}); code(err) != codes.NotFound {
		t.Fatalf("second delete: %v, want NOT_FOUND", err)
	}
}

func ptr[T any](v T) *T { return &v }
