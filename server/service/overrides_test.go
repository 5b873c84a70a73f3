package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
)

const plansYAML = `plans:
  free: ["2/h algo=fixed-window"]
  pro: ["5/h algo=fixed-window"]
  blocked: ["1/5000w"]
policies:
  api:
    plans: {default: free, keys: {static-pro: pro}}
  plain:
    limits: ["3/h"]
  conc:
    limits: ["2/m algo=concurrency"]
`

func newPlanService(t *testing.T) (*Service, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(plansYAML))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(memstore.New(memstore.WithClock(func() time.Time { return t0 })), nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	svc.SetLogger(slog.New(slog.NewTextHandler(&log, nil)))
	return svc, &log
}

// admitted counts the units of policy/key admitted one at a time, up to 10.
func admitted(t *testing.T, svc *Service, policy, key string) int {
	t.Helper()
	n := 0
	for range 10 {
		r, err := svc.Check(context.Background(), &Request{Policy: policy, Key: key, Cost: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Allowed {
			break
		}
		n++
	}
	return n
}

func TestPlansChooseLimits(t *testing.T) {
	svc, _ := newPlanService(t)
	ctx := context.Background()
	if n := admitted(t, svc, "api", "someone"); n != 2 {
		t.Fatalf("default plan free: %d admitted, want 2", n)
	}
	if n := admitted(t, svc, "api", "static-pro"); n != 5 {
		t.Fatalf("key table pro: %d admitted, want 5", n)
	}
	// An upgrade by override: the 2 units used under free stay counted.
	if _, err := svc.SetOverride(ctx, &OverrideRequest{Policy: "api", Key: "someone", Plan: "pro", Reason: "paid"}, "test", true); err != nil {
		t.Fatal(err)
	}
	if n := admitted(t, svc, "api", "someone"); n != 3 {
		t.Fatalf("after the upgrade: %d admitted, want 3 (5 minus the 2 used)", n)
	}
	// Explicit limits on a policy without plans.
	if _, err := svc.SetOverride(ctx, &OverrideRequest{Policy: "plain", Key: "k", Limits: []string{"6/h"}}, "test", true); err != nil {
		t.Fatal(err)
	}
	if n := admitted(t, svc, "plain", "k"); n != 6 {
		t.Fatalf("explicit override: %d admitted, want 6", n)
	}
	if err := svc.DeleteOverride(ctx, "plain", "k", nil, "done", "test", true); err != nil {
		t.Fatal(err)
	}
	if n := admitted(t, svc, "plain", "k"); n != 0 {
		t.Fatalf("after delete: %d admitted, want 0 (6 used of the policy's 3)", n)
	}
	// A pin to plan blocked.
	if _, err := svc.SetOverride(ctx, &OverrideRequest{Policy: "api", Key: "abuser", Plan: "blocked", For: time.Hour}, "test", true); err != nil {
		t.Fatal(err)
	}
	if n := admitted(t, svc, "api", "abuser"); n != 1 {
		t.Fatalf("pinned: %d admitted, want 1 per 5000 weeks", n)
	}
}

func TestOverrideAdmin(t *testing.T) {
	svc, log := newPlanService(t)
	ctx := context.Background()
	req := &OverrideRequest{Policy: "api", Key: "acme", Plan: "pro", For: time.Hour, Reason: "launch week"}
	if _, err := svc.SetOverride(ctx, req, "nobody", false); !errors.Is(err, ErrPermission) {
		t.Fatalf("without admin: %v, want ErrPermission", err)
	}
	o, err := svc.SetOverride(ctx, req, "ops@example", true)
	if err != nil {
		t.Fatal(err)
	}
	if o.Scope != "api" || o.Key != "acme" || o.Plan != "pro" || o.By != "ops@example" || o.Expires.IsZero() || o.Updated.IsZero() {
		t.Fatalf("stored %+v", o)
	}
	line := log.String()
	for _, want := range []string{"override set", "policy=api", "key=acme", "plan=pro", `reason="launch week"`, "by=ops@example"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if got, err := svc.GetOverride(ctx, "api", "acme", nil, true); err != nil || got.Plan != "pro" {
		t.Fatalf("GetOverride = %+v, %v", got, err)
	}
	if _, err := svc.GetOverride(ctx, "api", "acme", nil, false); !errors.Is(err, ErrPermission) {
		t.Fatalf("GetOverride without admin: %v", err)
	}
	if list, err := svc.ListOverrides(ctx, "", true); err != nil || len(list) != 1 {
		t.Fatalf("ListOverrides = %+v, %v", list, err)
	}
	if err := svc.DeleteOverride(ctx, "api", "acme", nil, "over", "ops", true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "override deleted") {
		t.Errorf("no log of the delete: %q", log.String())
	}
	if err := svc.DeleteOverride(ctx, "api", "acme", nil, "", "ops", true); !errors.Is(err, weir.ErrNoOverride) {
		t.Fatalf("second delete: %v, want ErrNoOverride", err)
	}
}

func TestOverrideErrors(t *testing.T) {
	svc, _ := newPlanService(t)
	ctx := context.Background()
	tests := []struct {
		req   OverrideRequest
		field string
	}{
		{OverrideRequest{Policy: "nope", Key: "k", Plan: "pro"}, "policy"},
		{OverrideRequest{Policy: "api", Plan: "pro"}, "key"},
		{OverrideRequest{Policy: "api", Key: "k"}, "plan"},
		{OverrideRequest{Policy: "api", Key: "k", Plan: "gold"}, "plan"},
		{OverrideRequest{Policy: "api", Key: "k", Plan: "pro", Limits: []string{"1/s"}}, "plan"},
		{OverrideRequest{Policy: "api", Key: "k", Limits: []string{"0/s"}}, "limits[0].Limit.Quota"},
		{OverrideRequest{Policy: "api", Key: "k", Limits: []string{"1/s algo=concurrency"}}, "limits[0]"},
		{OverrideRequest{Policy: "api", Key: "k", Plan: "pro", For: -time.Second}, "for"},
		{OverrideRequest{Policy: "api", Key: "k", Plan: "pro", For: 400 * 24 * time.Hour}, "for"},
		{OverrideRequest{Policy: "conc", Key: "k", Plan: "pro"}, "policy"},
		{OverrideRequest{Policy: "api", Key: "k", Plan: "pro", Reason: strings.Repeat("x", weir.MaxReason+1)}, "Override.Reason"},
	}
	for _, tt := range tests {
		_, err := svc.SetOverride(ctx, &tt.req, "test", true)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("SetOverride(%+v) = %v, want a field error naming %q", tt.req, err, tt.field)
		}
	}
	if list, _ := svc.ListOverrides(ctx, "", true); len(list) != 0 {
		t.Fatalf("bad requests stored %d overrides", len(list))
	}
}

// noOverrides is a store that keeps no overrides.
type noOverrides struct{ weir.Store }

func TestOverridesNeedAnOverrideStore(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(plansYAML))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(noOverrides{memstore.New()}, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ListOverrides(context.Background(), "", true); !errors.Is(err, ErrNoOverrides) {
		t.Fatalf("ListOverrides = %v, want ErrNoOverrides", err)
	}
	if n := admitted(t, svc, "api", "static-pro"); n != 5 {
		t.Fatalf("the key table works without overrides: %d admitted, want 5", n)
	}
}
