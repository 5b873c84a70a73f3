package weir_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

var tiers = []weir.Plan{
	{Name: "free", Limits: []weir.Limit{weir.PerSecond(10), weir.PerDay(1000).WithName("daily")}},
	{Name: "pro", Limits: []weir.Limit{weir.PerSecond(100).WithBurst(200), weir.PerDay(100_000)}},
}

// countingStore is a memory store that counts OverrideVersion and
// ListOverrides calls, and can fail them.
type countingStore struct {
	*memstore.Store
	versions, lists atomic.Int64
	fail            atomic.Bool
}

func (c *countingStore) OverrideVersion(ctx context.Context) (int64, error) {
	c.versions.Add(1)
	if c.fail.Load() {
		return 0, weir.ErrUnavailable
	}
	return c.Store.OverrideVersion(ctx)
}

func (c *countingStore) ListOverrides(ctx context.Context, scope string) ([]weir.Override, error) {
	c.lists.Add(1)
	return c.Store.ListOverrides(ctx, scope)
}

func TestPlanTableNames(t *testing.T) {
	tbl, err := weir.NewPlanTable(memstore.New(), weir.Plans{Scope: "api", Plans: tiers, Default: "free", NamePrefix: "api:"})
	if err != nil {
		t.Fatal(err)
	}
	// Unnamed limits are named by shape, or after the default plan's
	// limit of the same shape, so plans share state.
	tests := []struct {
		plan  string
		names []string
	}{
		{"free", []string{"api:per-s", "api:daily"}},
		{"pro", []string{"api:per-s", "api:daily"}},
	}
	for _, tt := range tests {
		lim, ok := tbl.Plan(tt.plan)
		if !ok {
			t.Fatalf("no plan %q", tt.plan)
		}
		for i, l := range lim.Limits() {
			if l.Name != tt.names[i] {
				t.Errorf("plan %s limit %d named %q, want %q", tt.plan, i, l.Name, tt.names[i])
			}
		}
	}
}

func TestPlanTableErrors(t *testing.T) {
	st := memstore.New()
	tests := []struct {
		cfg   weir.Plans
		field string
	}{
		{weir.Plans{Scope: "", Plans: tiers, Default: "free"}, "Plans.Scope"},
		{weir.Plans{Scope: "api", Plans: tiers, Default: "gold"}, "Plans.Default"},
		{weir.Plans{Scope: "api", Plans: append(tiers[:1:1], weir.Plan{Name: "free", Limits: tiers[1].Limits}), Default: "free"}, "Plans.Plans[1].Name"},
		{weir.Plans{Scope: "api", Plans: []weir.Plan{{Name: "free"}}, Default: "free"}, "Plans.Plans[0].Limits"},
		{weir.Plans{Scope: "api", Plans: []weir.Plan{{Name: "free", Limits: []weir.Limit{{Quota: 0, Period: time.Second}}}}, Default: "free"}, "Plans.Plans[0].Limits[0].Quota"},
		{weir.Plans{Scope: "api", Plans: []weir.Plan{{Name: "free", Limits: []weir.Limit{weir.PerSecond(1), weir.PerSecond(2)}}}, Default: "free"}, "Plans.Plans[0].Limits[1].Name"},
		{weir.Plans{Scope: "api", Plans: tiers, Default: "free", Keys: map[string]string{"k": "gold"}}, `Plans.Keys["k"]`},
	}
	for _, tt := range tests {
		_, err := weir.NewPlanTable(st, tt.cfg)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("NewPlanTable(%+v) = %v, want a field error naming %s", tt.cfg, err, tt.field)
		}
	}
	if _, err := weir.NewPlanTable(st, weir.Plans{Scope: "api", Plans: tiers, Default: "free"}, weir.PerSecond(1)); err == nil {
		t.Error("a Limit given as an option was accepted")
	}
	if _, err := weir.NewPlanTable(nil, weir.Plans{Scope: "api", Plans: tiers, Default: "free"}); err == nil {
		t.Error("a nil store was accepted")
	}
}

