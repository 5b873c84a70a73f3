package service

import (
	"context"
	"testing"
	"time"

	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/metrics"
)

// TestLocalPolicy: a policy with a local: section decides from blocks
// (the demand seen makes its second block larger than needed), the local counters show the blocks, and
// Close gives every unspent unit back (a fixed window returns exactly).
func TestLocalPolicy(t *testing.T) {
	s, _, m := newService(t, `
policies:
  hot: {limits: ["100000/h algo=fixed-window"], local: {hold: 1s}}
  plain: {limits: ["100/h"]}
`)
	ctx := context.Background()
	admitted := 0
	for range 60 {
		r, err := s.Check(ctx, &Request{Policy: "hot", Key: "k", Cost: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			admitted++
		}
	}
	if admitted != 60 {
		t.Fatalf("admitted %d of 60 under 100000/h", admitted)
	}
	// No background Take has landed: the lead is the least, hold/8.
	if lead := localGauge(t, m, "hot", "weir_local_lead_seconds"); lead != 0.125 {
		t.Errorf("weir_local_lead_seconds %v, want 0.125", lead)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			for _, lp := range x.GetLabel() {
				if lp.GetName() == "policy" && lp.GetValue() == "hot" && x.GetCounter() != nil {
					got[mf.GetName()] = x.GetCounter().GetValue()
				}
				if lp.GetName() == "policy" && lp.GetValue() == "plain" && len(mf.GetName()) > 11 && mf.GetName()[:11] == "weir_local_" {
					t.Errorf("%s has a series for the policy without local:", mf.GetName())
				}
			}
		}
	}
	t.Logf("admitted %d; %v", admitted, got)
	if got["weir_local_blocks_total"] < 1 || got["weir_local_units_returned_total"] < 1 {
		t.Errorf("blocks %v, returned %v: want a block held beyond the demand and returned by Close", got["weir_local_blocks_total"], got["weir_local_units_returned_total"])
	}
	if net := got["weir_local_units_taken_total"] - got["weir_local_units_returned_total"]; net != float64(admitted) || got["weir_local_units_wasted_total"] != 0 {
		t.Errorf("taken - returned = %v, wasted %v; want %d admitted and 0 wasted", net, got["weir_local_units_wasted_total"], admitted)
	}
	// The first request waits for the key's first block; back-to-back
	// requests are no recurring key, so nothing is refreshed.
	if w, ok := got["weir_local_waits_total"]; !ok || w < 1 || w > got["weir_local_blocks_total"] {
		t.Errorf("weir_local_waits_total %v (exported: %v), want from 1 to the blocks taken (%v)", w, ok, got["weir_local_blocks_total"])
	}
	if r, ok := got["weir_local_refreshes_total"]; !ok || r != 0 {
		t.Errorf("weir_local_refreshes_total %v (exported: %v), want 0", r, ok)
	}
	// Background Takes: as many as the blocks not fetched by a waiting
	// request, and a round trip each.
	landed, ok1 := got["weir_local_refills_landed_total"]
	secs, ok2 := got["weir_local_refill_seconds_total"]
	if !ok1 || !ok2 || landed != got["weir_local_blocks_total"]-got["weir_local_waits_total"] || (landed > 0) != (secs > 0) {
		t.Errorf("weir_local_refills_landed_total %v, weir_local_refill_seconds_total %v (exported: %v, %v); want the %v blocks less the %v waits, and time for each",
			landed, secs, ok1, ok2, got["weir_local_blocks_total"], got["weir_local_waits_total"])
	}
	// The lead of a closed store is no longer a policy's.
	if lead := localGauge(t, m, "hot", "weir_local_lead_seconds"); lead != 0 {
		t.Errorf("weir_local_lead_seconds %v after Close, want 0", lead)
	}
}

// localGauge returns the gauge name of policy, or -1 when it is not
// exported.
func localGauge(t *testing.T, m *metrics.Metrics, policy, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, x := range mf.GetMetric() {
			for _, lp := range x.GetLabel() {
				if lp.GetName() == "policy" && lp.GetValue() == policy && x.GetGauge() != nil {
					return x.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// localCounters returns the weir_local_* counters of policy.
func localCounters(t *testing.T, m *metrics.Metrics, policy string) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			for _, lp := range x.GetLabel() {
				if lp.GetName() == "policy" && lp.GetValue() == policy && x.GetCounter() != nil {
					got[mf.GetName()] = x.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}

// TestLocalPolicyDropped: a reload that drops a policy's local: section
// (or the policy) closes its local store a grace period later, which gives
// its unspent units back, and its counters stay on /metrics; Close closes
// a store still in its grace period.
func TestLocalPolicyDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		reload string
	}{
		{"no grace, local dropped", 0, "policies:\n  hot: {limits: [\"1000/h algo=fixed-window\"]}\n"},
		{"no grace, policy dropped", 0, "policies:\n  other: {limits: [\"10/m\"]}\n"},
		{"hold changed, closed by Close", time.Hour, "policies:\n  hot: {limits: [\"1000/h algo=fixed-window\"], local: {hold: 2s}}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, m := newService(t, `
policies:
  hot: {limits: ["1000/h algo=fixed-window"], local: {hold: 1s}}
`)
			s.retireGrace = tc.grace
			ctx := context.Background()
			for range 10 {
				if r, err := s.Check(ctx, &Request{Policy: "hot", Key: "k", Cost: 1}); err != nil || !r.Allowed {
					t.Fatalf("check: %+v, %v", r, err)
				}
			}
			if got := localCounters(t, m, "hot"); got["weir_local_units_taken_total"] <= 10 {
				t.Fatalf("taken %v: the test needs units held beyond the 10 spent", got["weir_local_units_taken_total"])
			}
			cfg, err := config.Parse("t.yaml", []byte(tc.reload))
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.Apply(c)
			s.localMu.Lock()
			retiring, kept := len(s.retiring), len(s.locals)
			s.localMu.Unlock()
			wantKept := 0
			if cfg.Policies[0].Local != nil {
				wantKept = 1 // the new settings' store
			}
			if kept != wantKept {
				t.Errorf("%d local stores kept after the reload, want %d", kept, wantKept)
			}
			if tc.grace == 0 && retiring != 0 || tc.grace > 0 && retiring != 1 {
				t.Errorf("%d stores in their grace period after the reload (grace %v)", retiring, tc.grace)
			}
			if tc.grace > 0 {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s.localMu.Lock()
				retiring = len(s.retiring)
				s.localMu.Unlock()
				if retiring != 0 {
					t.Errorf("%d stores still in their grace period after Close", retiring)
				}
			}
			got := localCounters(t, m, "hot")
			if net := got["weir_local_units_taken_total"] - got["weir_local_units_returned_total"] - got["weir_local_units_wasted_total"]; net != 10 {
				t.Errorf("counters after the store was closed: %v; want taken - returned - wasted = the 10 spent", got)
			}
			if got["weir_local_units_returned_total"] == 0 {
				t.Errorf("nothing returned when the dropped store was closed: %v", got)
			}
			_ = s.Close()
		})
	}
}
