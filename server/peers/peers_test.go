package peers

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/weir-go/weir/redisstore/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCount(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(srv.Options())
	defer client.Close()
	ctx := context.Background()
	var cs []*Counter
	for i := range 3 {
		ttl := time.Minute
		if i == 2 {
			ttl = 20 * time.Millisecond // the one that stops beating
		}
		c, err := New(client, "weir:peers", ttl)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.Beat(ctx)
		if err != nil || n != int64(i+1) {
			t.Fatalf("beat %d: %d, %v; want %d", i, n, err, i+1)
		}
		cs = append(cs, c)
	}
	// The set expires with its latest member, whatever the last beat's TTL.
	if ttl := client.PTTL(ctx, "weir:peers").Val(); ttl <= 20*time.Millisecond || ttl > time.Minute {
		t.Fatalf("PTTL of the set %v, want the longest member's (up to 1m)", ttl)
	}
	// Beating again does not count twice.
	if n, err := cs[0].Beat(ctx); err != nil || n > 3 {
		t.Fatalf("second beat: %d, %v; want at most 3", n, err)
	}
	// The third stops beating: it leaves the count once its TTL is over
	// on the Redis clock (polled; no assumption on how long that takes).
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := cs[0].Beat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("count still %d after 30s: the expired instance is still counted", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Leave removes at once.
	if err := cs[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := cs[0].Beat(ctx); err != nil || n != 1 {
		t.Fatalf("after leave: %d, %v; want 1", n, err)
	}
}

// TestRunKeepsLastCount: Run reports counts, a beat fails while Redis is
// down (Run then calls nothing, keeping the last count), and Run stops with
// its context.
func TestRunKeepsLastCount(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(srv.Options())
	defer awaitRedialExit(t)
	defer client.Close()
	other, _ := New(client, "weir:peers", time.Minute)
	if _, err := other.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, _ := New(client, "weir:peers", time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	counts := make(chan int64, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, 5*time.Millisecond, func(n int64) {
			select {
			case counts <- n:
			default:
			}
		})
	}()
	if n := <-counts; n != 2 {
		t.Fatalf("first count %d, want 2", n)
	}
	srv.Kill()
	// A beat now fails, and Run reports nothing for a failed beat.
	if _, err := c.Beat(context.Background()); err == nil {
		t.Fatal("beat with Redis killed: no error")
	}
	cancel()
	<-done
}

// awaitRedialExit waits for go-redis's redial goroutine to end: a pool
// whose dials all failed keeps one that sleeps a second between attempts
// and sees its pool closed only when it wakes, after goleak has looked.
func awaitRedialExit(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*ConnPool).tryDial") {
			return
		}
		if time.Now().After(deadline) {
			t.Error("go-redis redial goroutine still running 10s after the client closed")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
