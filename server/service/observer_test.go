package service

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/weir-go/weir"
)

type recorder struct {
	mu  sync.Mutex
	obs []Observation
}

func (r *recorder) Observe(_ context.Context, o Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

func TestObserverSeesEveryStoreCall(t *testing.T) {
	s, f, _ := newService(t, policies)
	rec := &recorder{}
	s.SetObserver(rec)
	ctx := context.Background()
	// Through the service: a decision, a peek, a denial, a shadow denial,
	// a store failure, a reset.
	for _, req := range []Request{
		{Policy: "err", Key: "k", Cost: 2},
		{Policy: "err", Key: "k", Cost: 0},
		{Policy: "err", Key: "k", Cost: 1},
		{Policy: "shadow", Key: "k", Cost: 1},
		{Policy: "shadow", Key: "k", Cost: 1},
	} {
		if _, err := s.Check(ctx, &req); err != nil {
			t.Fatal(err)
		}
	}
	f.down.Store(true)
	if _, err := s.Check(ctx, &Request{Policy: "open", Key: "k", Cost: 1}); err != nil {
		t.Fatal(err)
	}
	f.down.Store(false)
	if err := s.Reset(ctx, &Request{Policy: "err", Key: "k"}, true); err != nil {
		t.Fatal(err)
	}
	// As the Envoy service does: straight to Service.Store.
	envoy := weir.Limit{Name: "envoy:edge:MINUTE", Algorithm: weir.FixedWindow, Quota: 5, Period: 60e9}
	if _, err := s.Store().Take(ctx, &weir.Request{Checks: []weir.Check{{Key: "d", Limit: envoy}}, Cost: 3, At: t0}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		op, policy, limit, outcome string
		cost                       int64
		err                        bool
	}{
		{"take", "err", "2/m", "allowed", 2, false},
		{"take", "err", "2/m", "limited", 0, false}, // a peek: nothing left
		{"take", "err", "2/m", "limited", 1, false},
		{"take", "shadow", "1/m", "allowed", 1, false},
		{"take", "shadow", "1/m", "limited", 1, false},
		{"take", "open", "2/m", "error", 1, true},
		{"reset", "err", "2/m", "ok", 0, false},
		{"take", "envoy:edge", "MINUTE", "allowed", 3, false},
	}
	if len(rec.obs) != len(want) {
		t.Fatalf("got %d observations, want %d: %+v", len(rec.obs), len(want), rec.obs)
	}
	for i, w := range want {
		o := rec.obs[i]
		if o.Op != w.op || o.Policy != w.policy || o.Limit != w.limit || o.Outcome != w.outcome || o.Cost != w.cost || (o.Err != nil) != w.err {
			t.Errorf("observation %d: got %+v, want %+v", i, o, w)
		}
		if w.err && !errors.Is(o.Err, weir.ErrUnavailable) {
			t.Errorf("observation %d: error %v", i, o.Err)
		}
		if o.Start.IsZero() || o.Duration < 0 {
			t.Errorf("observation %d: start %v duration %v", i, o.Start, o.Duration)
		}
	}
}

// BenchmarkCheckObserver measures a decision without an observer (the
// default) and with one that does nothing, on a memory store.
func BenchmarkCheckObserver(b *testing.B) {
	for _, bc := range []struct {
		name string
		obs  Observer
	}{{"none", nil}, {"noop", nopObserver{}}} {
		b.Run(bc.name, func(b *testing.B) {
			s, _, _ := newService(b, "policies:\n  p: {limits: [\"1000000000/s\"]}\n")
			s.SetObserver(bc.obs)
			ctx := context.Background()
			req := &Request{Policy: "p", Key: "k", Cost: 1}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nopObserver struct{}

func (nopObserver) Observe(context.Context, Observation) {}
