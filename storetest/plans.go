package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// changeCase is one change of a key's limit under the same state name:
// used units taken under from, then counted under to at once and after
// a pause.
type changeCase struct {
	name      string
	from, to  weir.Limit
	used      int64
	wantNow   int64         // units to admits at the instant of the change
	after     time.Duration // then, from the change
	wantAfter int64         // units to admits then
}

var changeCases = []changeCase{
	// Token bucket: the TAT carries over, so what was used under from is
	// owed under to: from 100/s, 50 used is half a bucket, which is 5 of
	// 10/s. An upgrade from an empty bucket starts empty and refills at the
	// new rate. A smaller tolerance waits out the excess, never longer
	// than from needed to refill (10 s here).
	{"token-bucket/down", weir.PerSecond(100), weir.PerSecond(10), 50, 5, time.Second, 10},
	{"token-bucket/up", weir.PerSecond(10), weir.PerSecond(100), 10, 0, time.Second, 100},
	{"token-bucket/burst-down", weir.PerSecond(100).WithBurst(1000), weir.PerSecond(10), 1000, 0, 10 * time.Second, 10},
	// Windows and the log: the count carries over; above the new quota the
	// key is denied until the window ends.
	{"fixed-window/down", fixedW(100), fixedW(10), 50, 0, time.Second, 10},
	{"fixed-window/up", fixedW(10), fixedW(100), 10, 90, time.Second, 100},
	{"sliding-window/down", counterW(100), counterW(10), 50, 0, 2 * time.Second, 10},
	{"sliding-window/up", counterW(10), counterW(100), 10, 90, 2 * time.Second, 100},
	{"sliding-log/down", logW(100), logW(10), 50, 0, 1500 * time.Millisecond, 10},
	{"sliding-log/up", logW(10), logW(100), 10, 90, 1500 * time.Millisecond, 100},
	// Concurrency: leases held stay held; the new quota applies to them.
	{"concurrency/down", weir.Concurrent(5, time.Minute), weir.Concurrent(2, time.Minute), 5, 0, time.Minute, 2},
	{"concurrency/up", weir.Concurrent(2, time.Minute), weir.Concurrent(5, time.Minute), 2, 3, time.Minute, 5},
}

func fixedW(n int64) weir.Limit {
	return weir.PerSecond(n).WithAlgorithm(weir.FixedWindow)
}
func counterW(n int64) weir.Limit {
	return weir.PerSecond(n).WithAlgorithm(weir.SlidingWindowCounter)
}
func logW(n int64) weir.Limit { return weir.PerSecond(n).WithAlgorithm(weir.SlidingWindowLog) }

// testChangedLimit checks the rule of docs/algorithms.md, "State under a
// changed limit": a limit whose numbers change under the same name keeps
// its state; no algorithm resets it for free, and none denies longer
// than the state implies.
func testChangedLimit(t *testing.T, f Factory) {
	for _, tc := range changeCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, f)
			from, to := tc.from.WithName("tier"), tc.to.WithName("tier")
			lease := 0
			count := func(l weir.Limit, most int64) int64 {
				t.Helper()
				var n int64
				for n <= most {
					lease++
					d := h.take(&weir.Request{Checks: []weir.Check{{Key: "k", Limit: l}}, Cost: 1, Lease: fmt.Sprint("l", lease)})
					if d.Remaining < 0 {
						t.Fatalf("under %s: Remaining %d, want at least 0", l, d.Remaining)
					}
					if !d.Allowed {
						break
					}
					n++
				}
				return n
			}
			if got := count(from, tc.used-1); got != tc.used {
				t.Fatalf("under %s: admitted %d, want %d", from, got, tc.used)
			}
			if got := count(to, to.Capacity()); got != tc.wantNow {
				t.Fatalf("at the change to %s after %d used under %s: admitted %d, want %d", to, tc.used, from, got, tc.wantNow)
			}
			h.clk.add(t, tc.after)
			if got := count(to, to.Capacity()); got != tc.wantAfter {
				t.Fatalf("%v after the change to %s: admitted %d, want %d", tc.after, to, got, tc.wantAfter)
			}
		})
	}
}

