package httplimit

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

// TestPlans limits each client by its plan: the default, the key table,
// and an override set at runtime; the headers describe the key's own
// plan.
func TestPlans(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	plans, err := weir.NewPlanTable(st, weir.Plans{
		Scope: "web",
		Plans: []weir.Plan{
			{Name: "free", Limits: []weir.Limit{weir.PerHour(2)}},
			{Name: "pro", Limits: []weir.Limit{weir.PerHour(5)}},
		},
		Default: "free",
		Keys:    map[string]string{"ip:192.0.2.5": "pro"},
		Refresh: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := mustNew(t, Policy{Plans: plans}).Handler(okHandler)
	admitted := func(ip string) (n int, policy string) {
		for range 10 {
			rec := do(h, "GET", "/", ip+":1", nil)
			policy = rec.Header().Get("RateLimit-Policy")
			if rec.Code != http.StatusOK {
				break
			}
			n++
		}
		return n, policy
	}
	if n, pol := admitted("192.0.2.1"); n != 2 || pol != `"per-h";q=2;w=3600` {
		t.Fatalf("default plan: %d admitted, policy %q", n, pol)
	}
	if n, pol := admitted("192.0.2.5"); n != 5 || pol != `"per-h";q=5;w=3600` {
		t.Fatalf("key table: %d admitted, policy %q", n, pol)
	}
	// An override set at runtime, seen after a refresh.
	if err := st.SetOverride(ctx, weir.Override{Scope: "web", Key: "ip:192.0.2.9", Limits: []weir.Limit{weir.PerHour(7)}}); err != nil {
		t.Fatal(err)
	}
	if err := plans.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n, pol := admitted("192.0.2.9"); n != 7 || pol != `"per-h";q=7;w=3600` {
		t.Fatalf("override: %d admitted, policy %q", n, pol)
	}
}

func TestPlansPolicyErrors(t *testing.T) {
	lim := mustLimiter(t, newStore(), weir.PerSecond(1))
	plans, err := weir.NewPlanTable(newStore(), weir.Plans{Scope: "s", Plans: []weir.Plan{{Name: "p", Limits: []weir.Limit{weir.PerSecond(1)}}}, Default: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p     Policy
		field string
	}{
		{Policy{}, "policies[0].Limiter"},
		{Policy{Limiter: lim, Plans: plans}, "policies[0].Plans"},
		{Policy{Plans: plans, Count: func(*Outcome) bool { return true }}, "policies[0].Plans"},
	} {
		_, err := New(tc.p)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("New(%+v) = %v, want a field error naming %s", tc.p, err, tc.field)
		}
	}
}
