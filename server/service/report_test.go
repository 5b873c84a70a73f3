package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

const reportPolicies = policies + `
  tokens: {limits: ["100/m"]}
  capped: {limits: ["100/m debt=50"]}
`

// TestReport settles work's actual cost against what a check took, at a
// fixed instant of the store's clock: 100/m is one unit per 600 ms.
func TestReport(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		policy   string
		checked  int64 // cost of the check before the work (0: none)
		reserved int64
		actual   int64
		want     Result // Policy, LimitName and Limit are filled in
		next     bool   // whether a check of 1 is admitted after
	}{
		{"excess charged", "tokens", 10, 10, 30, Result{Allowed: true, Remaining: 70, ResetAfter: 18 * time.Second}, true},
		{"shortfall given back", "tokens", 10, 10, 4, Result{Allowed: true, Remaining: 96, ResetAfter: 2400 * time.Millisecond}, true},
		{"equal", "tokens", 10, 10, 10, Result{Allowed: true, Remaining: 90, ResetAfter: 6 * time.Second}, true},
		{"charge without a check", "tokens", 0, 0, 100, Result{Allowed: true, Remaining: 0, RetryAfter: 600 * time.Millisecond, ResetAfter: time.Minute}, false},
		// 250 over a full 100: a debt of 150, a unit back after 151 units.
		{"debt", "tokens", 0, 0, 250, Result{Allowed: true, Debt: 150, RetryAfter: 151 * 600 * time.Millisecond, ResetAfter: 150 * time.Second}, false},
		{"debt capped", "capped", 0, 0, 250, Result{Allowed: true, Debt: 50, Clamped: true, RetryAfter: 51 * 600 * time.Millisecond, ResetAfter: 90 * time.Second}, false},
		{"shadow is charged", "shadow", 1, 1, 3, Result{Allowed: true, Debt: 2, RetryAfter: 3 * time.Minute, ResetAfter: 3 * time.Minute}, true}, // a shadow check admits, Shadowed
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newService(t, reportPolicies)
			if tc.checked > 0 {
				if r, err := s.Check(ctx, &Request{Policy: tc.policy, Key: "k", Cost: tc.checked}); err != nil || !r.Allowed {
					t.Fatalf("check: %+v %v", r, err)
				}
			}
			got, err := s.Report(ctx, &Request{Policy: tc.policy, Key: "k", Cost: tc.actual}, tc.reserved)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Policy, want.LimitName, want.Limit = tc.policy, got.LimitName, got.Limit
			if got != want {
				t.Errorf("report = %+v\n      want %+v", got, want)
			}
			r, err := s.Check(ctx, &Request{Policy: tc.policy, Key: "k", Cost: 1})
			if err != nil || r.Allowed != tc.next || (tc.policy == "shadow") != r.Shadowed {
				t.Errorf("next check: %+v %v, want allowed %v", r, err, tc.next)
			}
		})
	}
}

func TestReportBadInput(t *testing.T) {
	s, _, _ := newService(t, reportPolicies)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		req      Request
		reserved int64
		field    string
	}{
		{"negative cost", Request{Policy: "tokens", Key: "k", Cost: -1}, 0, "cost"},
		{"cost above 2^50", Request{Policy: "tokens", Key: "k", Cost: weir.MaxDebtUnits + 1}, 0, "cost"},
		{"negative reserved", Request{Policy: "tokens", Key: "k", Cost: 1}, -1, "reserved"},
		{"reserved above capacity", Request{Policy: "tokens", Key: "k", Cost: 1}, 101, "reserved"},
		{"concurrency policy", Request{Policy: "jobs", Key: "k", Cost: 1}, 0, "policy"},
		{"unknown policy", Request{Policy: "nope", Key: "k", Cost: 1}, 0, "policy"},
		{"no policy", Request{Key: "k", Cost: 1}, 0, "policy"},
		{"missing field", Request{Policy: "tenant", Key: "k", Cost: 1}, 0, "fields.tenant"},
		{"wait", Request{Policy: "tokens", Key: "k", Cost: 1, Wait: time.Second}, 0, "wait_ms"},
		{"bad UTF-8 key", Request{Policy: "tokens", Key: "k\xff", Cost: 1}, 0, "key"},
	} {
		_, err := s.Report(ctx, &tc.req, tc.reserved)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, weir.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid-input error naming %s", tc.name, err, tc.field)
		}
	}
	// Nothing was charged by the refused reports.
	if r, err := s.Check(ctx, &Request{Policy: "tokens", Key: "k", Cost: 0}); err != nil || r.Remaining != 100 {
		t.Errorf("after refused reports: %+v %v", r, err)
	}
}

func TestReportStoreDown(t *testing.T) {
	s, f, _ := newService(t, reportPolicies)
	ctx := context.Background()
	f.down.Store(true)
	for _, p := range []string{"err", "open", "shut"} {
		if _, err := s.Report(ctx, &Request{Policy: p, Key: "k", Cost: 1}, 0); !errors.Is(err, weir.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable (a report has nothing to allow or deny)", p, err)
		}
	}
	r, err := s.Report(ctx, &Request{Policy: "local", Key: "k", Cost: 2}, 0)
	if err != nil || r.Source != weir.SourceFallback || r.Remaining != 0 {
		t.Fatalf("fallback: %+v %v", r, err)
	}
	if r, err := s.Check(ctx, &Request{Policy: "local", Key: "k", Cost: 1}); err != nil || r.Allowed {
		t.Errorf("the fallback was not charged: %+v %v", r, err)
	}
}