// testOverrides checks the OverrideStore contract on stores that keep
// overrides.
func testOverrides(t *testing.T, f Factory) {
	h := newHarness(t, f)
	os, ok := h.store.(weir.OverrideStore)
	if !ok {
		t.Skip("the store is not a weir.OverrideStore")
	}
	ctx := context.Background()
	v0, err := os.OverrideVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	boost := weir.Override{Scope: "api", Key: "acme", Limits: []weir.Limit{weir.PerSecond(100).WithName("sec"), weir.PerDay(1e6)}, Reason: "launch", By: "ops"}
	pin := weir.Override{Scope: "api", Key: "abuser", Plan: "blocked", Expires: h.clk.now().Add(time.Hour)}
	other := weir.Override{Scope: "search", Key: "acme", Plan: "pro"}
	for _, o := range []weir.Override{boost, pin, other} {
		if err := os.SetOverride(ctx, o); err != nil {
			t.Fatalf("SetOverride(%s/%s): %v", o.Scope, o.Key, err)
		}
	}
	v1, err := os.OverrideVersion(ctx)
	if err != nil || v1 == v0 {
		t.Fatalf("OverrideVersion after SetOverride = %d, %v; was %d", v1, err, v0)
	}
	got, err := os.GetOverride(ctx, "api", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != "launch" || got.By != "ops" || len(got.Limits) != 2 || got.Limits[0] != boost.Limits[0] || got.Limits[1] != boost.Limits[1] || got.Updated.IsZero() {
		t.Fatalf("GetOverride = %+v, want %+v with Updated set", got, boost)
	}
	if _, err := os.GetOverride(ctx, "api", "nobody"); !errors.Is(err, weir.ErrNoOverride) {
		t.Fatalf("GetOverride of a missing key: %v, want ErrNoOverride", err)
	}
	list, err := os.ListOverrides(ctx, "api")
	if err != nil || len(list) != 2 || list[0].Key != "abuser" || list[1].Key != "acme" {
		t.Fatalf("ListOverrides(api) = %+v, %v; want abuser, acme", list, err)
	}
	if !list[0].Expires.Equal(pin.Expires) || list[0].Plan != "blocked" {
		t.Fatalf("listed %+v, want %+v", list[0], pin)
	}
	if all, err := os.ListOverrides(ctx, ""); err != nil || len(all) != 3 || all[2].Scope != "search" {
		t.Fatalf("ListOverrides(\"\") = %+v, %v; want 3, search last", all, err)
	}
	// Replacing keeps one override per (scope, key).
	boost.Limits = []weir.Limit{weir.PerSecond(1000)}
	if err := os.SetOverride(ctx, boost); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.GetOverride(ctx, "api", "acme"); len(got.Limits) != 1 || got.Limits[0] != boost.Limits[0] {
		t.Fatalf("after replacing: %+v", got)
	}
	// Expiry is judged on the store's clock.
	h.clk.add(t, time.Hour)
	if _, err := os.GetOverride(ctx, "api", "abuser"); !errors.Is(err, weir.ErrNoOverride) {
		t.Fatalf("GetOverride of an expired override: %v, want ErrNoOverride", err)
	}
	if list, _ := os.ListOverrides(ctx, "api"); len(list) != 1 || list[0].Key != "acme" {
		t.Fatalf("ListOverrides after expiry = %+v, want acme only", list)
	}
	v2, _ := os.OverrideVersion(ctx)
	if err := os.DeleteOverride(ctx, "api", "acme"); err != nil {
		t.Fatal(err)
	}
	if v3, _ := os.OverrideVersion(ctx); v3 == v2 {
		t.Fatalf("OverrideVersion unchanged by DeleteOverride")
	}
	if err := os.DeleteOverride(ctx, "api", "acme"); !errors.Is(err, weir.ErrNoOverride) {
		t.Fatalf("second DeleteOverride: %v, want ErrNoOverride", err)
	}
	// Bad input names the field and changes nothing.
	for _, tc := range []struct {
		o     weir.Override
		field string
	}{
		{weir.Override{Scope: "api", Plan: "pro"}, "Override.Key"},
		{weir.Override{Scope: "a b", Key: "k", Plan: "pro"}, "Override.Scope"},
		{weir.Override{Scope: "api", Key: "k"}, "Override.Plan"},
		{weir.Override{Scope: "api", Key: "k", Plan: "pro", Limits: []weir.Limit{weir.PerSecond(1)}}, "Override.Plan"},
		{weir.Override{Scope: "api", Key: "k", Limits: []weir.Limit{{Quota: 0, Period: time.Second}}}, "Override.Limits[0].Quota"},
	} {
		wantField(t, os.SetOverride(ctx, tc.o), tc.field, nil)
	}
	if all, _ := os.ListOverrides(ctx, ""); len(all) != 1 {
		t.Fatalf("after invalid sets: %d overrides, want 1 (search/acme)", len(all))
	}
}

// testOverrideBound fills a store to weir.MaxOverrides and checks that
// one more is refused with a clear error, that replacing an existing one
// is not, and that expired overrides make room.
func testOverrideBound(t *testing.T, f Factory) {
	if testing.Short() {
		t.Skip("short: sets 10000 overrides")
	}
	h := newHarness(t, f)
	os, ok := h.store.(weir.OverrideStore)
	if !ok {
		t.Skip("the store is not a weir.OverrideStore")
	}
	ctx := context.Background()
	exp := h.clk.now().Add(time.Minute)
	for i := range weir.MaxOverrides {
		o := weir.Override{Scope: "bound", Key: fmt.Sprint("k", i), Plan: "pro"}
		if i%2 == 0 {
			o.Expires = exp
		}
		if err := os.SetOverride(ctx, o); err != nil {
			t.Fatalf("override %d: %v", i, err)
		}
	}
	err := os.SetOverride(ctx, weir.Override{Scope: "bound", Key: "one-more", Plan: "pro"})
	wantField(t, err, "overrides", weir.ErrTooManyOverrides)
	if err := os.SetOverride(ctx, weir.Override{Scope: "bound", Key: "k1", Plan: "free"}); err != nil {
		t.Fatalf("replacing an override at the bound: %v", err)
	}
	h.clk.add(t, time.Minute)
	if err := os.SetOverride(ctx, weir.Override{Scope: "bound", Key: "one-more", Plan: "pro"}); err != nil {
		t.Fatalf("after half expired: %v", err)
	}
	if list, _ := os.ListOverrides(ctx, "bound"); len(list) != weir.MaxOverrides/2+1 {
		t.Fatalf("listed %d, want %d", len(list), weir.MaxOverrides/2+1)
	}
}

// testPlanTable checks that two PlanTables on one store (two processes)
// see each other's overrides after a refresh, and that a key's state
// carries over when its plan changes.
func testPlanTable(t *testing.T, f Factory) {
	h := newHarness(t, f)
	os, ok := h.store.(weir.OverrideStore)
	if !ok {
		t.Skip("the store is not a weir.OverrideStore")
	}
	ctx := context.Background()
	cfg := weir.Plans{
		Scope:   "api",
		Plans:   []weir.Plan{{Name: "free", Limits: []weir.Limit{weir.Per(10, time.Hour)}}, {Name: "pro", Limits: []weir.Limit{weir.Per(100, time.Hour)}}},
		Default: "free",
		Keys:    map[string]string{"static": "pro"},
		Refresh: -1,
	}
	a, err := weir.NewPlanTable(h.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := weir.NewPlanTable(h.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := a.Choose(ctx, "static"); c.Plan != "pro" || c.Override != nil {
		t.Fatalf("static key: %+v, want plan pro", c)
	}
	for range 5 {
		if d, err := b.Allow(ctx, "acme"); err != nil || !d.Allowed {
			t.Fatalf("free plan: %+v, %v", d, err)
		}
	}
	if err := os.SetOverride(ctx, weir.Override{Scope: "api", Key: "acme", Plan: "pro", Reason: "upgrade"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c := b.Choose(ctx, "acme")
	if c.Plan != "pro" || c.Override == nil || c.Override.Reason != "upgrade" {
		t.Fatalf("after the override: %+v, want plan pro by override", c)
	}
	// Half the free bucket used is half the pro bucket: 50 left, not 100.
	if d, err := b.AllowN(ctx, "acme", 50); err != nil || !d.Allowed || d.Remaining != 0 {
		t.Fatalf("pro after free: %+v, %v; want 50 admitted, 0 left", d, err)
	}
	if d, _ := a.Allow(ctx, "acme"); d.Allowed {
		t.Fatalf("table a (not refreshed: free plan) admitted past the state")
	}
	if err := os.DeleteOverride(ctx, "api", "acme"); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if c := b.Choose(ctx, "acme"); c.Plan != "free" || c.Override != nil {
		t.Fatalf("after delete: %+v, want the default plan", c)
	}
	h.clk.add(t, 30*time.Minute)
	// Explicit limits, unnamed: named like the default plan's limit of
	// the same shape, so they share its state.
	if err := os.SetOverride(ctx, weir.Override{Scope: "api", Key: "acme", Limits: []weir.Limit{weir.Per(1000, time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c = a.Choose(ctx, "acme")
	if c.Plan != "" || c.Limits()[0].Name != b.Choose(ctx, "other").Limits()[0].Name {
		t.Fatalf("explicit override: %+v named %q", c, c.Limits()[0].Name)
	}
	if d, _ := c.Limiter.Peek(ctx, "acme"); d.Remaining != 500 {
		t.Fatalf("explicit override with half the bucket used: Remaining %d, want 500", d.Remaining)
	}
}
