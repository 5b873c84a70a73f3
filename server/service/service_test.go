package service

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/metrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flaky is a store that fails while down is set.
type flaky struct {
	weir.Store
	down atomic.Bool
}

func (f *flaky) Take(ctx context.Context, r *weir.Request) (weir.Decision, error) {
	if f.down.Load() {
		return weir.Decision{}, fmt.Errorf("flaky: connection refused: %w", weir.ErrUnavailable)
	}
	return f.Store.Take(ctx, r)
}

var t0 = time.Unix(1_700_000_000, 0)

func newService(t testing.TB, yaml string) (*Service, *flaky, *metrics.Metrics) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return t0 }
	ms := memstore.New(memstore.WithClock(now))
	fb := memstore.New(memstore.WithClock(now))
	t.Cleanup(func() { ms.Close(); fb.Close() })
	f := &flaky{Store: ms}
	m := metrics.New()
	s, err := New(f, fb, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	return s, f, m
}

const policies = `
policies:
  err:   {limits: ["2/m"]}
  open:  {limits: ["2/m"], on_store_error: allow}
  shut:  {limits: ["2/m"], on_store_error: deny}
  local: {limits: ["2/m"], on_store_error: fallback}
  shadow: {limits: ["1/m"], shadow: true}
  tenant: {limits: ["1/m"], key: "{tenant}/{key}"}
  jobs: {limits: ["2/m algo=concurrency", "10/m"]}
`

func TestStoreFailureModes(t *testing.T) {
	s, f, m := newService(t, policies)
	ctx := context.Background()
	f.down.Store(true)
	if _, err := s.Check(ctx, &Request{Policy: "err", Key: "k", Cost: 1}); !errors.Is(err, weir.ErrUnavailable) {
		t.Errorf("error mode: %v", err)
	}
	r, err := s.Check(ctx, &Request{Policy: "open", Key: "k", Cost: 1})
	if err != nil || !r.Allowed || r.Source != weir.SourceFailOpen {
		t.Errorf("allow mode: %+v %v", r, err)
	}
	r, err = s.Check(ctx, &Request{Policy: "shut", Key: "k", Cost: 1})
	if err != nil || r.Allowed || r.Source != weir.SourceFailClosed || r.RetryAfter <= 0 {
		t.Errorf("deny mode: %+v %v", r, err)
	}
	for i := range 3 {
		r, err = s.Check(ctx, &Request{Policy: "local", Key: "k", Cost: 1})
		if err != nil || r.Allowed != (i < 2) || r.Source != weir.SourceFallback {
			t.Errorf("fallback %d: %+v %v", i, r, err)
		}
	}
	if v := testutil.ToFloat64(m.FailOpen.WithLabelValues("open")); v != 1 {
		t.Errorf("fail-open count %v", v)
	}
	if v := testutil.ToFloat64(m.Fallback.WithLabelValues("local")); v != 3 {
		t.Errorf("fallback count %v", v)
	}
	// Back up: the store decides again, with its own state.
	f.down.Store(false)
	r, err = s.Check(ctx, &Request{Policy: "local", Key: "k", Cost: 1})
	if err != nil || !r.Allowed || r.Source != weir.SourceStore || r.Remaining != 1 {
		t.Errorf("recovered: %+v %v", r, err)
	}
}

