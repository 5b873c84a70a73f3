package service

import (
	"context"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

func TestDivideLimit(t *testing.T) {
	tb := weir.Limit{Name: "a", Algorithm: weir.TokenBucket, Quota: 6, Period: time.Hour, Burst: 60}
	fw := weir.Limit{Name: "b", Algorithm: weir.FixedWindow, Quota: 10, Period: time.Second}
	tests := []struct {
		l            weir.Limit
		n            int64
		quota, burst int64
	}{
		{tb, 1, 6, 60},
		{tb, 2, 3, 30},
		{tb, 3, 2, 20},
		{tb, 7, 1, 8},   // rounded down: 7 instances admit at most 56 ≤ 60
		{tb, 100, 1, 1}, // never 0: at most max(L, N) together
		{fw, 3, 3, 0},
		{fw, 20, 1, 0},
	}
	for _, tt := range tests {
		got := divideLimit(tt.l, tt.n)
		if got.Quota != tt.quota || got.Burst != tt.burst || got.Name != tt.l.Name || got.Period != tt.l.Period {
			t.Errorf("divideLimit(%v, %d) = %+v, want quota %d burst %d", tt.l, tt.n, got, tt.quota, tt.burst)
		}
	}
}

// TestSharedStoreAdmitsItsShare: with a share of 3 a burst of 60 admits
// 20, and a cost above the share is a denial, not an error.
func TestSharedStoreAdmitsItsShare(t *testing.T) {
	mem := memstore.New()
	defer mem.Close()
	share := int64(3)
	s := sharedStore{Store: mem, share: func() int64 { return share }}
	l := weir.Limit{Name: "p:a", Algorithm: weir.TokenBucket, Quota: 6, Period: time.Hour, Burst: 60}
	take := func(cost int64) weir.Decision {
		t.Helper()
		d, err := s.Take(context.Background(), &weir.Request{Cost: cost, Checks: []weir.Check{{Key: "k", Limit: l}}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := take(21); d.Allowed {
		t.Fatal("cost 21 admitted under a share of 20")
	}
	admitted := 0
	for take(1).Allowed {
		admitted++
		if admitted > 60 {
			break
		}
	}
	if admitted != 20 {
		t.Errorf("admitted %d with a share of 3 of burst 60, want 20", admitted)
	}
}
