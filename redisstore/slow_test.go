package redisstore_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

// slowProxy relays TCP to target, delaying every reply by delay, and
// counts the connections open at once.
type slowProxy struct {
	l           net.Listener
	target      string
	delay       time.Duration
	open, peak  atomic.Int64
	accepted    atomic.Int64
	wg          sync.WaitGroup
	mu          sync.Mutex
	connections []net.Conn
}

func newSlowProxy(t *testing.T, target string, delay time.Duration) *slowProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{l: l, target: target, delay: delay}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.connections {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *slowProxy) accept() {
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
		p.accepted.Add(1)
		n := p.open.Add(1)
		for {
			old := p.peak.Load()
			if n <= old || p.peak.CompareAndSwap(old, n) {
				break
			}
		}
		p.mu.Lock()
		p.connections = append(p.connections, c, s)
		p.mu.Unlock()
		var once sync.Once
		closed := func() { once.Do(func() { p.open.Add(-1); c.Close(); s.Close() }) }
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c); closed() }()
		go func() {
			defer p.wg.Done()
			defer closed()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if err != nil {
					return
				}
				time.Sleep(p.delay)
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// TestSlowRedis is R14's short version: every reply takes 200ms while the
// deadline is 50ms, under 500 decisions/s from 16 goroutines. Calls fail
// fast (fail-closed) at the deadline instead of queueing, the connections
// open at once stay within the pool (no create-on-empty storm), and the
// store's goroutines stay bounded.
//
// The load runs 2 s (60 s with WEIR_SOAK=1) and until 100 calls were
// answered by the policy sooner than a reply can come: proof of failing
// fast that a busy machine can delay but not fake. A decision from Redis
// is a call whose deadline timer the scheduler fired late: allowed in CI
// only after the full reply delay, never under WEIR_SOAK=1, which also
// checks the catalogue's latency bounds (p99 <= deadline + 10 ms, max <=
// 2x deadline).
func TestSlowRedis(t *testing.T) {
	const delay = 200 * time.Millisecond
	srv := redistest.Start(t)
	proxy := newSlowProxy(t, srv.Addr, delay)
	o := srv.Options()
	o.Addr = proxy.l.Addr().String()
	const pool = 16
	o.PoolSize = pool
	client := redis.NewClient(o)
	defer client.Close()
	const deadline = 50 * time.Millisecond
	baseline := runtime.NumGoroutine()
	rs, err := redisstore.New(client, redisstore.WithDeadline(deadline), redisstore.WithFailurePolicy(redisstore.FailClosed))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	s := &fastCounter{Store: rs, under: delay}
	lim := weir.PerSecond(1000).WithName("r14")
	req := func() *weir.Request { return &weir.Request{Checks: []weir.Check{{Key: "k", Limit: lim}}, Cost: 1} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []sample)
	go func() { done <- load(ctx, s, req, 16, 500) }()
	var maxG int
	minEnd, hang := time.Now().Add(pick(2*time.Second, time.Minute)), time.Now().Add(2*time.Minute)
	for time.Now().Before(minEnd) || s.fast.Load() < 100 {
		if time.Now().After(hang) {
			cancel()
			<-done
			t.Fatalf("only %d calls answered sooner than the %v reply delay in 2 minutes", s.fast.Load(), delay)
		}
		time.Sleep(100 * time.Millisecond)
		maxG = max(maxG, runtime.NumGoroutine())
	}
	cancel()
	samples := <-done
	p99, worst := quantile(samples, 0.99), quantile(samples, 1)
	var late int
	for _, x := range samples {
		switch {
		case x.err == nil && x.src == weir.SourceFailClosed:
		case x.err == nil && x.src == weir.SourceStore && x.lat >= delay && !soak():
			late++
		default:
			t.Fatalf("decision with a 200ms Redis after %v: source %v, error %v", x.lat, x.src, x.err)
		}
	}
	t.Logf("%d decisions (%d answered by Redis after a late deadline timer), p50 %v p99 %v max %v; %d connections accepted, at most %d open; at most %d goroutines (baseline %d)",
		len(samples), late, quantile(samples, 0.5), p99, worst, proxy.accepted.Load(), proxy.peak.Load(), maxG, baseline)
	if soak() {
		if p99 > deadline+10*time.Millisecond {
			t.Errorf("p99 %v, want <= %v", p99, deadline+10*time.Millisecond)
		}
		if worst > 2*deadline {
			t.Errorf("max %v, want <= %v", worst, 2*deadline)
		}
	}
	if peak := proxy.peak.Load(); peak > pool {
		t.Errorf("%d connections open at once, pool %d", peak, pool)
	}
	// Load goroutines (16) + the proxy's (2 per connection) + the store's
	// and the pool's: bounded, whatever the number of calls.
	if limit := baseline + 16 + 2*pool + 2 + 8; maxG > limit {
		t.Errorf("%d goroutines, want at most %d", maxG, limit)
	}
}

// fastCounter counts its Store's decisions made by the failure policy in
// less than under.
type fastCounter struct {
	weir.Store
	under time.Duration
	fast  atomic.Int64
}

func (c *fastCounter) Take(ctx context.Context, r *weir.Request) (weir.Decision, error) {
	start := time.Now()
	d, err := c.Store.Take(ctx, r)
	if err == nil && d.Source != weir.SourceStore && time.Since(start) < c.under {
		c.fast.Add(1)
	}
	return d, err
}
