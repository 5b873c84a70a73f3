package service

import (
	"context"
	"testing"
)

// TestLocalPolicy: a policy with a local: section decides from blocks
// (the demand seen makes its second block larger than needed), the local counters show the blocks, and
// Close gives every unspent unit back (a fixed window returns exactly).
// The quota is far above the demand: with a quota the demand nearly uses
// up, a refill in flight can hold the store's last units while a request
// of the same process asks the store, is denied and remembers the denial
// until the refill lands (a known limit of localquota, docs/localquota.md),
// which a busy machine that delays the refill's goroutine turns into
// denials of demand the quota covers. That is not what this test checks.
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
}