// TestPlanTableRefresh checks the cache: one version poll per Refresh
// interval, a listing only when the version moved, the old copy kept when
// the store fails, and an expired override ignored before any refresh.
func TestPlanTableRefresh(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	st := &countingStore{Store: memstore.New(memstore.WithClock(clock))}
	tbl, err := weir.NewPlanTable(st, weir.Plans{Scope: "api", Plans: tiers, Default: "free"})
	if err != nil {
		t.Fatal(err)
	}
	weir.SetPlanClock(tbl, clock)
	if err := tbl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	v0, l0 := st.versions.Load(), st.lists.Load()
	for range 100 {
		tbl.Choose(ctx, "k")
	}
	if st.versions.Load() != v0 {
		t.Fatalf("polled the store %d times within the interval", st.versions.Load()-v0)
	}
	if err := st.SetOverride(ctx, weir.Override{Scope: "api", Key: "k", Plan: "pro", Expires: now.Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if c := tbl.Choose(ctx, "k"); c.Plan != "free" {
		t.Fatalf("seen before the interval passed: %+v", c)
	}
	now = now.Add(weir.DefaultRefresh)
	if c := tbl.Choose(ctx, "k"); c.Plan != "pro" || c.Override == nil {
		t.Fatalf("not seen after the interval: %+v", c)
	}
	if st.lists.Load() != l0+1 {
		t.Fatalf("listed %d times, want 1", st.lists.Load()-l0)
	}
	now = now.Add(weir.DefaultRefresh)
	tbl.Choose(ctx, "k")
	if st.lists.Load() != l0+1 {
		t.Fatalf("listed again although the version did not move")
	}
	// A failing store keeps the last copy and reports the error.
	st.fail.Store(true)
	now = now.Add(weir.DefaultRefresh)
	if c := tbl.Choose(ctx, "k"); c.Plan != "pro" {
		t.Fatalf("lost the copy when the store failed: %+v", c)
	}
	if err := tbl.Err(); !errors.Is(err, weir.ErrUnavailable) {
		t.Fatalf("Err() = %v, want ErrUnavailable", err)
	}
	// Expiry is judged on every read, refresh or not.
	now = now.Add(10 * time.Second)
	if c := tbl.Choose(ctx, "k"); c.Plan != "free" || c.Override != nil {
		t.Fatalf("an expired override still chose: %+v", c)
	}
	st.fail.Store(false)
	// An override naming an unknown plan is ignored and reported.
	if err := st.SetOverride(ctx, weir.Override{Scope: "api", Key: "x", Plan: "gold"}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if c := tbl.Choose(ctx, "x"); c.Plan != "free" {
		t.Fatalf("unknown plan chose %+v", c)
	}
	if err := tbl.Err(); err == nil || !strings.Contains(err.Error(), `"gold"`) {
		t.Fatalf("Err() = %v, want the unknown plan named", err)
	}
}

func TestOverrideJSON(t *testing.T) {
	o := weir.Override{Scope: "api", Key: "k\x00é", Limits: []weir.Limit{weir.PerSecond(5).WithName("sec"), weir.PerDay(9).WithAlgorithm(weir.FixedWindow)},
		Expires: time.Unix(5, 6), Reason: "r", By: "b", Updated: time.Unix(7, 8)}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back weir.Override
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(o) || !back.Expires.Equal(o.Expires) || !back.Updated.Equal(o.Updated) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, o)
	}
}

func TestOverrideValidate(t *testing.T) {
	tests := []struct {
		o     weir.Override
		field string
	}{
		{weir.Override{Scope: "api", Key: "k", Plan: "pro"}, ""},
		{weir.Override{Key: "k", Plan: "pro"}, "Override.Scope"},
		{weir.Override{Scope: "api", Key: strings.Repeat("k", weir.MaxOverrideKey+1), Plan: "pro"}, "Override.Key"},
		{weir.Override{Scope: "api", Key: "\xff", Plan: "pro"}, "Override.Key"},
		{weir.Override{Scope: "api", Key: "k", Plan: "a b"}, "Override.Plan"},
		{weir.Override{Scope: "api", Key: "k", Limits: make([]weir.Limit, weir.MaxPlanLimits+1)}, "Override.Limits"},
		{weir.Override{Scope: "api", Key: "k", Limits: []weir.Limit{weir.PerSecond(1).WithName("a b")}}, "Override.Limits[0].Name"},
		{weir.Override{Scope: "api", Key: "k", Plan: "pro", By: strings.Repeat("b", weir.MaxReason+1)}, "Override.By"},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		var fe *weir.FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tt.o, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("Validate(%.80v) = %v, want a field error naming %s", tt.o, err, tt.field)
		}
	}
}

func ExamplePlanTable() {
	ctx := context.Background()
	store := memstore.New()
	plans, err := weir.NewPlanTable(store, weir.Plans{
		Scope: "api",
		Plans: []weir.Plan{
			{Name: "free", Limits: []weir.Limit{weir.PerMinute(2)}},
			{Name: "pro", Limits: []weir.Limit{weir.PerMinute(5)}},
		},
		Default: "free",
	})
	if err != nil {
		panic(err)
	}
	// Support upgrades one customer for an hour; every PlanTable on the
	// store applies it within a second (Refresh here, to apply it now).
	err = store.SetOverride(ctx, weir.Override{Scope: "api", Key: "acme", Plan: "pro", Expires: time.Now().Add(time.Hour), Reason: "trial"})
	if err != nil {
		panic(err)
	}
	_ = plans.Refresh(ctx)
	for _, key := range []string{"acme", "other"} {
		d, _ := plans.AllowN(ctx, key, 3)
		fmt.Println(key, plans.Choose(ctx, key).Plan, d.Allowed)
	}
	// Output:
	// acme pro true
	// other free false
}

func BenchmarkPlanTableChoose(b *testing.B) {
	ctx := context.Background()
	st := memstore.New()
	tbl, err := weir.NewPlanTable(st, weir.Plans{Scope: "api", Plans: tiers, Default: "free", Keys: map[string]string{"static": "pro"}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := st.SetOverride(ctx, weir.Override{Scope: "api", Key: fmt.Sprint("k", i), Plan: "pro"}); err != nil {
			b.Fatal(err)
		}
	}
	_ = tbl.Refresh(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tbl.Choose(ctx, "k500")
			i++
		}
	})
}

func BenchmarkPlanTableAllow(b *testing.B) {
	ctx := context.Background()
	tbl, err := weir.NewPlanTable(memstore.New(), weir.Plans{Scope: "api", Plans: []weir.Plan{{Name: "big", Limits: []weir.Limit{weir.PerSecond(1e9)}}}, Default: "big"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tbl.Allow(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}
