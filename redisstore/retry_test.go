package redisstore_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

// resetProxy relays TCP to target, but drops a connection (both ends)
// after Redis answered and before the answer reaches the client, for a
// fraction of the answers: the request was applied, the client cannot know.
type resetProxy struct {
	l      net.Listener
	target string
	rate   float64
	resets atomic.Int64
	wg     sync.WaitGroup
}

func newResetProxy(t *testing.T, target string, rate float64) *resetProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{l: l, target: target, rate: rate}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *resetProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if err != nil {
					return
				}
				if rand.Float64() < p.rate {
					p.resets.Add(1)
					return // drop the reply and the connection
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// TestRetryDoubleApply is R16: a proxy resets 10% of the connections after
// forwarding a decision and before relaying its answer. With the client's
// retries disabled (MaxRetries: -1, as documented), no decision is applied
// twice: the units charged in Redis never exceed the decisions asked for.
// A client that retries (go-redis's default, MaxRetries 3) would apply
// some twice; the test shows it, which is why the docs require -1.
func TestRetryDoubleApply(t *testing.T) {
	srv := redistest.Start(t)
	calls := pick(2000, 10000)
	for _, retries := range []int{-1, 3} {
		proxy := newResetProxy(t, srv.Addr, 0.1)
		o := srv.Options()
		o.Addr = proxy.l.Addr().String()
		o.MaxRetries = retries
		o.MinRetryBackoff, o.MaxRetryBackoff = time.Millisecond, time.Millisecond
		c := redis.NewClient(o)
		s, err := redisstore.New(c, redisstore.WithDeadline(2*time.Second), redisstore.WithPrefix("r16:"))
		if err != nil {
			t.Fatal(err)
		}
		// A window limit so large it never denies: its count is the number
		// of units applied.
		lim := weir.Per(1<<40, 24*time.Hour).WithAlgorithm(weir.FixedWindow).WithName("r16")
		check := []weir.Check{{Key: "k", Limit: lim}}
		ctx := context.Background()
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range calls / 4 {
					if _, err := s.Take(ctx, &weir.Request{Checks: check, Cost: 1}); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		s.Close()
		c.Close()
		// Read the count directly.
		direct, err := redisstore.New(srv.Client(), redisstore.WithPrefix("r16:"), redisstore.WithDeadline(30*time.Second)) // the count, not latency
		if err != nil {
			t.Fatal(err)
		}
		d, err := direct.Take(ctx, &weir.Request{Checks: check})
		direct.Close()
		if err != nil {
			t.Fatal(err)
		}
		applied := int64(1<<40) - d.Remaining
		over := applied - int64(calls)
		t.Logf("MaxRetries %d: %d calls, %d resets, %d failed, %d applied: over-charge %d", retries, calls, proxy.resets.Load(), failed.Load(), applied, max(over, 0))
		if retries < 0 && over > 0 {
			t.Fatalf("over-charge %d with retries disabled", over)
		}
		if proxy.resets.Load() == 0 {
			t.Fatal("the proxy reset nothing")
		}
		if err := direct.Reset(ctx, check); err != nil {
			t.Fatal(err)
		}
	}
}