func TestShadowTemplatesAndLeases(t *testing.T) {
	s, _, m := newService(t, policies)
	ctx := context.Background()
	for i := range 2 {
		r, err := s.Check(ctx, &Request{Policy: "shadow", Key: "k", Cost: 1})
		if err != nil || !r.Allowed || r.Shadowed != (i == 1) || r.RetryAfter != 0 {
			t.Errorf("shadow %d: %+v %v", i, r, err)
		}
	}
	if v := testutil.ToFloat64(m.Decisions.WithLabelValues("shadow", "shadow_limited")); v != 1 {
		t.Errorf("shadow_limited %v", v)
	}
	// The template separates tenants.
	for _, tenant := range []string{"a", "b"} {
		r, err := s.Check(ctx, &Request{Policy: "tenant", Key: "u", Fields: map[string]string{"tenant": tenant}, Cost: 1})
		if err != nil || !r.Allowed {
			t.Errorf("tenant %s: %+v %v", tenant, r, err)
		}
	}
	var fe *weir.FieldError
	if _, err := s.Check(ctx, &Request{Policy: "tenant", Key: "u", Cost: 1}); !errors.As(err, &fe) || fe.Field != "fields.tenant" {
		t.Errorf("missing field: %v", err)
	}
	// Concurrency: two leases, the third waits for a release.
	var ids []string
	for i := range 3 {
		r, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "q", Cost: 1})
		if err != nil || r.Allowed != (i < 2) || (r.Lease != "") != (i < 2) {
			t.Fatalf("acquire %d: %+v %v", i, r, err)
		}
		ids = append(ids, r.Lease)
	}
	if err := s.Release(ctx, &Request{Policy: "jobs", Key: "q"}, ids[0]); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "q", Cost: 1}); err != nil || !r.Allowed {
		t.Errorf("after release: %+v %v", r, err)
	}
	if _, err := s.Check(ctx, &Request{Policy: "jobs", Key: "q", Cost: 1}); !errors.As(err, &fe) || fe.Field != "policy" {
		t.Errorf("check on a concurrency policy: %v", err)
	}
	// Reset needs the admin scope.
	if err := s.Reset(ctx, &Request{Policy: "shadow", Key: "k"}, false); !errors.Is(err, ErrPermission) {
		t.Errorf("reset without admin: %v", err)
	}
	if err := s.Reset(ctx, &Request{Policy: "shadow", Key: "k"}, true); err != nil {
		t.Errorf("reset: %v", err)
	}
	if r, _ := s.Check(ctx, &Request{Policy: "shadow", Key: "k", Cost: 0}); r.Remaining != 1 {
		t.Errorf("after reset: %+v", r)
	}
}

// TestAcquireWait: an acquire with Wait waits in line for a concurrency
// policy's units, a newcomer without Wait does not take them first, a wait
// that runs out is a denial, and Wait is refused where it does not apply.
func TestAcquireWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, _ := newService(t, policies)
		ctx := context.Background()
		var ids []string
		for i := range 2 {
			r, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "w", Cost: 1})
			if err != nil || !r.Allowed {
				t.Fatalf("acquire %d: %+v %v", i, r, err)
			}
			ids = append(ids, r.Lease)
		}
		type answer struct {
			r   Result
			err error
			at  time.Duration
		}
		start := time.Now()
		got := make(chan answer, 1)
		go func() {
			r, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "w", Cost: 1, Wait: 2 * time.Second})
			got <- answer{r, err, time.Since(start)}
		}()
		time.Sleep(500 * time.Millisecond)
		if err := s.Release(ctx, &Request{Policy: "jobs", Key: "w"}, ids[0]); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "w", Cost: 1}); err != nil || r.Allowed {
			t.Fatalf("a newcomer took the unit owed to the waiter: %+v %v", r, err)
		}
		a := <-got
		if a.err != nil || !a.r.Allowed || a.r.Lease == "" || a.at < 500*time.Millisecond || a.at > 700*time.Millisecond {
			t.Fatalf("waiter: %+v after %v", a, a.at)
		}
		// Full again: a wait that runs out is a denial with a retry hint.
		start = time.Now()
		r, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "w", Cost: 1, Wait: 300 * time.Millisecond})
		if err != nil || r.Allowed || r.Lease != "" || r.RetryAfter <= 0 || time.Since(start) != 300*time.Millisecond {
			t.Fatalf("wait ran out: %+v %v after %v", r, err, time.Since(start))
		}
		var fe *weir.FieldError
		for _, tt := range []struct {
			name string
			do   func() error
		}{
			{"negative", func() error {
				_, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "w", Cost: 1, Wait: -1})
				return err
			}},
			{"too long", func() error {
				_, err := s.Acquire(ctx, &Request{Policy: "jobs", Key: "w", Cost: 1, Wait: WaitMS(1 << 62)})
				return err
			}},
			{"check", func() error {
				_, err := s.Check(ctx, &Request{Policy: "err", Key: "w", Cost: 1, Wait: time.Second})
				return err
			}},
			{"release", func() error {
				return s.Release(ctx, &Request{Policy: "jobs", Key: "w", Wait: time.Second}, ids[1])
			}},
		} {
			if err := tt.do(); !errors.As(err, &fe) || fe.Field != "wait_ms" {
				t.Errorf("%s: %v, want an error naming wait_ms", tt.name, err)
			}
		}
	})
}

