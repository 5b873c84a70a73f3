package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

// TestCluster runs limiters on a real 3-master cluster with the default
// per-key hash tags: keys spread over every node, each key's limits are
// decided atomically in its slot (exactly the burst is admitted per key
// from many goroutines), no CROSSSLOT error ever happens, and a request
// mixing keys is refused with a clear error instead.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	client := c.Client(t)
	s, err := redisstore.New(client, redisstore.WithPrefix("cl:"), redisstore.WithDeadline(30*time.Second)) // correctness, not latency
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const burst = 5
	lim, err := weir.NewLimiter(s, weir.PerHour(burst).WithName("h"), weir.PerHour(1000).WithAlgorithm(weir.FixedWindow).WithName("f"))
	if err != nil {
		t.Fatal(err)
	}
	keys := 300
	ctx := context.Background()
	admitted := make([]atomic.Int64, keys)
	var wg sync.WaitGroup
	var failed atomic.Value
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys * 3 {
				k := (i + g*7) % keys
				// Keys with braces: the user cannot pick the slot.
				d, err := lim.Allow(ctx, fmt.Sprintf("{tenant}:%d", k))
				if err != nil {
					failed.Store(err)
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("decision failed (CROSSSLOT?): %v", err)
	}
	for k := range admitted {
		if n := admitted[k].Load(); n != burst {
			t.Fatalf("key %d: %d admitted, want exactly %d", k, n, burst)
		}
	}
	for _, n := range c.Nodes {
		size, err := n.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		if size.(int64) == 0 {
			t.Fatalf("node %s holds no keys: keys are not spread", n.Addr)
		}
		t.Logf("node %s: %d keys", n.Addr, size)
	}
	// A request whose checks have different keys cannot be atomic across
	// slots: it is refused as invalid input.
	_, err = s.Take(ctx, &weir.Request{Checks: []weir.Check{
		{Key: "a", Limit: weir.PerSecond(1).WithName("x")},
		{Key: "b", Limit: weir.PerSecond(1).WithName("y")},
	}, Cost: 1})
	var fe *weir.FieldError
	if !errors.As(err, &fe) || !strings.Contains(fe.Field, "Key") {
		t.Fatalf("mixed keys in a cluster: %v, want a FieldError naming the key", err)
	}
}