func TestBatchValidatesFirst(t *testing.T) {
	s, _, _ := newService(t, policies)
	ctx := context.Background()
	_, err := s.CheckBatch(ctx, []Request{{Policy: "err", Key: "k", Cost: 1}, {Policy: "err", Key: "k", Cost: 3}})
	var fe *weir.FieldError
	if !errors.As(err, &fe) || fe.Field != "checks[1].cost" || !errors.Is(err, weir.ErrExceedsCapacity) {
		t.Fatalf("batch: %v", err)
	}
	if r, _ := s.Check(ctx, &Request{Policy: "err", Key: "k"}); r.Remaining != 2 {
		t.Errorf("a rejected batch charged: %+v", r)
	}
}

func TestParallelBatch(t *testing.T) {
	s, _, _ := newService(t, policies)
	s.SetParallel(8)
	reqs := make([]Request, 10)
	for i := range reqs {
		reqs[i] = Request{Policy: "err", Key: "same", Cost: 1}
	}
	out, err := s.CheckBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for _, r := range out {
		if r.Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("%d of 10 allowed under 2/m, want 2", allowed)
	}
}

func TestReloadKeepsState(t *testing.T) {
	s, _, _ := newService(t, policies)
	ctx := context.Background()
	s.Check(ctx, &Request{Policy: "err", Key: "k", Cost: 1})
	cfg, err := config.Parse("t2.yaml", []byte("policies:\n  err: {limits: [\"2/m\"]}\n  new: {limits: [\"5/s\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(c)
	if r, err := s.Check(ctx, &Request{Policy: "err", Key: "k"}); err != nil || r.Remaining != 1 {
		t.Errorf("unchanged policy lost its state: %+v %v", r, err)
	}
	if _, err := s.Check(ctx, &Request{Policy: "jobs", Key: "k"}); err == nil {
		t.Error("removed policy still answers")
	}
	if len(s.Policies()) != 2 {
		t.Errorf("policies %v", s.Policies())
	}
}

func TestAuthScopes(t *testing.T) {
	a := NewAuth([]string{"user-token-0123456789"}, []string{"admin-token-0123456789"})
	for h, want := range map[string]Scope{
		"":                              ScopeNone,
		"Bearer nope":                   ScopeNone,
		"user-token-0123456789":         ScopeNone,
		"Bearer user-token-0123456789":  ScopeDecide,
		"Bearer admin-token-0123456789": ScopeAdmin,
	} {
		if got := a.Scope(h); got != want {
			t.Errorf("Scope(%q) = %v, want %v", h, got, want)
		}
	}
	if (*Auth)(nil).Scope("") != ScopeAdmin || NewAuth(nil, nil).Enabled() {
		t.Error("no tokens must mean no authentication")
	}
}

func ExampleService_Check() {
	cfg, _ := config.Parse("weir.yaml", []byte(`
policies:
  api: {limits: ["2/m algo=fixed-window"]}
`))
	store := memstore.New()
	defer store.Close()
	svc, _ := New(store, nil, cfg, nil)
	for range 3 {
		r, _ := svc.Check(context.Background(), &Request{Policy: "api", Key: "user:42", Cost: 1})
		fmt.Println(r.Allowed, r.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}
